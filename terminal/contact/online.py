"""Online processing and completion (EMV 4.4 Book 3, 10.9 and 10.11; Book 4, 12.2).

* The authorisation request carries the ICC data of ISO 8583 field 55 (:func:`icc_data`).
* No answer (the authoriser returns ``None``): "unable to go online" - the Default action
  codes decide (Book 3, 10.7): TC with Authorisation Response Code ``Y3``, else AAC with
  ``Z3`` (Book 4, Annex A6).
* An answer: 8A from the issuer. Issuer Authentication Data (91), when present and the AIP
  says issuer authentication is supported: in the CDOL2 data when CDOL2 asks for 91, else by
  EXTERNAL AUTHENTICATE (sent once; a status other than 9000 sets "Issuer authentication
  failed"). TSI "Issuer authentication was performed".
* Issuer Script Template 1 (71) before, and 2 (72) after, the second GENERATE AC, which asks
  for a TC when the issuer approved, else an AAC.

Data read: 82, 8D, 91, 71, 72. Data written: 8A, 91, 9F5B, 95, 9B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from terminal.bits import CryptogramType, TsiBit, TvrBit
from terminal.commands import external_authenticate
from terminal.contact.action_analysis import default_action, request_cryptogram
from terminal.contact.scripts import TEMPLATE_AFTER, TEMPLATE_BEFORE, process_scripts
from terminal.contact.state import Transaction
from terminal.dol import parse_dol
from terminal.pinpad import OnlinePinBlock
from terminal.result import Decision
from terminal.tlv import encode

__all__ = [
    "FIELD55_TAGS",
    "OnlineAuthoriser",
    "OnlineRequest",
    "OnlineResponse",
    "complete_online",
    "icc_data",
    "online_request",
    "unable_to_go_online",
]

#: The ICC data sent for authorisation (Book 4, 12.2 and the schemes' field 55 lists).
FIELD55_TAGS = (
    0x9F26, 0x9F27, 0x9F10, 0x9F37, 0x9F36, 0x95, 0x9A, 0x9C, 0x9F02, 0x5F2A, 0x82, 0x9F1A,
    0x9F03, 0x9F33, 0x9F34, 0x9F35, 0x9F1E, 0x84, 0x9F09, 0x9F41, 0x5F34, 0x9F6E, 0x9F7C,
    0x9F5B, 0x9B, 0x8A, 0x91,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OnlineRequest:
    """What the kernel sends the acquirer: no PAN in clear, the PIN only as an encrypted block.

    Attributes:
        icc_data: Field 55 TLVs.
        amount: Amount, authorised, minor units.
        currency: Numeric ISO 4217.
        transaction_type: Tag 9C.
        masked_pan: First 6 + last 4 digits.
        online_pin: The encrypted PIN block, when the CVM was online PIN.
        pan: The PAN digits, for the acquirer client only (never log it).
    """

    icc_data: bytes
    amount: int
    currency: int
    transaction_type: int
    masked_pan: str | None
    online_pin: OnlinePinBlock | None = None
    pan: str | None = None

    def __repr__(self) -> str:
        return (
            f"OnlineRequest(amount={self.amount}, currency={self.currency}, "
            f"type={self.transaction_type:02X}, pan={self.masked_pan})"
        )


@dataclass(frozen=True, slots=True)
class OnlineResponse:
    """The issuer's answer (Book 3, 10.9).

    Attributes:
        approved: The issuer approved.
        authorisation_response_code: Tag 8A, 2 characters (``b"00"``, ``b"05"``...).
        issuer_authentication_data: Tag 91 (ARPC and response code), if any.
        scripts: Issuer script templates 71/72, concatenated, if any.
        authorisation_code: Tag 89, 6 characters, if any.
    """

    approved: bool
    authorisation_response_code: bytes = b"00"
    issuer_authentication_data: bytes | None = None
    scripts: bytes | None = None
    authorisation_code: bytes | None = None


class OnlineAuthoriser(Protocol):
    """Sends the authorisation request; ``None`` means unable to go online."""

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        """Authorise online."""
        ...


_CARD_FIRST = frozenset((0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x5F34, 0x9F6E, 0x9F7C))


def icc_data(txn: Transaction) -> bytes:
    """Field 55: the listed tags present in the card or terminal data, in list order."""
    out = bytearray()
    for tag in FIELD55_TAGS:
        if tag == 0x84:
            value: bytes | None = txn.aid or None
        elif tag in _CARD_FIRST:
            value = txn.card.get(tag, txn.terminal.get(tag))
        else:
            value = txn.terminal.get(tag, txn.card.get(tag))
        if value is not None:
            out += encode(tag, value)
    return bytes(out)


def online_request(txn: Transaction) -> OnlineRequest:
    """Build the authorisation request from the transaction."""
    return OnlineRequest(
        icc_data=icc_data(txn),
        amount=txn.request.amount,
        currency=txn.request.currency_code,
        transaction_type=int(txn.request.transaction_type),
        masked_pan=txn.masked_pan,
        online_pin=txn.online_pin,
        pan=txn.pan,
    )


async def _issuer_authentication(txn: Transaction, data: bytes) -> None:
    """EXTERNAL AUTHENTICATE, or 91 in CDOL2 (Book 3, 10.9)."""
    txn.terminal[0x91] = data
    if not txn.aip.issuer_authentication_supported:
        return
    txn.set_tsi(TsiBit.ISSUER_AUTHENTICATION_PERFORMED)
    cdol2 = parse_dol(txn.card[0x8D])
    if any(tag == 0x91 for tag, _ in cdol2):
        return
    response = await txn.io.send(external_authenticate(data))
    if response.sw != 0x9000:
        txn.set_tvr(TvrBit.ISSUER_AUTHENTICATION_FAILED)


async def _second(txn: Transaction, kind: CryptogramType, reason: str) -> tuple[Decision, str]:
    """Second GENERATE AC (Book 3, 10.9): TC approves, AAC declines."""
    parsed, cda_ok = await request_cryptogram(txn, kind, second=True)
    if parsed.cryptogram_type is CryptogramType.TC and cda_ok is not False:
        return Decision.APPROVED, reason
    if cda_ok is False:
        return Decision.DECLINED, "CDA failed on the second GENERATE AC"
    return Decision.DECLINED, f"card declined at completion ({reason})"


async def unable_to_go_online(txn: Transaction) -> tuple[Decision, str]:
    """Complete an ARQC without an answer (Book 3, 10.7): Default codes; 8A Y3 or Z3."""
    kind = default_action(txn)
    txn.terminal[0x8A] = b"Y3" if kind is CryptogramType.TC else b"Z3"
    return await _second(txn, kind, "unable to go online, default action")


async def complete_online(txn: Transaction, online: OnlineAuthoriser) -> tuple[Decision, str]:
    """Go online with the ARQC, then complete (Book 3, 10.9-10.11).

    Returns:
        The decision and its reason.
    """
    try:
        response = await online(online_request(txn))
    finally:
        txn.online_pin = None  # the PIN block and its KSN go to the acquirer and nowhere else
    if response is None:
        return await unable_to_go_online(txn)
    arc = response.authorisation_response_code[:2].ljust(2, b"0")
    txn.terminal[0x8A] = arc
    if response.authorisation_code:
        txn.terminal[0x89] = response.authorisation_code
    if response.issuer_authentication_data:
        await _issuer_authentication(txn, response.issuer_authentication_data)
    await process_scripts(txn, response.scripts, TEMPLATE_BEFORE)
    kind = CryptogramType.TC if response.approved else CryptogramType.AAC
    decision = await _second(
        txn, kind, "approved by issuer" if response.approved else "declined by issuer"
    )
    await process_scripts(txn, response.scripts, TEMPLATE_AFTER)
    if not response.approved:
        return Decision.DECLINED, "declined by issuer"
    return decision
