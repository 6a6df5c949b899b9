"""What a virtual terminal answers: request body in, answer body out (no I/O here).

:class:`TerminalBrain` decodes a Concert V2 or Caisse-AP request with the driver codecs, asks
its :data:`~simulator.tpe.rules.CardHook` what happens, and encodes the answer the way a real
terminal would: the Concert V2 card report carries the card number in clear (old terminals
do; the driver must mask it), the Caisse-AP answer a partial PAN (AA) as current ones do.

Caisse-AP requests are checked as a terminal checks them before acting: a mandatory tag
missing or malformed, an unknown action, or a zero amount is answered AE 01 / AF 09 (format
error) and nothing is charged; BA "1" (answer at once) gets AE 11 at once, the outcome being
kept for the duplicate (CD 3); a cheque (CC "00C") is answered without card data. Concert V2
refuses (status 7) a zero amount. Every approved debit is a *charge*, counted in
:attr:`TerminalBrain.charges` (what the daemon's recovery tests reconcile against).

A cancellation (Concert V2 type 2, Caisse-AP CD 2) voids an earlier debit of the same amount
sent under the same reference (the private field, Concert V2's 10 characters or Caisse-AP's
CF): the latest such approved debit not yet cancelled nor remitted (after the end of day it
is refunded instead). The card is not asked again; without a match the cancellation is
refused (Concert V2 status 7, Caisse-AP AE 01 / AF 04). A cancelled debit leaves the
terminal's remittance totals (its amount and its count), and
:attr:`TerminalBrain.net_charged` is what stays taken from cards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.protocols import caisse_ap as cap
from drivers.protocols import concert_v2 as cv2
from drivers.protocols.errors import ProtocolError
from simulator.tpe.rules import CardHook, Decision, amount_rules

__all__ = ["PROTOCOLS", "Processed", "TerminalBrain"]

PROTOCOLS = ("concert-v2", "caisse-ap")
_ACTIONS = {cv2.TYPE_DEBIT: "payment", cv2.TYPE_CREDIT: "refund", cv2.TYPE_CANCEL: "cancellation"}
_CAP_ACTIONS = {cap.ACTION_DEBIT: "payment", cap.ACTION_REFUND: "refund",
                cap.ACTION_CANCEL: "cancellation"}


@dataclass(frozen=True, slots=True)
class Processed:
    """One request the terminal acted on (tests read these)."""

    action: str
    amount: int
    outcome: str
    reference: str | None = None


@dataclass
class TerminalBrain:
    """Decides and encodes answers for one virtual terminal."""

    protocol: str = "concert-v2"
    card: CardHook = amount_rules
    processed: list[Processed] = field(default_factory=list)
    last_answer: list[tuple[str, str]] | None = None
    format_errors: int = 0
    #: Called with ``"request"`` when a request is in (before the card comes) and ``"decided"``
    #: right after each decision (before the answer leaves), so a test can act at that exact
    #: point (cancel from the till, kill the daemon, cut the line).
    on_stage: Callable[[str], None] | None = None
    #: Test-only knob: an amount (minor units) the next remittance counts as one more approved
    #: debit that no request made, so the day close has a difference to find; then back to 0.
    planted_debit: int = 0
    _remitted: int = 0
    _voided: list[Processed] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")

    @property
    def charges(self) -> list[Processed]:
        """The approved debits, in order: money taken from a card."""
        return [p for p in self.processed if p.action == "payment" and p.outcome == "approved"]

    @property
    def cancelled(self) -> list[Processed]:
        """The debits an approved cancellation voided, in the order they were cancelled."""
        return list(self._voided)

    @property
    def net_charged(self) -> int:
        """Minor units still taken from cards: approved debits less the cancelled ones."""
        return sum(p.amount for p in self.charges) - sum(p.amount for p in self._voided)

    def validate(self, body: bytes) -> object:
        """Raise ProtocolError if the request is not even well-formed (the link NAKs it).

        A Caisse-AP request of well-formed fields that lacks a mandatory one is answered (a
        format error, see :meth:`answer`), not NAKed.
        """
        if self.protocol == "concert-v2":
            return cv2.decode_request(body)
        return cap.parse_fields(body)

    def answer(self, body: bytes) -> bytes:
        """The answer body for a request body.

        Raises:
            ProtocolError: The request is malformed.
        """
        if self.protocol == "concert-v2":
            return self._concert(cv2.decode_request(body))
        return self._caisse_ap_body(body)

    def received(self, body: bytes) -> None:
        """A request came in (the terminals call this before waiting for the card); only a
        transaction is a ``"request"`` stage, not a duplicate or a remittance."""
        if self.on_stage is None:
            return
        if self.protocol == "caisse-ap":
            try:
                action = dict(cap.parse_fields(body)).get("CD")
            except ProtocolError:
                return
            if action not in _CAP_ACTIONS:
                return
        self.on_stage("request")

    def _decide(self, action: str, amount: int, currency: str,
                reference: str | None) -> Decision:
        if action == "cancellation":
            decision = self._cancellation(amount, reference)
        else:
            decision = self.card(action, amount, currency)
        outcome = "approved" if decision.approved else (
            "cancelled" if decision.cancelled else "declined")
        self.processed.append(Processed(action, amount, outcome, reference))
        if self.on_stage is not None:
            self.on_stage("decided")
        return decision

    def _cancellation(self, amount: int, reference: str | None) -> Decision:
        """Void the latest approved debit of ``amount`` under ``reference`` still standing."""
        voided = {id(p) for p in self._voided}
        unremitted = self.processed[self._remitted:]  # a remitted debit is refunded instead
        for earlier in reversed(unremitted):
            if (earlier.action == "payment" and earlier.outcome == "approved"
                    and earlier.amount == amount and reference is not None
                    and earlier.reference == reference and id(earlier) not in voided):
                self._voided.append(earlier)
                return Decision(approved=True,
                                auth_code=f"{(amount * 7919 + 23) % 1_000_000:06d}")
        return Decision(approved=False)

    def _concert(self, req: cv2.PaymentRequest) -> bytes:
        action = _ACTIONS.get(req.transaction_type, "payment")
        if req.amount == 0:
            self.format_errors += 1
            return cv2.encode_answer(cv2.PaymentAnswer(
                pos_number=req.pos_number, status=cv2.STATUS_REFUSED, amount=0, mode=req.mode,
                currency=req.currency, private=req.private, card_report=None))
        decision = self._decide(action, req.amount, req.currency, req.private.strip() or None)
        report = f"{decision.pan} {decision.expiry}" if req.full_answer else None
        return cv2.encode_answer(cv2.PaymentAnswer(
            pos_number=req.pos_number,
            status=cv2.STATUS_ACCEPTED if decision.approved else cv2.STATUS_REFUSED,
            amount=req.amount, mode=req.mode, currency=req.currency, private=req.private,
            card_report=report))

    def _caisse_ap_body(self, body: bytes) -> bytes:
        fields = cap.parse_fields(body)
        try:
            req = cap.decode_request(body)
        except ProtocolError:
            return self._format_error(fields)
        if cap.request_problem(req) is not None:
            return self._format_error(fields)
        return self._caisse_ap(req)

    def _format_error(self, fields: list[tuple[str, str]]) -> bytes:
        """AE 01 / AF 09: the request was not acted on (echoing what identifies it)."""
        self.format_errors += 1
        index = dict(fields)
        echo = [(tag, index[tag]) for tag in ("CJ", "CA", "CD") if tag in index]
        return cap.encode_answer([("CZ", index.get("CZ", "0320")), *echo,
                                  ("AE", cap.STATUS_NOT_DONE),
                                  ("AF", cap.DETAIL_MALFORMED)])

    def _caisse_ap(self, req: cap.CaisseApRequest) -> bytes:
        head = [("CZ", req.version), ("CJ", req.protocol_id), ("CA", f"{req.pos_number:02d}")]
        if req.action == cap.ACTION_DUPLICATE:
            if self.last_answer is None:
                return cap.encode_answer([*head, ("CD", req.action), ("AE", cap.STATUS_NOT_DONE),
                                          ("AF", cap.DETAIL_REFUSED)])
            return cap.encode_answer(self.last_answer)
        if req.action == "B":  # remittance (end of day): the day's totals in the private field
            return cap.encode_answer([*head, ("CD", req.action), ("AE", cap.STATUS_DONE),
                                      ("CF", self._day_totals())])
        action = _CAP_ACTIONS.get(req.action)
        if action is None:
            return self._format_error([*head, ("CD", req.action)])
        decision = self._decide(action, req.amount, req.currency, req.private)
        cheque = dict(req.extra).get("CC") == cap.MEANS_CHEQUE
        fields = [*head, ("CB", f"{req.amount:02d}"), ("CD", req.action),
                  ("CE", req.currency)]
        if decision.approved:
            fields += [("AE", cap.STATUS_DONE), ("AC", decision.auth_code or "000000")]
            if cheque:
                fields.append(("CC", cap.MEANS_CHEQUE))
            else:
                fields += [("AA", decision.pan[:6] + "######" + decision.pan[-4:]),
                           ("AB", decision.expiry), ("AI", decision.aid), ("CI", "1"),
                           ("CC", "001")]
        else:
            fields += [("AE", cap.STATUS_NOT_DONE),
                       ("AF", cap.DETAIL_ABANDONED if decision.cancelled else
                        cap.DETAIL_REFUSED)]
        if req.private:
            fields.append(("CF", req.private))
        self.last_answer = fields
        if req.immediate:  # BA 1: "taken into account" now; the outcome by duplicate later
            return cap.encode_answer([*head, ("CD", req.action),
                                      ("AE", cap.STATUS_ACCEPTED_IMMEDIATE)])
        return cap.encode_answer(fields)

    def _day_totals(self) -> str:
        """Remittance totals since the last one: ``count/debits/refunds`` in minor units."""
        done = self.processed[self._remitted:]
        self._remitted = len(self.processed)
        voided = [p for p in done if p.action == "cancellation" and p.outcome == "approved"]
        debits = sum(p.amount for p in done if p.action == "payment" and
                     p.outcome == "approved") - sum(p.amount for p in voided)
        refunds = sum(p.amount for p in done if p.action == "refund" and
                      p.outcome == "approved")
        # a cancelled debit is no transaction of the day: neither it nor its cancellation count
        count = sum(1 for p in done if p.outcome == "approved" and
                    p.action != "cancellation") - len(voided)
        if self.planted_debit:
            debits, count, self.planted_debit = debits + self.planted_debit, count + 1, 0
        return f"{count}/{debits}/{refunds}"
