"""What a virtual terminal answers: request body in, answer body out (no I/O here).

:class:`TerminalBrain` decodes a Concert V2 or Caisse-AP request with the driver codecs, asks
its :data:`~simulator.tpe.rules.CardHook` what happens, and encodes the answer the way a real
terminal would: the Concert V2 card report carries the card number in clear (old terminals
do; the driver must mask it), the Caisse-AP answer a partial PAN (AA) as current ones do.
"""

from __future__ import annotations

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


@dataclass
class TerminalBrain:
    """Decides and encodes answers for one virtual terminal."""

    protocol: str = "concert-v2"
    card: CardHook = amount_rules
    processed: list[Processed] = field(default_factory=list)
    last_answer: list[tuple[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")

    def validate(self, body: bytes) -> object:
        """Raise ProtocolError if the request is malformed (the link then NAKs it)."""
        if self.protocol == "concert-v2":
            return cv2.decode_request(body)
        return cap.decode_request(body)

    def answer(self, body: bytes) -> bytes:
        """The answer body for a request body.

        Raises:
            ProtocolError: The request is malformed.
        """
        if self.protocol == "concert-v2":
            return self._concert(cv2.decode_request(body))
        return self._caisse_ap(cap.decode_request(body))

    def _decide(self, action: str, amount: int, currency: str) -> Decision:
        decision = self.card(action, amount, currency)
        outcome = "approved" if decision.approved else (
            "cancelled" if decision.cancelled else "declined")
        self.processed.append(Processed(action, amount, outcome))
        return decision

    def _concert(self, req: cv2.PaymentRequest) -> bytes:
        action = _ACTIONS.get(req.transaction_type, "payment")
        decision = self._decide(action, req.amount, req.currency)
        report = f"{decision.pan} {decision.expiry}" if req.full_answer else None
        return cv2.encode_answer(cv2.PaymentAnswer(
            pos_number=req.pos_number,
            status=cv2.STATUS_ACCEPTED if decision.approved else cv2.STATUS_REFUSED,
            amount=req.amount, mode=req.mode, currency=req.currency, private=req.private,
            card_report=report))

    def _caisse_ap(self, req: cap.CaisseApRequest) -> bytes:
        head = [("CZ", req.version), ("CJ", req.protocol_id), ("CA", f"{req.pos_number:02d}")]
        if req.action == cap.ACTION_DUPLICATE:
            if self.last_answer is None:
                return cap.encode_answer([*head, ("CD", req.action), ("AE", cap.STATUS_NOT_DONE)])
            return cap.encode_answer(self.last_answer)
        if req.action == "B":  # remittance
            return cap.encode_answer([*head, ("CD", req.action), ("AE", cap.STATUS_DONE)])
        action = _CAP_ACTIONS.get(req.action)
        if action is None:
            raise ProtocolError("unknown action", field="CD")
        decision = self._decide(action, req.amount, req.currency)
        fields = [*head, ("CB", f"{req.amount:02d}"), ("CD", req.action),
                  ("CE", req.currency)]
        if decision.approved:
            fields += [("AE", cap.STATUS_DONE), ("AC", decision.auth_code or "000000"),
                       ("AA", decision.pan[:6] + "######" + decision.pan[-4:]),
                       ("AB", decision.expiry), ("CI", "1"), ("CC", "001")]
        else:
            fields += [("AE", cap.STATUS_NOT_DONE),
                       ("AF", "11" if decision.cancelled else "04")]
        if req.private:
            fields.append(("CF", req.private))
        self.last_answer = fields
        return cap.encode_answer(fields)
