"""What a lane keeps of the card in memory only: the PAN for the acquirer, the forwarding blob.

The kernel hands the PAN to the online step only (``OnlineRequest.pan``); an offline approval
(TC at the first GENERATE AC, EMV 4.4 Book 3, 10.8) gives none, yet store-and-forward needs it.
:class:`PanCapture` wraps the reader's card channel and keeps the Application PAN (5A, or the
digits of Track 2 Equivalent Data 57 before the separator) from the card's responses, in
memory, for this one transaction. It never logs, prints or reprs it.

:func:`seal_request` / :func:`open_request` turn an authorisation request into the bytes the
journal's vault encrypts (docs/journal.md, "store-and-forward vault") and back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from gateway.acquirer import AcquirerUsageError, AuthorisationRequest
from terminal.errors import TlvError
from terminal.tlv import decode, flatten

__all__ = ["CardChannelLike", "ForwardingError", "PanCapture", "open_request", "seal_request"]


class CardChannelLike(Protocol):
    """The kernel's card channel (``terminal.transport.CardChannel``) by shape."""

    async def transceive(self, capdu: bytes) -> bytes:
        """One C-APDU in, the R-APDU with SW1 SW2 out."""
        ...


class ForwardingError(Exception):
    """A sealed request could not be rebuilt (no card data in the message)."""


class PanCapture:
    """A card channel that remembers the PAN the card returned (see the module docstring)."""

    __slots__ = ("_channel", "_pan")

    def __init__(self, channel: CardChannelLike) -> None:
        self._channel = channel
        self._pan: str | None = None

    async def transceive(self, capdu: bytes) -> bytes:
        """Forward to the reader; look for 5A / 57 in a successful answer (Book 3, Annex A)."""
        rapdu = await self._channel.transceive(capdu)
        if self._pan is None and len(rapdu) > 2 and rapdu[-2:] == b"\x90\x00":
            self._sniff(rapdu[:-2])
        return rapdu

    def _sniff(self, data: bytes) -> None:
        try:
            values = flatten(decode(data))
        except TlvError:
            return
        pan = values.get(0x5A)
        if pan is not None:
            digits = pan.hex().upper().rstrip("F")
        elif (track2 := values.get(0x57)) is not None:
            digits = track2.hex().upper().split("D", 1)[0]
        else:
            return
        if digits.isdigit() and 12 <= len(digits) <= 19:
            self._pan = digits

    @property
    def pan(self) -> str | None:
        """The captured PAN (never log it)."""
        return self._pan

    def __repr__(self) -> str:
        return f"PanCapture(captured={self._pan is not None})"


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
