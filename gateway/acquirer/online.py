"""The kernel's online step over the acquirer API: an ``OnlineAuthoriser`` backed by the client.

:func:`online_authoriser` fits :class:`terminal.contact.online.OnlineAuthoriser` (EMV 4.4
Book 3, 10.9): it turns the kernel's :class:`~terminal.contact.online.OnlineRequest` into an
:class:`~gateway.acquirer.models.AuthorisationRequest` with a fresh idempotency key from the
injected key factory (the journal's, later: the key is written before the request goes out and
survives a restart), and the host's answer into an
:class:`~terminal.contact.online.OnlineResponse`.

What the kernel gets when the answer is not a plain decision:

* never sent (:class:`~gateway.acquirer.errors.AcquirerUnreachable`) or 5xx on every attempt:
  ``None``, "unable to go online" (Book 3, 10.7: the Default action codes decide);
* answer lost: one :meth:`~gateway.acquirer.client.AcquirerClient.resolve_unknown`; the host's
  decision when it knows the key, ``None`` when it does not (nothing charged). When even the
  status query fails the key goes to :attr:`AcquirerOnlineAuthoriser.unresolved` for the caller
  to resolve (and reverse) later, and the kernel gets ``None``;
* refused by the host (4xx) or an unreadable answer: a decline with 8A ``Z3``: a sale the host
  refused is never approved offline by default action.

The adapter keeps :attr:`~AcquirerOnlineAuthoriser.last` (the host's authorisation) so that the
caller can reverse it when the card declines at the second GENERATE AC or the sale is abandoned.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import datetime

from gateway.acquirer.client import AcquirerClient
from gateway.acquirer.errors import (
    AcquirerError,
    AcquirerProtocolError,
    AcquirerRejected,
    AcquirerServerError,
    AcquirerUnreachable,
    AnswerLost,
)
from gateway.acquirer.models import Authorisation, AuthorisationRequest, Outcome
from terminal.contact.online import OnlineRequest, OnlineResponse

__all__ = ["AcquirerOnlineAuthoriser", "online_authoriser"]

_log = logging.getLogger("gateway.acquirer")

#: 8A when the host refused the request or its answer was unreadable (Book 4, Annex A6).
REFUSED_ARC = b"Z3"


class AcquirerOnlineAuthoriser:
    """An :class:`~terminal.contact.online.OnlineAuthoriser` over :class:`AcquirerClient`.

    Attributes:
        last: The host's last authorisation (None before, or when none came).
        last_key: The idempotency key of the last request.
        unresolved: Keys whose outcome is still unknown (status query failed too).
    """

    def __init__(
        self,
        client: AcquirerClient,
        *,
        terminal_id: str,
        merchant_id: str,
        key_factory: Callable[[], str],
        stan: Callable[[], int],
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._terminal_id = terminal_id
        self._merchant_id = merchant_id
        self._key_factory = key_factory
        self._stan = stan
        self._clock = clock
        self.last: Authorisation | None = None
        self.last_key: str | None = None
        self.unresolved: list[str] = []

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        """Authorise ``request`` online (see the module docstring for the failure cases)."""
        self.last = None
        key = self._key_factory()
        self.last_key = key
        if request.pan is None:
            _log.warning("online key=%s: no PAN from the kernel, unable to go online", key)
            return None
        try:
            wire = AuthorisationRequest(
                amount=request.amount,
                currency=request.currency,
                transaction_type=request.transaction_type,
                icc_data=request.icc_data,
                pan=request.pan,
                terminal_id=self._terminal_id,
                merchant_id=self._merchant_id,
                stan=self._stan(),
                local_datetime=self._clock(),
                pin=request.online_pin,
            )
            self.last = await self._client.authorise(wire, idempotency_key=key)
        except (AcquirerUnreachable, AcquirerServerError) as exc:
            _log.warning("online key=%s: unable to go online: %s", key, exc)
            return None
        except AnswerLost as exc:
            _log.warning("online key=%s: %s; asking the host", key, exc)
            return await self._resolve(key)
        except (AcquirerRejected, AcquirerProtocolError) as exc:
            _log.error("online key=%s: refused: %s", key, exc)
            return OnlineResponse(approved=False, authorisation_response_code=REFUSED_ARC)
        except AcquirerError as exc:
            _log.error("online key=%s: %s", key, exc)
            return OnlineResponse(approved=False, authorisation_response_code=REFUSED_ARC)
        return self._to_kernel(self.last, key)

    async def _resolve(self, key: str) -> OnlineResponse | None:
        try:
            resolution = await self._client.resolve_unknown(key)
        except AcquirerError as exc:
            _log.warning("online key=%s: still unknown (%s); left to resolve", key, exc)
            self.unresolved.append(key)
            return None
        if resolution.outcome is Outcome.NOT_FOUND or resolution.authorisation is None:
            return None
        self.last = resolution.authorisation
        return self._to_kernel(resolution.authorisation, key)

    def _to_kernel(self, authorisation: Authorisation, key: str) -> OnlineResponse:
        try:
            return authorisation.to_online_response()
        except AcquirerProtocolError as exc:
            _log.error("online key=%s: %s", key, exc)
            return OnlineResponse(approved=False, authorisation_response_code=REFUSED_ARC)

    def __repr__(self) -> str:
        return f"AcquirerOnlineAuthoriser(terminal={self._terminal_id}, last_key={self.last_key})"


def online_authoriser(
    client: AcquirerClient,
    *,
    terminal_id: str,
    merchant_id: str,
    key_factory: Callable[[], str],
    stan: Callable[[], int] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> AcquirerOnlineAuthoriser:
    """The kernel's online authoriser over ``client`` (see the module docstring).

    Args:
        client: An open :class:`AcquirerClient`.
        terminal_id: The lane's terminal id.
        merchant_id: The shop's merchant id.
        key_factory: A fresh idempotency key per call (journaled before use, by the caller).
        stan: The next system trace audit number (default: 1, 2, ... wrapping at 999999).
        clock: Local date and time (default: :meth:`datetime.now`).
    """
    if stan is None:
        counter = itertools.count()
        stan = lambda: next(counter) % 999_999 + 1  # noqa: E731
    return AcquirerOnlineAuthoriser(
        client,
        terminal_id=terminal_id,
        merchant_id=merchant_id,
        key_factory=key_factory,
        stan=stan,
        clock=clock or datetime.now,
    )
