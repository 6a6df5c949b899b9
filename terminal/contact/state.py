"""The state of one contact transaction, shared by the processing steps (EMV 4.4 Book 3, 10).

:class:`Transaction` holds what the steps read and write: the terminal data (Book 4, Annex A),
the card data read so far (tag → value, first occurrence), TVR (95), TSI (9B), CVM Results
(9F34), the ODA state and the DOL-related data sent (needed again for the CDA hash).
:class:`EndTransaction` is how a step ends the transaction with an outcome; the flow turns it
into a returned :class:`~terminal.result.TransactionResult` (it never leaves the kernel).
The repr of a :class:`Transaction` shows the masked PAN only, never the card data it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from terminal.bits import Aip, Tsi, TsiBit, Tvr, TvrBit
from terminal.capk import CapkStore
from terminal.commands import CardIo, Fci
from terminal.config import AidConfig, TerminalConfig
from terminal.dol import DolEntry, build_dol, parse_dol
from terminal.environment import Environment, TransactionRequest
from terminal.masking import mask_pan
from terminal.oda.results import IccPublicKey, OdaMethod
from terminal.oda.static_data import StaticDataCollector
from terminal.pinpad import OnlinePinBlock, PinPad
from terminal.result import Decision

__all__ = ["EndTransaction", "Transaction"]


class EndTransaction(Exception):
    """Raised by a step to end the transaction with ``decision`` (caught by the flow)."""

    def __init__(self, decision: Decision, reason: str) -> None:
        super().__init__(reason)
        self.decision = decision
        self.reason = reason


@dataclass
class Transaction:
    """Everything the steps of one contact transaction share.

    Attributes:
        io: The card channel with trace.
        config: Terminal configuration.
        request: The till's request.
        env: Injected clock and randomness.
        capk: CA public keys.
        pinpad: The PIN pad port, if any.
        terminal: Terminal-sourced data objects (updated: 95, 9B, 9F34, 8A...).
        card: Card-sourced data objects, first occurrence of each primitive tag.
    """

    io: CardIo
    config: TerminalConfig
    request: TransactionRequest
    env: Environment
    capk: CapkStore
    pinpad: PinPad | None = None
    terminal: dict[int, bytes] = field(default_factory=dict)
    card: dict[int, bytes] = field(default_factory=dict)
    tvr: Tvr = field(default_factory=Tvr)
    tsi: Tsi = field(default_factory=Tsi)
    cvm_results: bytes = bytes(3)
    aid_config: AidConfig | None = None
    fci: Fci | None = None
    aip: Aip = field(default_factory=Aip)
    pdol_data: bytes = b""
    cdol1_data: bytes = b""
    collector: StaticDataCollector | None = None
    static_data: bytes | None = None
    oda_method: OdaMethod | None = None
    oda_verified: bool | None = None
    icc_key: IccPublicKey | None = None
    cda_requested: bool = False
    online_pin: OnlinePinBlock | None = None
    signature_required: bool = False
    script_results: bytearray = field(default_factory=bytearray)
    cid: bytes | None = None
    label: str | None = None
    record_tags: set[int] = field(default_factory=set)

    def __repr__(self) -> str:
        # The default dataclass repr would print the card data (PAN, track 2): never that.
        return (
            f"Transaction(aid={self.aid.hex().upper() or None}, pan={self.masked_pan}, "
            f"tvr={self.tvr.bytes().hex().upper()}, tsi={self.tsi.bytes().hex().upper()}, "
            f"{len(self.card)} card objects)"
        )

    def set_tvr(self, bit: TvrBit) -> None:
        """Set a TVR bit (and keep tag 95 of the terminal data in step)."""
        self.tvr.set(bit)
        self.terminal[0x95] = self.tvr.bytes()

    def set_tsi(self, bit: TsiBit) -> None:
        """Set a TSI bit (and keep tag 9B in step)."""
        self.tsi.set(bit)
        self.terminal[0x9B] = self.tsi.bytes()

    def set_cvm_results(self, value: bytes) -> None:
        """Record the CVM Results (9F34)."""
        self.cvm_results = value
        self.terminal[0x9F34] = value

    def dol_data(self, dol: bytes | list[DolEntry]) -> bytes:
        """Build DOL-related data: terminal data first, then card data (Book 3, 5.4)."""
        entries = parse_dol(dol) if isinstance(dol, bytes | bytearray) else dol
        return build_dol(entries, self.terminal, self.card)

    @property
    def aid(self) -> bytes:
        """The selected application's AID (DF name), empty before selection."""
        return self.fci.df_name if self.fci is not None else b""

    @property
    def pan(self) -> str | None:
        """The PAN digits (never print this: use :attr:`masked_pan`)."""
        raw = self.card.get(0x5A)
        return None if raw is None else raw.hex().upper().rstrip("F")

    @property
    def masked_pan(self) -> str | None:
        """The PAN, first 6 + last 4 digits at most."""
        pan = self.pan
        return None if pan is None else mask_pan(pan)

    @property
    def pan_sequence_number(self) -> int | None:
        """Tag 5F34 as an integer, if present and valid BCD."""
        raw = self.card.get(0x5F34)
        if raw is None or len(raw) != 1 or not raw.hex().isdigit():
            return None
        return int(raw.hex())

    def end(self, decision: Decision, reason: str) -> EndTransaction:
        """Build the signal that ends the transaction (``raise txn.end(...)``)."""
        return EndTransaction(decision, reason)
