"""Entry Point pre-processing and the per-combination settings (EMV Contactless Book B, 3.1).

Before the field is switched on, the Entry Point looks at the amount and at each configured
combination of AID and kernel and sets the *Entry Point Pre-Processing Indicators*
(Book B, 3.1.1, Table 3-2):

* 3.1.1.1 - reset the indicators; copy the configured TTQ with byte 2 bits 8-7 cleared;
* 3.1.1.2 - status check: a single unit of currency with status check supported sets
  "Status Check Requested";
* 3.1.1.3 - zero amount: not allowed sets "Contactless Application Not Allowed", else "Zero
  Amount";
* 3.1.1.4 - Amount >= Reader Contactless Transaction Limit sets "Contactless Application Not
  Allowed";
* 3.1.1.5/6 - Amount > Reader Contactless Floor Limit (else the Terminal Floor Limit 9F1B) sets
  "Reader Contactless Floor Limit Exceeded";
* 3.1.1.7 - Amount >= Reader CVM Required Limit sets "Reader CVM Required Limit Exceeded";
* 3.1.1.8-11 - on the TTQ copy: "Online cryptogram required" for a floor limit exceeded, a status
  check or a zero amount; "CVM required" for the CVM limit exceeded;
* 3.1.1.12 - when every combination is "not allowed": Outcome TRY ANOTHER INTERFACE.

Kernel 2 does its own limit checks from its configuration (Book C-2, 3.x); the indicators are
still computed for it, as the Entry Point does for every combination.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from terminal.config import AidConfig, TerminalConfig
from terminal.contactless.outcome import (
    AlternateInterface,
    Message,
    Outcome,
    OutcomeParameters,
    UiRequest,
    UiStatus,
)
from terminal.environment import TransactionRequest

__all__ = [
    "DEFAULT_KERNEL_BY_RID",
    "Combination",
    "Indicators",
    "Kernel2Settings",
    "all_not_allowed",
    "combinations",
    "default_kernel_id",
    "preprocess",
]

#: Default kernel per RID when the PPSE entry carries no Kernel Identifier (Book B, 3.3.2.5
#: and Table 3-6): Mastercard 2, Visa 3, American Express 4, JCB 5, Discover 6, UnionPay 7.
DEFAULT_KERNEL_BY_RID: dict[bytes, int] = {
    bytes.fromhex("A000000004"): 2,
    bytes.fromhex("A000000003"): 3,
    bytes.fromhex("A000000025"): 4,
    bytes.fromhex("A000000065"): 5,
    bytes.fromhex("A000000152"): 6,
    bytes.fromhex("A000000333"): 7,
}


def default_kernel_id(aid: bytes) -> int | None:
    """The default kernel for an AID's RID (Book B, Table 3-6), or ``None`` if unknown."""
    return DEFAULT_KERNEL_BY_RID.get(bytes(aid[:5]))


@dataclass(frozen=True, slots=True)
class Kernel2Settings:
    """Kernel 2 configuration that :class:`~terminal.config.AidConfig` does not carry.

    Book C-2, Annex A data objects: CVM Capability - CVM Required (DF8118) and - No CVM
    Required (DF8119), Kernel Configuration (DF811B: on-device CVM, relay resistance), and the
    relay resistance timing parameters (DF8132-DF8137).

    Attributes:
        cvm_capability_cvm_required: Terminal Capabilities byte 2 above the CVM limit.
        cvm_capability_no_cvm_required: Terminal Capabilities byte 2 up to the CVM limit.
        rrp_supported: The kernel runs the relay resistance protocol with cards that support it.
        rrp_reported_in_tvr: Set TVR "relay resistance performed" to "not performed" when RRP
            is not run (C-2 v2.6 and later); ``False`` models an earlier kernel.
        min_grace_period_ms, max_grace_period_ms: Book C-2 DF8133 / DF8134 in milliseconds.
        transmission_time_cmd_ms, transmission_time_resp_ms: DF8134/DF8135 analogues.
        rr_accuracy_threshold_ms: DF8136 in milliseconds.
    """

    cvm_capability_cvm_required: int = 0x60
    cvm_capability_no_cvm_required: int = 0x08
    rrp_supported: bool = True
    rrp_reported_in_tvr: bool = True
    min_grace_period_ms: float = 5.0
    max_grace_period_ms: float = 50.0
    transmission_time_cmd_ms: float = 1.8
    transmission_time_resp_ms: float = 1.8
    rr_accuracy_threshold_ms: float = 30.0


@dataclass(frozen=True, slots=True)
class Indicators:
    """Entry Point Pre-Processing Indicators for one combination (Book B, Table 3-2)."""

    status_check_requested: bool = False
    not_allowed: bool = False
    zero_amount: bool = False
    floor_limit_exceeded: bool = False
    cvm_required_limit_exceeded: bool = False
    ttq: bytes | None = None


@dataclass(frozen=True, slots=True)
class Combination:
    """A supported combination of AID and kernel with its pre-processing result (Book B, 3.1).

    Attributes:
        config: The application's configuration.
        kernel_id: The kernel configured for it (or the RID's default).
        indicators: The pre-processing indicators for this transaction.
    """

    config: AidConfig
    kernel_id: int
    indicators: Indicators = field(default_factory=Indicators)

    @property
    def aid(self) -> bytes:
        """The configured AID."""
        return self.config.aid_bytes


def preprocess(aid: AidConfig, request: TransactionRequest) -> Indicators:
    """Compute the pre-processing indicators of one combination (Book B, 3.1.1.1-3.1.1.11).

    Args:
        aid: The combination's configuration (limits, TTQ, status check, zero amount).
        request: The transaction (Amount, Authorised and currency exponent are read).

    Returns:
        The indicators, with the TTQ copy updated (byte 2 bits 8-7).
    """
    amount = request.amount
    ttq = bytearray(bytes.fromhex(aid.ttq))
    ttq[1] &= 0x3F  # 3.1.1.1: reset "online cryptogram required" and "CVM required"
    status_check = aid.status_check_supported and amount == 10**request.currency_exponent
    not_allowed = False
    zero = False
    if amount == 0:
        if aid.zero_amount_allowed:
            zero = True
        else:
            not_allowed = True
    limit = aid.reader_ctls_transaction_limit
    if limit is not None and amount >= limit:
        not_allowed = True
    floor = aid.reader_ctls_floor_limit
    if floor is None:
        floor = aid.floor_limit
    floor_exceeded = amount > floor
    cvm_limit = aid.reader_cvm_required_limit
    cvm_exceeded = cvm_limit is not None and amount >= cvm_limit
    if floor_exceeded or status_check or zero:
        ttq[1] |= 0x80
    if cvm_exceeded:
        ttq[1] |= 0x40
    return Indicators(status_check, not_allowed, zero, floor_exceeded, cvm_exceeded, bytes(ttq))


def combinations(config: TerminalConfig, request: TransactionRequest) -> list[Combination]:
    """Every configured contactless combination with its indicators (Book B, 3.1.1).

    A configured application whose kernel is neither set nor implied by its RID is left out;
    so is one that does not accept the transaction type (Book B, 3.1.1: per transaction type).
    """
    out: list[Combination] = []
    for aid in config.aids:
        kernel = aid.kernel_id or default_kernel_id(aid.aid_bytes)
        if kernel is None:
            continue
        if int(request.transaction_type) not in aid.transaction_types:
            continue
        out.append(Combination(aid, kernel, preprocess(aid, request)))
    return out


def all_not_allowed(combos: list[Combination]) -> OutcomeParameters | None:
    """The outcome when no combination may be used (Book B, 3.1.1.12), else ``None``.

    Every combination "Contactless Application Not Allowed" (or none configured) gives TRY
    ANOTHER INTERFACE with "Insert, swipe or try another card" and the contact chip as the
    alternate interface.
    """
    if combos and not all(c.indicators.not_allowed for c in combos):
        return None
    return OutcomeParameters(
        Outcome.TRY_ANOTHER_INTERFACE,
        ui_on_outcome=UiRequest(Message.INSERT_SWIPE_OR_OTHER_CARD, UiStatus.PROCESSING_ERROR),
        alternate_interface=AlternateInterface.CONTACT_CHIP,
    )
