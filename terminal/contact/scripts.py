"""Issuer script processing (EMV 4.4 Book 3, 10.10; Book 4, Annex A5 for 9F5B).

The issuer sends Issuer Script Templates 1 (``71``, before the second GENERATE AC) and 2
(``72``, after it). Each template holds an optional Script Identifier (9F18, 4 bytes) and
Issuer Script Commands (``86``, each a complete C-APDU). The terminal sends the commands in
order; a status word with SW1 ``90``, ``62`` or ``63`` lets it go on, any other ends that
script (the following commands of that script are not sent). A template that does not parse
is not performed.

Results: TSI "Script processing was performed" once any script was handled; on a failed
script TVR "Script processing failed before/after final GENERATE AC". The Issuer Script
Results (9F5B) get 5 bytes per script: result in the high nibble of byte 1 (``0`` not
performed, ``1`` failed, ``2`` successful), the number of the failing command in the low
nibble (``0`` when none failed, ``F`` from the 15th), then the Script Identifier (or zeros).

Data read: 71, 72 (from the issuer). Data written: 9F5B, 95, 9B.
"""

from __future__ import annotations

from terminal.apdu import CommandApdu
from terminal.bits import TsiBit, TvrBit
from terminal.contact.state import Transaction
from terminal.errors import ApduError, TlvError
from terminal.tlv import Tlv, decode

__all__ = ["TEMPLATE_AFTER", "TEMPLATE_BEFORE", "process_scripts"]

TEMPLATE_BEFORE = 0x71
TEMPLATE_AFTER = 0x72
_NOT_PERFORMED, _FAILED, _SUCCESSFUL = 0x00, 0x10, 0x20


def _templates(scripts: bytes | None, template: int) -> list[Tlv | None]:
    """The templates of one kind; ``None`` stands for a template that does not parse."""
    if not scripts:
        return []
    try:
        objects = decode(scripts)
    except TlvError:
        return [None] if scripts[:1] == bytes((template,)) else []
    return [obj for obj in objects if obj.tag == template]


async def _run(txn: Transaction, script: Tlv) -> tuple[int, int, bytes]:
    """Send one script's commands; (result nibble, failing command number, script id)."""
    identifier = bytes(4)
    number = 0
    for obj in script.children or ():
        if obj.tag == 0x9F18 and len(obj.value) == 4:
            identifier = obj.value
            continue
        if obj.tag != 0x86:
            continue
        number += 1
        try:
            command = CommandApdu.parse(obj.value)
        except ApduError:
            return _FAILED, min(number, 15), identifier
        response = await txn.io.send(command)
        if response.sw1 not in (0x90, 0x62, 0x63):
            return _FAILED, min(number, 15), identifier
    return _SUCCESSFUL, 0, identifier


async def process_scripts(txn: Transaction, scripts: bytes | None, template: int) -> None:
    """Process the issuer scripts of one template kind (Book 3, 10.10).

    Args:
        txn: The transaction.
        scripts: The issuer's script data (71/72 templates concatenated), or ``None``.
        template: :data:`TEMPLATE_BEFORE` (71) or :data:`TEMPLATE_AFTER` (72).
    """
    failed_bit = (
        TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENAC
        if template == TEMPLATE_BEFORE
        else TvrBit.SCRIPT_FAILED_AFTER_FINAL_GENAC
    )
    for script in _templates(scripts, template):
        txn.set_tsi(TsiBit.SCRIPT_PROCESSING_PERFORMED)
        if script is None or script.children is None:
            txn.set_tvr(failed_bit)
            txn.script_results += bytes((_NOT_PERFORMED,)) + bytes(4)
            continue
        result, number, identifier = await _run(txn, script)
        if result == _FAILED:
            txn.set_tvr(failed_bit)
        txn.script_results += bytes((result | number,)) + identifier
    if txn.script_results:
        txn.terminal[0x9F5B] = bytes(txn.script_results)
