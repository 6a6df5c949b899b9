"""The result of a contactless transaction and its restart context (Book A, 6; Book B, 3.5).

:class:`ContactlessResult` carries the outcome parameters of Book A, Table 6-1, the kernel that
produced them and the same facts as the contact ``TransactionResult``: masked PAN, AID, label,
ODA method and result, CID, TVR, the ICC data for the authorisation request and the APDU trace.
``card_removable_at`` is the index, among the physical exchanges (those of ``trace`` when it is
recorded), of the last exchange the card had to be in the field for (the "remove card" moment,
Book A, 7.1).

Card data never appears in a repr or in :meth:`ContactlessResult.to_json`: the PAN is masked
(first 6, last 4), sensitive tags are left out of ``icc_data``, and trace APDUs are masked as they
are recorded (:class:`terminal.trace.Tracer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from terminal import tags
from terminal.contactless.outcome import Outcome, OutcomeParameters, Start, UiRequest
from terminal.result import TraceEntry

__all__ = ["ContactlessResult", "ReplayStats", "RestartContext", "TraceEntry"]


@dataclass(frozen=True, slots=True)
class RestartContext:
    """What the Entry Point keeps between a "restart" outcome and the next tap (Book B, 3.2.1).

    Attributes:
        start: Where to start again (``B``: protocol activation).
        ui_on_restart: The UI request to show instead of "present card".
        kernel_id: The kernel that asked for the restart.
        aid: The AID selected before the restart.
    """

    start: Start
    ui_on_restart: UiRequest | None = None
    kernel_id: int | None = None
    aid: bytes | None = None


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """How a replayed transaction matched its recording (filled by :mod:`.replay`)."""

    sent: int
    recorded: int
    matched: int
    unconsumed: int

    def to_json(self) -> dict[str, int]:
        """A JSON-ready rendering."""
        return {
            "sent": self.sent,
            "recorded": self.recorded,
            "matched": self.matched,
            "unconsumed": self.unconsumed,
        }


@dataclass(slots=True)
class ContactlessResult:
    """The result of :func:`terminal.contactless.run_contactless_transaction`.

    Attributes:
        parameters: The outcome and its parameters (Book A, Table 6-1).
        kernel_id: The kernel that ran (2, 3), or ``None`` when none was activated.
        masked_pan: The PAN, first 6 and last 4 digits at most.
        aid: The selected AID.
        label: The application label (50).
        oda_method: "CDA", "fDDA" or ``None`` when none was performed.
        oda_verified: Whether ODA succeeded (``None`` when not performed).
        cid: Cryptogram Information Data (9F27), as returned or deduced (kernel 3).
        tvr: Terminal Verification Results (95).
        icc_data: The data objects for the authorisation request; sensitive tags excluded.
        trace: Every exchange with the card, in order (empty with ``trace=False``).
        card_removable_at: Index of the exchange (in ``trace`` when recorded) after which the
            card may leave the field, or ``None`` when the card had to stay until the end (or
            nothing was exchanged).
        ui_requests: The UI requests emitted, in order.
        restart: The restart context to pass to the next call, when the outcome asks for one.
        replay: Replay statistics, for a replayed transaction.
        pan: The full PAN, for the authorisation request of an ONLINE REQUEST only: not in
            ``repr`` nor in :meth:`to_json`; never log it.
    """

    parameters: OutcomeParameters
    kernel_id: int | None = None
    masked_pan: str | None = None
    aid: bytes | None = None
    label: str | None = None
    oda_method: str | None = None
    oda_verified: bool | None = None
    cid: bytes | None = None
    tvr: bytes | None = None
    icc_data: dict[int, bytes] = field(default_factory=dict, repr=False)
    trace: list[TraceEntry] = field(default_factory=list, repr=False)
    card_removable_at: int | None = None
    ui_requests: list[UiRequest] = field(default_factory=list, repr=False)
    restart: RestartContext | None = None
    replay: ReplayStats | None = None
    pan: str | None = field(default=None, repr=False)

    @property
    def outcome(self) -> Outcome:
        """The outcome (status) itself."""
        return self.parameters.outcome

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready rendering, with every piece of card data masked or left out."""
        return {
            "outcome": self.parameters.outcome.value,
            "parameters": self.parameters.to_json(),
            "kernel_id": self.kernel_id,
            "masked_pan": self.masked_pan,
            "aid": None if self.aid is None else self.aid.hex().upper(),
            "label": self.label,
            "oda_method": self.oda_method,
            "oda_verified": self.oda_verified,
            "cid": None if self.cid is None else self.cid.hex().upper(),
            "tvr": None if self.tvr is None else self.tvr.hex().upper(),
            "icc_data": {
                f"{tag:02X}": value.hex().upper()
                for tag, value in sorted(self.icc_data.items())
                if not tags.is_sensitive(tag)
            },
            "trace": [entry.to_json() for entry in self.trace],
            "card_removable_at": self.card_removable_at,
            "ui_requests": [ui.to_json() for ui in self.ui_requests],
            "restart": None
            if self.restart is None
            else {
                "start": self.restart.start.value,
                "ui_on_restart": None
                if self.restart.ui_on_restart is None
                else self.restart.ui_on_restart.to_json(),
            },
            "replay": None if self.replay is None else self.replay.to_json(),
        }
