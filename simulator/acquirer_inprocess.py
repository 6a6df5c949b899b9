"""The kernel's online authoriser answered in process by the simulated issuer host.

Used by ``posgw-sim pay`` and by tests: the same :class:`~simulator.issuer.IssuerHost` that checks
ARQCs and builds ARPCs, without the network. The PAN travels as in a real authorisation (the
issuer needs it to derive the card key) but only in memory and never in a printable form. An
online PIN block is checked by :mod:`simulator.pin_check` (wrong PIN 55, too many 75) and then
dropped with the request.
"""

from __future__ import annotations

from typing import Literal

from simulator.issuer import IssuerHost, IssuerPolicy
from simulator.pin_check import IssuerPinVerifier, PinVerdict, impose
from terminal import OnlineRequest, OnlineResponse, encode

__all__ = ["HostMode", "InProcessAcquirer"]

HostMode = Literal["approve", "decline", "offline"]


class InProcessAcquirer:
    """An :class:`~terminal.contact.online.OnlineAuthoriser` backed by :class:`IssuerHost`.

    Args:
        mode: ``approve``: the issuer decides (ARQC checked, approval when valid);
            ``decline``: the issuer declines every request (ARC 05) with a valid ARPC;
            ``offline``: unable to go online (the kernel takes the default action path).
        host: The issuer host (default: the simulator's test issuers).
        pins: The issuer's PIN check (default: the PINs of the simulator's card profiles).
    """

    def __init__(
        self,
        mode: HostMode = "approve",
        host: IssuerHost | None = None,
        pins: IssuerPinVerifier | None = None,
    ) -> None:
        if host is None:
            policy = IssuerPolicy(
                availability="none" if mode == "offline" else "online",
                hook=(lambda _data: b"05") if mode == "decline" else None,
            )
            host = IssuerHost(policy=policy)
        self.host = host
        self.pins = pins
        self.mode = mode
        self.last_pin_verdict: PinVerdict | None = None
        self.requests = 0
        self.last_reason: str | None = None
        self.last_arqc_valid: bool | None = None

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        """Authorise ``request``; ``None`` when the host is unreachable."""
        self.requests += 1
        data = request.icc_data
        if request.pan is not None:
            digits = request.pan + ("F" if len(request.pan) % 2 else "")
            data = encode(0x5A, bytes.fromhex(digits)) + data
        host = self.host
        self.last_pin_verdict = None
        if request.online_pin is not None and request.pan is not None and self.mode != "offline":
            if self.pins is None:
                self.pins = IssuerPinVerifier.from_profiles()
            self.last_pin_verdict = self.pins.check(request.online_pin, request.pan)
            host = impose(host, self.last_pin_verdict)
        answer = host.authorise(data)
        if answer is None:
            return None
        self.last_reason = answer.reason
        self.last_arqc_valid = answer.arqc_valid
        return OnlineResponse(
            approved=answer.approved,
            authorisation_response_code=answer.arc,
            issuer_authentication_data=answer.issuer_auth_data or None,
            scripts=answer.scripts or None,
        )

    def __repr__(self) -> str:
        return f"InProcessAcquirer(mode={self.mode}, requests={self.requests})"
