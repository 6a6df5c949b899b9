"""The outcome of a transaction: decision, reason, masked card identity, TVR/TSI and trace.

ARCHITECTURE.md: an expected EMV result (approved, declined, card blocked, not accepted...) is
a value. :class:`TransactionResult` carries it with what the acquirer needs (the ICC data of
ISO 8583 field 55, EMV 4.4 Book 3, 10.9 and Book 4, 12.2) and what the shop may see: the PAN
masked to first 6 + last 4, never track 2, PIN or PIN block. :meth:`TransactionResult.to_json`
is JSON-safe and masked.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from terminal.pinpad import OnlinePinBlock

__all__ = ["Decision", "TraceEntry", "TransactionResult"]


class Decision(enum.StrEnum):
    """Final outcomes of a contact transaction (EMV 4.4 Book 3, 10.8-10.9; Book 4, 11)."""

    APPROVED = "approved"
    DECLINED = "declined"
    ONLINE_REQUEST = "online_request"
    TERMINATED = "terminated"
    NOT_ACCEPTED = "not_accepted"
    TRY_ANOTHER_INTERFACE = "try_another_interface"
    CARD_BLOCKED = "card_blocked"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One physical APDU exchange, masked for printing.

    Attributes:
        command: Command name (``"SELECT"``, ``"GENERATE AC"``...).
        capdu: C-APDU hex, card data masked (VERIFY data always hidden).
        rapdu: R-APDU hex, card data masked.
        sw: SW1 SW2 as an integer.
        ms: Duration of the exchange in milliseconds.
    """

    command: str
    capdu: str
    rapdu: str
    sw: int
    ms: float

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {
            "command": self.command,
            "capdu": self.capdu,
            "rapdu": self.rapdu,
            "sw": f"{self.sw:04X}",
            "ms": round(self.ms, 3),
        }


@dataclass(slots=True)
class TransactionResult:
    """Everything the gateway learns from one transaction.

    Attributes:
        decision: The outcome.
        reason: Why, in plain words (no card data).
        masked_pan: First 6 + last 4 digits at most, ``None`` if the PAN was never read.
        aid: Hex of the selected AID, if any.
        label: Application label or preferred name.
        oda_method: ``"SDA"``, ``"DDA"``, ``"CDA"``, ``"fDDA"`` or ``None``.
        oda_verified: Whether ODA succeeded (``None`` when not performed, or CDA not checked).
        cid: Cryptogram Information Data of the last GENERATE AC.
        tvr: Terminal Verification Results (95), 5 bytes.
        tsi: Transaction Status Information (9B), 2 bytes.
        cvm_results: CVM Results (9F34), 3 bytes.
        icc_data: The field 55 TLVs for authorisation/clearing.
        online_pin: The encrypted online PIN block, when online PIN was the CVM and the block
            has not been sent yet (the contact kernel drops it once the acquirer request is
            made: the block and its KSN go to the acquirer and nowhere else).
        signature_required: The receipt needs a signature line (CVM signature).
        authorisation_response_code: Tag 8A (from the issuer, or Y1/Z1/Y3/Z3).
        issuer_script_results: Tag 9F5B (5 bytes per script command performed).
        trace: The APDU exchanges, masked (empty when the kernel ran with ``trace=False``).
        pan: The PAN digits, for the acquirer request and the store-and-forward vault only:
            never in ``repr`` nor :meth:`to_json`; never log it.
    """

    decision: Decision
    reason: str
    masked_pan: str | None = None
    aid: str | None = None
    label: str | None = None
    oda_method: str | None = None
    oda_verified: bool | None = None
    cid: bytes | None = None
    tvr: bytes = bytes(5)
    tsi: bytes = bytes(2)
    cvm_results: bytes = bytes(3)
    icc_data: bytes = b""
    online_pin: OnlinePinBlock | None = None
    signature_required: bool = False
    authorisation_response_code: bytes | None = None
    issuer_script_results: bytes = b""
    trace: list[TraceEntry] = field(default_factory=list)
    pan: str | None = field(default=None, repr=False)

    @property
    def approved(self) -> bool:
        """True when the transaction was approved."""
        return self.decision is Decision.APPROVED

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe, masked dict (no PIN block, no full PAN)."""

        def hx(value: bytes | None) -> str | None:
            return None if value is None else value.hex().upper()

        return {
            "decision": str(self.decision),
            "reason": self.reason,
            "masked_pan": self.masked_pan,
            "aid": self.aid,
            "label": self.label,
            "oda_method": self.oda_method,
            "oda_verified": self.oda_verified,
            "cid": hx(self.cid),
            "tvr": hx(self.tvr),
            "tsi": hx(self.tsi),
            "cvm_results": hx(self.cvm_results),
            "icc_data": hx(self.icc_data),
            # Whether an online PIN block was built, never the block or its KSN.
            "online_pin": None if self.online_pin is None else {"format": self.online_pin.fmt},
            "signature_required": self.signature_required,
            "authorisation_response_code": None
            if self.authorisation_response_code is None
            else self.authorisation_response_code.decode("ascii", "replace"),
            "issuer_script_results": hx(self.issuer_script_results),
            "trace": [entry.to_json() for entry in self.trace],
        }

    def __repr__(self) -> str:
        return (
            f"TransactionResult({self.decision.value}, {self.reason!r}, pan={self.masked_pan}, "
            f"aid={self.aid}, tvr={self.tvr.hex().upper()}, tsi={self.tsi.hex().upper()})"
        )
