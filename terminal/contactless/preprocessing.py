"""Entry Point pre-processing and the per-combination settings (EMV Contactless Book B, 3.1).

Before the field is switched on, the Entry Point looks at the amount and at each configured
combination of AID and kernel and sets the *Entry Point Pre-Processing Indicators*
(Book B, 3.1.1; Book A, Table 5-3). Clause numbers are those of Book B v2.5 and later:

* 3.1.1.1 - reset the indicators;
* 3.1.1.2 - copy the configured TTQ with byte 2 bits 8-7 ("online cryptogram required", "CVM
  required") reset;
* 3.1.1.3 - Status Check Support flag set and Amount, Authorised a single unit of currency:
  "Status Check Requested";
* 3.1.1.4 - Amount, Authorised zero: Zero Amount Allowed flag 0 sets "Contactless Application
  Not Allowed", else "Zero Amount";
* 3.1.1.5 - Amount, Authorised **greater than or equal to** the Reader Contactless Transaction
  Limit: "Contactless Application Not Allowed";
* 3.1.1.6 - Amount, Authorised **greater than** the Reader Contactless Floor Limit: "Reader
  Contactless Floor Limit Exceeded";
* 3.1.1.7 - no Reader Contactless Floor Limit: the same against the Terminal Floor Limit
  (9F1B), **greater than**;
* 3.1.1.8 - Amount, Authorised **greater than or equal to** the Reader CVM Required Limit:
  "Reader CVM Required Limit Exceeded";
* 3.1.1.9-3.1.1.12 - on the TTQ copy: "online cryptogram required" for a floor limit exceeded
  (9), a status check (10) or a zero amount on an online-capable reader (11; on an offline-only
  reader, TTQ byte 1 bit 4, a zero amount makes the combination "not allowed"); "CVM required"
  for the CVM limit exceeded (12);
* 3.1.1.13 - when every combination is "not allowed": Outcome TRY ANOTHER INTERFACE with
  "Please insert or swipe card" ('18'), status Processing Error, alternate interface N/A.

Kernel 2 compares with its own limits inside the kernel (Book C-2, Annex A: the Reader
Contactless Transaction Limit, Reader Contactless Floor Limit and Reader CVM Required Limit are
each "the amount *above* which", so C-2 uses ``>`` where Book B uses ``>=``); the indicators are
still computed for it, as the Entry Point does for every combination.

:class:`Kernel2Settings` is the kernel 2 configuration the kernel runs with (the CVM capability
bytes, the Kernel Configuration bits and the relay resistance timings): an AID's
``kernel2`` section of the configuration file (:class:`terminal.config.Kernel2Config`, per AID
as C-2 Annex A defines it), unless the caller passes settings of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from terminal.config import AidConfig, TerminalConfig
from terminal.contactless.outcome import (
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
    """Kernel 2 configuration of one transaction (from :class:`~terminal.config.Kernel2Config`).

    Book C-2, Annex A data objects: CVM Capability - CVM Required (DF8118) and - No CVM
    Required (DF8119), Kernel Configuration (DF811B: mag-stripe mode, on-device CVM, relay
    resistance), and the relay resistance timing parameters (DF8132-DF8137).

    Attributes:
        magstripe_mode_supported: Kernel Configuration byte 1 bit 8 inverted. This kernel
            has no mag-stripe mode, so a mag-stripe-only card ends with MAGSTRIPE NOT
            SUPPORTED either way; the flag decides the Active AFL (C-2, S3.30-S3.32): set,
            an AFL whose first entry is ``08010100`` (the mag-stripe data record) is read
            without that entry; clear (the default: the kernel does not offer mag-stripe
            mode), the AFL is read as it is.
        cvm_capability_cvm_required: Terminal Capabilities byte 2 above the CVM limit.
        cvm_capability_no_cvm_required: Terminal Capabilities byte 2 up to the CVM limit.
        rrp_supported: The kernel runs the relay resistance protocol with cards that support it.
        rrp_reported_in_tvr: Set TVR "relay resistance performed" to "not performed" when RRP
            is not run (C-2 v2.6 and later); ``False`` models an earlier kernel.
        min_grace_period_ms, max_grace_period_ms: Book C-2 DF8133 / DF8134 in milliseconds.
        transmission_time_cmd_ms, transmission_time_resp_ms: DF8134/DF8135 analogues.
        rr_accuracy_threshold_ms: DF8136 in milliseconds.
    """

    magstripe_mode_supported: bool = False
    cvm_capability_cvm_required: int = 0x60
    cvm_capability_no_cvm_required: int = 0x08
    rrp_supported: bool = True
    rrp_reported_in_tvr: bool = True
    min_grace_period_ms: float = 5.0
    max_grace_period_ms: float = 50.0
    transmission_time_cmd_ms: float = 1.8
    transmission_time_resp_ms: float = 1.8
    rr_accuracy_threshold_ms: float = 30.0

    @classmethod
    def for_aid(cls, aid: AidConfig) -> Kernel2Settings:
        """The settings an AID's configuration gives (the defaults when it has none)."""
        if aid.kernel2 is None:
            return cls()
        return cls(**aid.kernel2.model_dump())


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
    """Compute the pre-processing indicators of one combination (Book B, 3.1.1.1-3.1.1.12).

    Args:
        aid: The combination's configuration (limits, TTQ, status check, zero amount).
        request: The transaction (Amount, Authorised and currency exponent are read).

    Returns:
        The indicators, with the TTQ copy updated (byte 2 bits 8-7).
    """
    amount = request.amount
    ttq = bytearray(bytes.fromhex(aid.ttq))
    ttq[1] &= 0x3F  # 3.1.1.2: reset "online cryptogram required" and "CVM required"
    status_check = aid.status_check_supported and amount == 10**request.currency_exponent
    not_allowed = False
    zero = False
    if amount == 0:  # 3.1.1.4
        if aid.zero_amount_allowed:
            zero = True
        else:
            not_allowed = True
    limit = aid.reader_ctls_transaction_limit
    if limit is not None and amount >= limit:  # 3.1.1.5
        not_allowed = True
    floor = aid.reader_ctls_floor_limit
    if floor is None:  # 3.1.1.7
        floor = aid.floor_limit
    floor_exceeded = amount > floor  # 3.1.1.6 / 3.1.1.7
    cvm_limit = aid.reader_cvm_required_limit
    cvm_exceeded = cvm_limit is not None and amount >= cvm_limit  # 3.1.1.8
    if floor_exceeded or status_check:  # 3.1.1.9, 3.1.1.10
        ttq[1] |= 0x80
    if zero:  # 3.1.1.11
        if ttq[0] & 0x08:  # offline-only reader
            not_allowed = True
        else:
            ttq[1] |= 0x80
    if cvm_exceeded:  # 3.1.1.12
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
    """The outcome when no combination may be used (Book B, 3.1.1.13), else ``None``.

    Every combination "Contactless Application Not Allowed" (or none configured) gives TRY
    ANOTHER INTERFACE with "Please insert or swipe card" ('18'), status Processing Error; the
    alternate interface preference is N/A (the cashier chooses contact chip or swipe).
    """
    if combos and not all(c.indicators.not_allowed for c in combos):
        return None
    return OutcomeParameters(
        Outcome.TRY_ANOTHER_INTERFACE,
        ui_on_outcome=UiRequest(Message.INSERT_OR_SWIPE, UiStatus.PROCESSING_ERROR),
    )
