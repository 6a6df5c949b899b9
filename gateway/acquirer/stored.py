"""A request kept for store-and-forward: the bytes the journal's vault seals, and back.

The payment session seals the very request it built (one STAN); the reconciler opens it to
forward it (docs/journal.md, "store-and-forward vault"). The bytes hold the PAN: they only ever
go to :meth:`gateway.journal.Journal` sealed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from gateway.acquirer.errors import AcquirerUsageError
from gateway.acquirer.models import AuthorisationRequest
from gateway.errors import GatewayError

__all__ = ["ForwardingError", "open_request", "seal_request"]


class ForwardingError(GatewayError):
    """A sealed request could not be rebuilt (no card data in the message)."""


def seal_request(request: AuthorisationRequest) -> bytes:
    """The bytes the vault stores for forwarding (the request body; it holds the PAN)."""
    body = request.to_json()
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def open_request(blob: bytes) -> AuthorisationRequest:
    """Rebuild the request sealed by :func:`seal_request`.

    Raises:
        ForwardingError: The blob is not a request of this format (naming the field).
    """
    try:
        body: Any = json.loads(blob)
        if not isinstance(body, dict):
            raise ForwardingError("sealed request: not a JSON object")
        if "pin" in body:
            raise ForwardingError("sealed request: an online PIN block is never forwarded")
        return AuthorisationRequest(
            amount=int(body["amount"]),
            currency=int(body["currency"]),
            transaction_type=int(str(body["transaction_type"]), 16),
            icc_data=bytes.fromhex(str(body["icc_data"])),
            pan=str(body["card"]["pan"]),
            terminal_id=str(body["terminal_id"]),
            merchant_id=str(body["merchant_id"]),
            stan=int(body["stan"]),
            local_datetime=datetime.fromisoformat(str(body["local_datetime"])),
        )
    except ForwardingError:
        raise
    except KeyError as exc:
        raise ForwardingError(f"sealed request: missing field {exc.args[0]!s}") from None
    except (ValueError, TypeError, AcquirerUsageError, UnicodeDecodeError) as exc:
        raise ForwardingError(f"sealed request: bad field ({type(exc).__name__})") from None
