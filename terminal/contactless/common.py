"""Pieces both contactless kernels use (EMV Contactless Book A, 6-7; Books C-2 and C-3).

* the terminal data of a contactless transaction (:func:`terminal_data`), from
  :meth:`terminal.config.TerminalConfig.terminal_data` with the Entry Point's TTQ copy;
* the records of an AFL read into the card data with the ODA static data collected
  (:func:`read_afl_records`, EMV 4.4 Book 3, 10.2; Book 2, 5.4);
* the ICC data for the authorisation request (:func:`icc_data`, Book 4, 12.2: what ISO 8583
  field 55 carries; sensitive tags are left out);
* the standard UI requests of each outcome (Book A, 9.4).
"""

from __future__ import annotations

import functools

from terminal import tlv
from terminal.capk import CapkStore
from terminal.commands import read_record
from terminal.config import AidConfig, TerminalConfig
from terminal.contactless.outcome import Message, Outcome, OutcomeParameters, UiRequest, UiStatus
from terminal.contactless.session import CardSession, record_tlvs
from terminal.environment import Environment, TransactionRequest
from terminal.errors import CardDataError
from terminal.masking import mask_pan
from terminal.oda import StaticDataCollector, parse_afl

__all__ = [
    "HOLD_MS",
    "ICC_DATA_TAGS",
    "RecordError",
    "capk_store",
    "icc_data",
    "masked_pan_of",
    "pan_of",
    "read_afl_records",
    "refund_outcome",
    "terminal_data",
    "ui_approved",
    "ui_declined",
    "ui_online",
]

#: Message hold time for outcome messages (Book A, 9.2: "Message Hold Time", default 1.3 s).
HOLD_MS = 1300

#: Data objects sent to the acquirer with an online request or a clearing record
#: (Book 4, 12.2 and the kernel's data record: Book C-2, Table 4.x; Book C-3, 5.x).
#: Track 2 (57) and the PAN (5A) are deliberately absent: the PAN travels in
#: :attr:`ContactlessResult.pan <terminal.contactless.result.ContactlessResult.pan>`, which
#: never reaches a repr, ``to_json`` or a log.
ICC_DATA_TAGS = (
    0x82,
    0x84,
    0x95,
    0x9A,
    0x9C,
    0x5F2A,
    0x5F34,
    0x9F02,
    0x9F03,
    0x9F09,
    0x9F10,
    0x9F1A,
    0x9F1E,
    0x9F26,
    0x9F27,
    0x9F33,
    0x9F34,
    0x9F35,
    0x9F36,
    0x9F37,
    0x9F41,
    0x9F53,
    0x9F66,
    0x9F6C,
    0x9F6E,
    0x9F7C,
)


class RecordError(Exception):
    """READ RECORD answered a status other than 9000 (carries the status word)."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"READ RECORD status {sw:04X}")
        self.sw = sw


def terminal_data(
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    aid: AidConfig,
    ttq: bytes | None,
) -> dict[int, bytes]:
    """Terminal-sourced data of the transaction, with the TTQ copy of pre-processing (Book B,
    3.1.1) in 9F66 and the contactless POS entry mode ``07`` (Book A, 5.7)."""
    data = config.terminal_data(request, env, aid)
    if ttq is not None:
        data[0x9F66] = ttq
    data[0x9F39] = b"\x07"
    return data


async def read_afl_records(
    session: CardSession, afl: bytes, card: dict[int, bytes], *, unique: bool = False
) -> StaticDataCollector:
    """READ RECORD every record the AFL names into ``card`` (EMV 4.4 Book 3, 10.2).

    Args:
        session: The card session.
        afl: Tag 94.
        card: The card data; each primitive tag's first occurrence is kept.
        unique: Reject a tag that a record repeats (Book C-2, S4.x "CARD DATA ERROR").

    Returns:
        The static data collector fed with the records marked for ODA.

    Raises:
        CardDataError: on a malformed AFL, a record that is not a 70 template, or (``unique``)
            a repeated tag.
        TlvError: on a record that is not BER-TLV.
        RecordError: on a status other than 9000.
    """
    entries = parse_afl(afl)
    collector = StaticDataCollector(afl)
    seen: set[int] = set()
    for sfi, first, last, _oda in entries:
        for number in range(first, last + 1):
            response = await session.send(read_record(sfi, number))
            if not response.ok:
                raise RecordError(response.sw)
            objects = record_tlvs(response.data, sfi, number)
            collector.add_record(sfi, number, response.data)
            if unique:
                for obj in tlv.iter_tlvs(objects):
                    if obj.children is None and obj.tag in seen:
                        raise CardDataError("tag repeated in records", tag=obj.tag)
                    seen.add(obj.tag)
            tlv.flatten(objects, card)
    return collector


@functools.lru_cache(maxsize=8)
def _capk_files(files: tuple[str, ...]) -> CapkStore:
    return TerminalConfig(ca_keys=list(files) or None).capk_store()


def capk_store(config: TerminalConfig) -> CapkStore:
    """The configuration's CA public keys, loaded once per set of key files (Book 2, 11.2).

    The store is shared between transactions; it is only read by the kernels.
    """
    return _capk_files(tuple(config.ca_keys or ()))


def icc_data(card: dict[int, bytes], terminal: dict[int, bytes]) -> dict[int, bytes]:
    """The authorisation data objects present, card values first (Book 4, 12.2)."""
    out: dict[int, bytes] = {}
    for tag in ICC_DATA_TAGS:
        value = card.get(tag)
        if value is None:
            value = terminal.get(tag)
        if value is not None:
            out[tag] = value
    return out


def pan_of(card: dict[int, bytes]) -> str | None:
    """The PAN digits from 5A, else from track 2 (57), for the authorisation request only.

    Never log or print the result: it is the full PAN (ARCHITECTURE.md, card data).
    """
    pan = card.get(0x5A)
    if pan is not None:
        return pan.hex().upper().rstrip("F")
    track2 = card.get(0x57)
    if track2 is not None:
        return track2.hex().upper().partition("D")[0]
    return None


def masked_pan_of(card: dict[int, bytes]) -> str | None:
    """The masked PAN from 5A, else from track 2 (57); ``None`` when neither is present."""
    pan = card.get(0x5A)
    if pan is not None:
        return mask_pan(pan.hex().upper())
    track2 = card.get(0x57)
    if track2 is not None:
        return mask_pan(track2.hex().upper().partition("D")[0])
    return None


def refund_outcome() -> OutcomeParameters:
    """The outcome of an AAC on a transaction that is not a purchase or cash (a refund): END
    APPLICATION with the card's data record for clearing and "clear display" ('1E'), status
    Not Ready, no hold time (Book C-2, S910.74-S910.75; kernel 3 ends a refund the same way).
    """
    return OutcomeParameters(
        Outcome.END_APPLICATION,
        data_record_present=True,
        ui_on_outcome=UiRequest(Message.CLEAR_DISPLAY, UiStatus.NOT_READY, 0),
    )


def ui_approved(signature: bool = False) -> UiRequest:
    """ "Approved" (or "Approved, please sign") on the outcome (Book A, 9.4)."""
    message = Message.APPROVED_PLEASE_SIGN if signature else Message.APPROVED
    return UiRequest(message, UiStatus.CARD_READ_SUCCESSFULLY, HOLD_MS)


def ui_declined() -> UiRequest:
    """ "Not authorised" on a declined outcome (Book A, 9.4)."""
    return UiRequest(Message.NOT_AUTHORISED, UiStatus.NOT_READY, HOLD_MS)


def ui_online() -> UiRequest:
    """ "Authorising, please wait" on an online request (Book A, 9.4)."""
    return UiRequest(Message.AUTHORISING, UiStatus.NOT_READY, 0)
