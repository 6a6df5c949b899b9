"""PPSE combination selection and final selection (EMV Contactless Book B, 3.3 and 3.4).

* :func:`build_candidates` (Book B, 3.3.2): SELECT ``2PAY.SYS.DDF01``, then for every directory
  entry (``61`` in ``BF0C``) and every supported combination, keep the entry when its ADF Name
  (4F) matches the configured AID (full match, or a partial match when the AID allows it), its
  Requested Kernel ID (9F2A, else the RID's default, Table 3-6; zero: any kernel) is the
  combination's kernel, and the combination is not "Contactless Application Not Allowed".
* :func:`order_candidates` (Book B, 3.3.3): highest Application Priority Indicator (87) first
  (1 is highest; absent or 0 ranks last), PPSE order among equals; a configured co-badged brand
  priority (EU IFR art. 8) ranks first when several brands are offered.
* :func:`final_select` (Book B, 3.3.3.3-3.3.3.5): SELECT the ADF Name (with the Extended
  Selection, 9F29, appended when the entry carries one and the combination's Extended Selection
  Support flag is set); a non-9000 answer or an FCI that is not a ``6F`` template removes the
  candidate.
* :func:`visa_legacy` (Book B, 3.3.3.6): a Visa AID selected for kernel 3 whose PDOL is absent
  or lacks the TTQ (9F66) is a kernel 1 card; kernel 1 is not supported here, so the candidate
  is removed and selection goes on with the next one.

Data read: PPSE FCI (BF0C, 61, 4F, 50, 87, 9F2A, 9F29); ADF FCI (6F, 84, A5, 50, 9F38).
"""

from __future__ import annotations

from dataclasses import dataclass

from terminal import tlv
from terminal.commands import select
from terminal.contactless.preprocessing import Combination, default_kernel_id
from terminal.contactless.session import CardSession
from terminal.dol import parse_dol
from terminal.errors import DolError, TlvError

__all__ = [
    "PPSE_NAME",
    "SUPPORTED_KERNELS",
    "Candidate",
    "SelectedApplication",
    "build_candidates",
    "final_select",
    "order_candidates",
    "requested_kernel",
    "select_ppse",
    "visa_legacy",
]

PPSE_NAME = b"2PAY.SYS.DDF01"
SUPPORTED_KERNELS = frozenset({2, 3})
#: Requested Kernel ID zero: the card accepts whichever kernel the reader uses (3.3.2.5 D).
ANY_KERNEL = 0
_VISA_RID = bytes.fromhex("A000000003")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry of the Candidate List (Book B, 3.3.2.6).

    Attributes:
        combination: The matching reader combination.
        adf_name: The ADF Name from the PPSE (what is selected).
        priority: Application Priority Indicator bits 4-1 (0 = none).
        label: Application Label (50), if given.
        extended_selection: Extended Selection (9F29) to append, if used.
        order: Position of the entry in the PPSE.
    """

    combination: Combination
    adf_name: bytes
    priority: int
    label: str | None
    extended_selection: bytes
    order: int

    @property
    def kernel_id(self) -> int:
        """The kernel to activate."""
        return self.combination.kernel_id


@dataclass(frozen=True, slots=True)
class SelectedApplication:
    """The result of final selection (Book B, 3.4.1).

    Attributes:
        candidate: The candidate selected.
        fci: The FCI template's data objects (tag → value, flattened).
        pdol: The PDOL (9F38) or ``None``.
        label: The label from the FCI, else from the PPSE.
    """

    candidate: Candidate
    fci: dict[int, bytes]
    pdol: bytes | None
    label: str | None


def requested_kernel(entry: dict[int, bytes], adf_name: bytes) -> int | None:
    """The Requested Kernel ID of a PPSE entry (Book B, 3.3.2.5 C and Table 3-6).

    * 9F2A absent or empty: the default kernel of the ADF Name's RID (Table 3-6);
    * byte 1 bits 8-7 ``00`` or ``01``: byte 1 itself (``b8b7 || Short Kernel ID``), so only a
      ``00`` prefix names the international kernels 2 and 3, and ``00`` means any kernel
      (:data:`ANY_KERNEL`, 3.3.2.5 D);
    * ``10`` or ``11`` (domestic): bytes 1-3, an id above 255 that no combination here
      matches; a value shorter than 3 bytes disqualifies the entry (``None``).

    Returns:
        The Requested Kernel ID, or ``None`` when the entry must be skipped (or the RID has
        no default kernel).
    """
    value = entry.get(0x9F2A)
    if not value:
        return default_kernel_id(adf_name)
    first = value[0]
    if first & 0xC0 in (0x00, 0x40):
        return first
    if len(value) < 3:
        return None
    return 0x100 | int.from_bytes(value[:3], "big")


def _label(value: bytes | None) -> str | None:
    if not value:
        return None
    return value.decode("ascii", "replace")


async def select_ppse(session: CardSession) -> list[dict[int, bytes]] | None:
    """SELECT the PPSE and return its directory entries (Book B, 3.3.2.1-3.3.2.4).

    Returns:
        The entries (each flattened), or ``None`` when the card has no usable PPSE (status
        not 9000, data not BER-TLV, no ``6F`` template).
    """
    response = await session.send(select(PPSE_NAME))
    if not response.ok:
        return None
    try:
        objects = tlv.decode(response.data)
    except TlvError:
        return None
    if len(objects) != 1 or objects[0].tag != 0x6F or objects[0].children is None:
        return None
    idd = tlv.find(objects[0].children, 0xBF0C)
    if idd is None or idd.children is None:
        return []
    return [tlv.flatten(e.children) for e in idd.children if e.tag == 0x61 and e.children]


def build_candidates(entries: list[dict[int, bytes]], combos: list[Combination]) -> list[Candidate]:
    """Match PPSE entries against the reader's combinations (Book B, 3.3.2.5-3.3.2.6)."""
    out: list[Candidate] = []
    for order, entry in enumerate(entries):
        adf = entry.get(0x4F)
        if adf is None or not 5 <= len(adf) <= 16:
            continue
        wanted = requested_kernel(entry, adf)
        for combo in combos:
            mine = combo.aid
            full = adf == mine
            partial = combo.config.partial_selection and adf.startswith(mine)
            if not (full or partial) or combo.indicators.not_allowed:
                continue
            if wanted is None or combo.kernel_id not in SUPPORTED_KERNELS:
                continue
            if wanted not in (ANY_KERNEL, combo.kernel_id):
                continue
            ext = entry.get(0x9F29, b"") if combo.config.extended_selection_supported else b""
            priority = entry.get(0x87, b"\x00")[:1] or b"\x00"
            out.append(
                Candidate(combo, adf, priority[0] & 0x0F, _label(entry.get(0x50)), ext, order)
            )
            break
    return out


def order_candidates(candidates: list[Candidate], brand_priority: list[str]) -> list[Candidate]:
    """Order the Candidate List (Book B, 3.3.3; EU IFR 2015/751 art. 8 for co-badged cards)."""
    ranks = {bytes.fromhex(aid): i for i, aid in enumerate(brand_priority)}

    def key(c: Candidate) -> tuple[int, int, int]:
        brand = next((r for a, r in ranks.items() if c.adf_name.startswith(a)), len(ranks))
        return brand, c.priority or 16, c.order

    return sorted(candidates, key=key)


async def final_select(session: CardSession, candidate: Candidate) -> SelectedApplication | None:
    """SELECT the candidate's ADF (Book B, 3.3.3.3-3.3.3.5); ``None`` when the card refuses it.

    The Extended Selection (9F29) of the PPSE entry is appended to the ADF Name when the
    combination supports it (3.3.3.3; :func:`build_candidates` keeps it only then).
    """
    name = candidate.adf_name + candidate.extended_selection
    response = await session.send(select(name))
    if not response.ok:
        return None
    try:
        objects = tlv.decode(response.data)
    except TlvError:
        return None
    if len(objects) != 1 or objects[0].tag != 0x6F or objects[0].children is None:
        return None
    fci = tlv.flatten(objects[0].children)
    return SelectedApplication(
        candidate, fci, fci.get(0x9F38), _label(fci.get(0x50)) or candidate.label
    )


def visa_legacy(selected: SelectedApplication) -> bool:
    """A Visa AID selected for kernel 3 without TTQ in its PDOL (Book B, 3.3.3.6).

    Such a card is for kernel 1; with kernel 1 not supported the Entry Point removes the
    candidate and returns to Start C (the next candidate). A PDOL that is not a valid DOL
    counts as one without the TTQ.
    """
    candidate = selected.candidate
    if candidate.kernel_id != 3 or bytes(candidate.adf_name[:5]) != _VISA_RID:
        return False
    if not selected.pdol:
        return True
    try:
        return all(tag != 0x9F66 for tag, _ in parse_dol(selected.pdol))
    except DolError:
        return True
