"""Outcomes, outcome parameters and UI requests (EMV Contactless Book A, 6-7; Book B, 3.5).

A kernel ends by handing the Entry Point an *Outcome* (Book A, 6.2) together with its
parameters (Book A, Table 6-1): where to start again, the CVM to perform, the user-interface
requests to show on the outcome and on a restart, whether a data record is present, the
alternate interface to use, the field-off request and the removal timeout. The user-interface
request (Book A, 7.1, Table 7-1 "User Interface Request Data") carries a standard message
identifier (Book A, 9.4, Table 9-4), a status and a hold time.

Everything here is a plain value: no card data is ever stored in these objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "AlternateInterface",
    "CvmOutcome",
    "ErrorIndication",
    "L2Error",
    "Message",
    "Outcome",
    "OutcomeParameters",
    "Start",
    "UiRequest",
    "UiStatus",
    "end_application",
    "entry_point_end_application",
    "select_next",
]


class Outcome(enum.Enum):
    """The outcome a kernel or the Entry Point returns (Book A, 6.2)."""

    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    ONLINE_REQUEST = "ONLINE REQUEST"
    TRY_AGAIN = "TRY AGAIN"
    SELECT_NEXT = "SELECT NEXT"
    TRY_ANOTHER_INTERFACE = "TRY ANOTHER INTERFACE"
    END_APPLICATION = "END APPLICATION"


class Start(enum.Enum):
    """Where the Entry Point restarts (Book A, Table 6-1 "Start"; Book B, 3.1-3.4)."""

    NA = "N/A"
    A = "A"  # pre-processing
    B = "B"  # protocol activation
    C = "C"  # combination selection (next candidate)
    D = "D"  # kernel activation (after an online response)


class CvmOutcome(enum.Enum):
    """The CVM outcome parameter (Book A, Table 6-1 "CVM")."""

    NA = "N/A"
    NO_CVM = "NO CVM"
    ONLINE_PIN = "ONLINE PIN"
    SIGNATURE = "OBTAIN SIGNATURE"
    CONFIRMATION_CODE_VERIFIED = "CONFIRMATION CODE VERIFIED"


class AlternateInterface(enum.Enum):
    """Alternate interface preference (Book A, Table 6-1)."""

    NA = "N/A"
    CONTACT_CHIP = "CONTACT CHIP"
    MAG_STRIPE = "MAG-STRIPE"


class Message(enum.IntEnum):
    """Standard message identifiers (Book A, 9.4, Table 9-4)."""

    APPROVED = 0x03
    NOT_AUTHORISED = 0x07
    ENTER_PIN = 0x09
    PROCESSING_ERROR = 0x0F
    REMOVE_CARD = 0x10
    WELCOME = 0x14
    PRESENT_CARD = 0x15
    PROCESSING = 0x16
    CARD_READ_OK = 0x17
    INSERT_OR_SWIPE = 0x18
    PRESENT_ONE_CARD_ONLY = 0x19
    APPROVED_PLEASE_SIGN = 0x1A
    AUTHORISING = 0x1B
    INSERT_SWIPE_OR_OTHER_CARD = 0x1C
    INSERT_CARD = 0x1D
    CLEAR_DISPLAY = 0x1E
    SEE_PHONE = 0x20
    PRESENT_CARD_AGAIN = 0x21


class UiStatus(enum.Enum):
    """Reader status of a UI request (Book A, 9.2, Table 9-2)."""

    NOT_READY = "Not Ready"
    IDLE = "Idle"
    READY_TO_READ = "Ready to Read"
    PROCESSING = "Processing"
    CARD_READ_SUCCESSFULLY = "Card Read Successfully"
    PROCESSING_ERROR = "Processing Error"


@dataclass(frozen=True, slots=True)
class UiRequest:
    """A user-interface request (Book A, 7.1, Table 7-1).

    Attributes:
        message: The message to display.
        status: The reader status (and its LED/sound indication).
        hold_time_ms: Minimum display time in milliseconds.
        amount: An amount to show with the message (minor units), or ``None``.
    """

    message: Message
    status: UiStatus
    hold_time_ms: int = 0
    amount: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready rendering."""
        out: dict[str, Any] = {
            "message": self.message.name,
            "message_id": f"{int(self.message):02X}",
            "status": self.status.value,
            "hold_time_ms": self.hold_time_ms,
        }
        if self.amount is not None:
            out["amount"] = self.amount
        return out


class L2Error(enum.Enum):
    """Level-2 error indications (Book C-2, Table A.xx "Error Indication"; Book A, 6.2)."""

    OK = "OK"
    CARD_DATA_MISSING = "CARD DATA MISSING"
    CAM_FAILED = "CAM FAILED"
    STATUS_BYTES = "STATUS BYTES"
    PARSING_ERROR = "PARSING ERROR"
    MAX_LIMIT_EXCEEDED = "MAX LIMIT EXCEEDED"
    CARD_DATA_ERROR = "CARD DATA ERROR"
    MAGSTRIPE_NOT_SUPPORTED = "MAGSTRIPE NOT SUPPORTED"
    NO_PPSE = "NO PPSE"
    PPSE_FAULT = "PPSE FAULT"
    EMPTY_CANDIDATE_LIST = "EMPTY CANDIDATE LIST"
    TERMINAL_DATA_ERROR = "TERMINAL DATA ERROR"


@dataclass(frozen=True, slots=True)
class ErrorIndication:
    """Why a transaction ended abnormally (Book C-2, Error Indication DF8115).

    Attributes:
        l2: The level-2 error.
        sw: The status word that caused it, where one did.
        detail: A short note (a tag, a step; never card data).
    """

    l2: L2Error = L2Error.OK
    sw: int | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready rendering."""
        return {
            "l2": self.l2.value,
            "sw": None if self.sw is None else f"{self.sw:04X}",
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class OutcomeParameters:
    """An Outcome and its parameters (Book A, 6.2, Table 6-1).

    Attributes:
        outcome: The outcome (Status).
        start: Where to restart (``NA`` unless the outcome asks for a restart).
        online_response_data: What the kernel needs back after an online request ("N/A",
            "EMV data" or "any"), Book A, Table 6-1.
        cvm: The CVM the POS system must perform (or that was verified on the device).
        ui_on_outcome: The UI request to show with the outcome, if any.
        ui_on_restart: The UI request to show when the Entry Point restarts, if any.
        data_record_present: The kernel produced a data record (icc data for the host).
        alternate_interface: The interface to try on Try Another Interface.
        receipt: A receipt is required (signature).
        field_off_hold_ms: Field-off request: switch the field off for that many ms, or
            ``None`` when no field-off is requested.
        removal_timeout_ms: Time the reader waits for card removal (0 = none).
        error: The error indication, when the transaction ended on an error.
    """

    outcome: Outcome
    start: Start = Start.NA
    online_response_data: str = "N/A"
    cvm: CvmOutcome = CvmOutcome.NA
    ui_on_outcome: UiRequest | None = None
    ui_on_restart: UiRequest | None = None
    data_record_present: bool = False
    alternate_interface: AlternateInterface = AlternateInterface.NA
    receipt: bool = False
    field_off_hold_ms: int | None = None
    removal_timeout_ms: int = 0
    error: ErrorIndication = field(default_factory=ErrorIndication)

    def with_changes(self, **changes: Any) -> OutcomeParameters:
        """A copy with some parameters changed."""
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready rendering."""
        return {
            "outcome": self.outcome.value,
            "start": self.start.value,
            "online_response_data": self.online_response_data,
            "cvm": self.cvm.value,
            "ui_on_outcome": None if self.ui_on_outcome is None else self.ui_on_outcome.to_json(),
            "ui_on_restart": None if self.ui_on_restart is None else self.ui_on_restart.to_json(),
            "data_record_present": self.data_record_present,
            "alternate_interface": self.alternate_interface.value,
            "receipt": self.receipt,
            "field_off_hold_ms": self.field_off_hold_ms,
            "removal_timeout_ms": self.removal_timeout_ms,
            "error": self.error.to_json(),
        }


def end_application(
    l2: L2Error,
    detail: str = "",
    *,
    sw: int | None = None,
    message: Message = Message.INSERT_SWIPE_OR_OTHER_CARD,
) -> OutcomeParameters:
    """The END APPLICATION outcome of an error (Book A, 6.2; Book C-2, S3.90 and S4.x).

    Args:
        l2: The level-2 error.
        detail: A short note (never card data).
        sw: The offending status word, if any.
        message: The message to show (default: insert, swipe or try another card).
    """
    return OutcomeParameters(
        Outcome.END_APPLICATION,
        ui_on_outcome=UiRequest(message, UiStatus.NOT_READY, 1300),
        error=ErrorIndication(l2, sw, detail),
    )


def entry_point_end_application(l2: L2Error, detail: str = "") -> OutcomeParameters:
    """The Entry Point's own END APPLICATION (Book B, 3.3.2.7 and 3.3.3.5): the Candidate List
    is empty (no PPSE, no matching entry, every candidate refused). "Insert, swipe or try
    another card" ('1C') with the status Ready to Read, no hold time."""
    return OutcomeParameters(
        Outcome.END_APPLICATION,
        ui_on_outcome=UiRequest(Message.INSERT_SWIPE_OR_OTHER_CARD, UiStatus.READY_TO_READ),
        error=ErrorIndication(l2, None, detail),
    )


def select_next(l2: L2Error, detail: str = "", *, sw: int | None = None) -> OutcomeParameters:
    """The SELECT NEXT outcome: try the next candidate (Book A, 6.2; Book B, 3.5.1.2)."""
    return OutcomeParameters(
        Outcome.SELECT_NEXT, start=Start.C, error=ErrorIndication(l2, sw, detail)
    )
