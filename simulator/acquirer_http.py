"""The kernel's online authoriser over the online payment API (docs/acquirer-api.md).

``posgw-sim pay --acquirer URL`` sends its authorisation to a running acquirer host (``posgw-sim
acquirer``, with an issuers file of one's own) instead of the in-process issuer. This is the
simulator's own small client of the API (the simulator may not import ``gateway``): one
``POST /v1/authorisations`` with a fresh ``Idempotency-Key``; a ``5xx``, a refused
connection or a time-out is "unable to go online" (``None``), as a terminal without an answer
would see it. The PAN travels in the body only; nothing here logs the request.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import aiohttp

from terminal import OnlineRequest, OnlineResponse, TlvError, decode

__all__ = ["HttpAcquirer"]


class HttpAcquirer:
    """Authorise through ``POST {base_url}/v1/authorisations``.

    Args:
        base_url: The acquirer host, e.g. ``http://127.0.0.1:8080``.
        timeout_s: Total time per request.
        terminal_id: Sent as ``terminal_id``.
        merchant_id: Sent as ``merchant_id``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        terminal_id: str = "SIMPAY01",
        merchant_id: str = "SIMMERCHANT0001",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.terminal_id, self.merchant_id = terminal_id, merchant_id
        self.stan = 0
        self.last_status: int | None = None
        self.last_answer: dict[str, Any] | None = None

    def _body(self, request: OnlineRequest) -> dict[str, Any]:
        self.stan = self.stan % 999_999 + 1
        body: dict[str, Any] = {
            "amount": request.amount,
            "currency": request.currency,
            "transaction_type": f"{request.transaction_type:02X}",
            "icc_data": request.icc_data.hex().upper(),
            "card": {"pan": request.pan or ""},
            "terminal_id": self.terminal_id,
            "merchant_id": self.merchant_id,
            "stan": self.stan,
            "local_datetime": datetime.now().replace(microsecond=0).isoformat(),
        }
        if request.online_pin is not None:
            pin = request.online_pin
            body["pin"] = {"block": pin.block.hex(), "ksn": pin.ksn.hex(), "format": pin.fmt}
        return body

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        """Authorise ``request``; ``None`` when no usable answer came (unable to go online)."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    f"{self.base_url}/v1/authorisations", json=self._body(request), headers=headers
                ) as answer,
            ):
                self.last_status = answer.status
                if answer.status >= 500:
                    return None
                payload = await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        self.last_answer = payload if isinstance(payload, dict) else None
        if answer.status >= 400 or self.last_answer is None:
            return None
        return _response(self.last_answer)

    def __repr__(self) -> str:
        return f"HttpAcquirer({self.base_url})"


def _response(payload: dict[str, Any]) -> OnlineResponse | None:
    code = str(payload.get("response_code", "")).encode("ascii", "replace")[:2]
    try:
        tlvs = decode(bytes.fromhex(str(payload.get("issuer_response") or "")))
    except (TlvError, ValueError):
        tlvs = []
    fields = {tlv.tag: tlv for tlv in tlvs}
    if code == b"91" and not fields:
        return None  # issuer unavailable: the kernel takes the unable-to-go-online path
    auth = fields.get(0x91)
    approval = fields.get(0x89)
    scripts = b"".join(tlv.encode() for tlv in tlvs if tlv.tag in (0x71, 0x72))
    return OnlineResponse(
        approved=payload.get("status") == "approved",
        authorisation_response_code=code,
        issuer_authentication_data=auth.value if auth is not None else None,
        scripts=scripts or None,
        authorisation_code=approval.value if approval is not None else None,
    )
