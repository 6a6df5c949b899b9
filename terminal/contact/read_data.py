"""Initiate application processing and read application data (EMV 4.4 Book 3, 10.1 and 10.2).

* 10.1: build the PDOL-related data (9F38 from the FCI; ``83 00`` without a PDOL) and send
  GET PROCESSING OPTIONS. ``6985`` means "conditions of use not satisfied": the application is
  removed and selection resumes (returned as ``False``). Any other non-9000 status ends the
  transaction. The response gives the AIP (82) and AFL (94), format 1 (80) or 2 (77).
* 10.2: READ RECORD for every record the AFL names, in order. A record that is not read
  (status other than 9000) ends the transaction; records of SFI 1-10 must be one ``70``
  template; a primitive data object met twice ends the transaction ("redundant data"); the
  records counted for ODA are fed to the static data collector (Book 3, 10.3). Afterwards the
  mandatory objects must be present: Application Expiration Date (5F24), PAN (5A), CDOL1 (8C)
  and CDOL2 (8D); else the transaction terminates.

Data read: FCI 9F38, terminal data. Data written: 82, 94 and every record object in
``txn.card``; ``txn.pdol_data`` (needed again for the CDA hash); ``txn.collector``.
"""

from __future__ import annotations

from terminal.bits import Aip
from terminal.commands import get_processing_options, parse_gpo, parse_record, read_record
from terminal.contact.state import Transaction
from terminal.dol import parse_dol
from terminal.errors import CardDataError
from terminal.oda.static_data import StaticDataCollector, parse_afl
from terminal.result import Decision
from terminal.tlv import iter_tlvs

__all__ = ["MANDATORY_TAGS", "initiate", "read_application_data"]

#: Book 3, 10.2 and Annex A: objects whose absence terminates the transaction.
MANDATORY_TAGS = (0x5F24, 0x5A, 0x8C, 0x8D)


async def initiate(txn: Transaction) -> bool:
    """GET PROCESSING OPTIONS with the PDOL data (Book 3, 10.1).

    Returns:
        ``True`` when the card answered with AIP and AFL; ``False`` on ``6985`` (the flow
        removes the application and returns to selection).

    Raises:
        EndTransaction: TERMINATED on any other status word.
        CardDataError: when the PDOL or the response is malformed.
    """
    pdol = txn.fci.pdol if txn.fci is not None else None
    entries = parse_dol(pdol) if pdol else []
    txn.pdol_data = txn.dol_data(entries) if entries else b""
    response = await txn.io.send(get_processing_options(txn.pdol_data), dol=entries)
    if response.sw == 0x6985:
        return False
    if response.sw != 0x9000:
        raise txn.end(Decision.TERMINATED, f"GET PROCESSING OPTIONS failed ({response.sw:04X})")
    gpo = parse_gpo(response.data)
    for tag, value in gpo.data.items():
        txn.card.setdefault(tag, value)
    txn.card[0x82] = gpo.aip
    txn.card[0x94] = gpo.afl
    txn.aip = Aip(gpo.aip)
    return True


def _store(txn: Transaction, sfi: int, number: int, data: bytes) -> None:
    """Keep a record's primitive objects; a duplicate ends the transaction (Book 3, 10.2)."""
    if sfi > 10 and (not data or data[0] != 0x70):
        return  # proprietary file content: not interpreted, only hashed for ODA
    for obj in iter_tlvs(parse_record(data)):
        if obj.children is not None:
            continue
        if obj.tag in txn.record_tags:
            raise CardDataError(f"redundant data object in SFI {sfi} record {number}", tag=obj.tag)
        txn.record_tags.add(obj.tag)
        txn.card[obj.tag] = obj.value


async def read_application_data(txn: Transaction) -> None:
    """Read every record the AFL names and check the mandatory data (Book 3, 10.2).

    Raises:
        EndTransaction: TERMINATED when a record cannot be read or a mandatory object is
            missing.
        CardDataError: on a malformed AFL or record, or redundant data.
    """
    afl = txn.card.get(0x94, b"")
    txn.collector = StaticDataCollector(afl)
    for sfi, first, last, _oda in parse_afl(afl):
        for number in range(first, last + 1):
            response = await txn.io.send(read_record(sfi, number))
            if response.sw != 0x9000:
                raise txn.end(
                    Decision.TERMINATED,
                    f"READ RECORD SFI {sfi} record {number} failed ({response.sw:04X})",
                )
            txn.collector.add_record(sfi, number, response.data)
            _store(txn, sfi, number, response.data)
    missing = [f"{tag:02X}" for tag in MANDATORY_TAGS if tag not in txn.card]
    if missing:
        raise txn.end(Decision.TERMINATED, f"mandatory card data missing: {', '.join(missing)}")
    pan = txn.card[0x5A].hex().upper().rstrip("F")
    if not pan.isdigit() or not 8 <= len(pan) <= 19:
        raise CardDataError("PAN is not 8-19 BCD digits", tag=0x5A)
