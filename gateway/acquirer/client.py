"""The online payment API client (docs/acquirer-api.md): authorise, reverse, refund, status.

Shaped like httpx and aiomqtt: a keyword-only constructor, an async context manager with an
explicit lifecycle (:meth:`AcquirerClient.open` / :meth:`AcquirerClient.aclose`, the latter
safe to call twice), aiohttp's exceptions translated once here into the tree of
:mod:`gateway.acquirer.errors`.

What happens to the money drives every choice (ARCHITECTURE.md, "an answer that never came is
resolved by status query or reversal, never by guessing approved"):

* Every ``POST`` carries the caller's idempotency key; the host answers a repeat with the
  stored answer. A retry therefore reuses the SAME key, and only in the safe cases: the
  connection was refused or could not be made (nothing was sent), or the host answered 5xx (the
  host stores no 5xx answer). Up to ``max_attempts`` tries, with jittered exponential backoff
  (randomness and sleep injected).
* A request that went out without an answer (connection dropped, total time-out) raises
  :class:`~gateway.acquirer.errors.AnswerLost`; the caller keeps the key and calls
  :meth:`AcquirerClient.resolve_unknown`, which asks the host by status query (a GET, retried
  on any transport failure) and reports the host's decision or ``NOT_FOUND``.
* Keep-alive connections, pooled (a new TCP connection, and over TLS a handshake, per request
  cost more daemon CPU than the request itself under load, docs/performance.md). What a pooled
  connection changes is *when* it fails: the host may close an idle connection just as the next
  request takes it. Each attempt therefore records whether its request reached the transport
  (aiohttp's ``on_request_headers_sent`` trace fires just before the first byte is handed to
  the socket): a failure before that point sent nothing and is retried like a refused
  connection (:class:`~gateway.acquirer.errors.AcquirerUnreachable`); a failure after it may
  have reached the host and is an :class:`~gateway.acquirer.errors.AnswerLost` (status query,
  never resent). Idle connections are dropped after ``keepalive_s``, kept shorter than common
  hosts' idle time-outs so that the race is rare; ``keepalive_s=0`` is one connection per
  request (``force_close``).

Logs (logger ``gateway.acquirer``) carry the method, path, idempotency key, attempt and status;
never the body, hence never the PAN, the PIN block or field 55.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random as _random
import ssl
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from gateway.acquirer.errors import (
    AcquirerError,
    AcquirerProtocolError,
    AcquirerRejected,
    AcquirerServerError,
    AcquirerTimeout,
    AcquirerUnreachable,
    AcquirerUsageError,
    AnswerLost,
    IdempotencyConflict,
    NotFound,
)
from gateway.acquirer.models import (
    Authorisation,
    AuthorisationRequest,
    Outcome,
    Refund,
    Resolution,
)
from terminal import mask_pan

__all__ = ["AcquirerClient"]

_log = logging.getLogger("gateway.acquirer")
_T = TypeVar("_T")


class AcquirerClient:
    """Client of the online payment API (see the module docstring).

    Args:
        base_url: ``https://...`` (``http://`` only to a loopback address: tests, simulator).
        connect_timeout: Seconds to establish the connection (nothing sent before).
        total_timeout: Seconds for one attempt, connection to last byte of the answer.
        max_attempts: Tries of one request in the safe cases (at least 1).
        backoff_s: First backoff; doubles per attempt, capped at ``backoff_cap_s``; each wait
            is drawn in ``[d/2, d]`` with ``random``.
        backoff_cap_s: Longest backoff.
        random: Returns a float in ``[0, 1)`` (injected for reproducible runs).
        sleep: Awaitable sleep (injected; the backoff waits through it).
        ssl_context: TLS settings (default: the system trust store, certificates verified).
        keepalive_s: Seconds an idle pooled connection is kept (0: one connection per request).
    """

    def __init__(
        self,
        *,
        base_url: str,
        connect_timeout: float = 3.0,
        total_timeout: float = 15.0,
        max_attempts: int = 3,
        backoff_s: float = 0.25,
        backoff_cap_s: float = 2.0,
        random: Callable[[], float] = _random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: float = 4.0,
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise AcquirerUsageError("base_url must be an http(s) URL with a host")
        if url.scheme == "http" and not _is_loopback(url.host):
            raise AcquirerUsageError("plain http only to a loopback address: use https")
        if connect_timeout <= 0 or total_timeout <= 0 or max_attempts < 1:
            raise AcquirerUsageError("time-outs must be positive and max_attempts at least 1")
        if keepalive_s < 0:
            raise AcquirerUsageError("keepalive_s must not be negative")
        self._base = url
        self._connect_timeout = connect_timeout
        self._total_timeout = total_timeout
        self._max_attempts = max_attempts
        self._backoff = backoff_s
        self._backoff_cap = backoff_cap_s
        self._random = random
        self._sleep = sleep
        self._ssl = ssl_context
        self._keepalive = keepalive_s
        #: TCP connections opened so far (a diagnostic: benchmarks, tests of the pooling).
        self.connections_opened = 0
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the HTTP session (once; a closed client cannot be reopened)."""
        if self._closed:
            raise AcquirerUsageError("the client is closed")
        if self._session is None:
            ssl_setting: ssl.SSLContext | bool = self._ssl or True
            if self._keepalive > 0:
                connector = aiohttp.TCPConnector(keepalive_timeout=self._keepalive, ssl=ssl_setting)
            else:
                connector = aiohttp.TCPConnector(force_close=True, ssl=ssl_setting)
            timeout = aiohttp.ClientTimeout(sock_connect=self._connect_timeout)
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_mark_sent)
            trace.on_connection_create_end.append(self._count_connection)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, trace_configs=[trace]
            )

    async def _count_connection(self, *_: object) -> None:
        self.connections_opened += 1

    async def aclose(self) -> None:
        """Close the session (may be called twice)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> AcquirerClient:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._session else "new"
        return f"AcquirerClient({self._base}, {state})"

    # --- operations --------------------------------------------------------------------------

    async def authorise(
        self, request: AuthorisationRequest, *, idempotency_key: str
    ) -> Authorisation:
        """Ask for an authorisation (EMV 4.4 Book 3, 10.9: the online request with field 55).

        Raises:
            AcquirerUnreachable: never sent; AnswerLost/AcquirerTimeout: outcome unknown
            (call :meth:`resolve_unknown`); AcquirerServerError, AcquirerRejected,
            AcquirerProtocolError.
        """
        if _log.isEnabledFor(logging.DEBUG):  # the masking only when the line is written
            _log.debug("authorise key=%s pan=%s", idempotency_key, mask_pan(request.pan))
        body, replayed = await self._call(
            "POST", "/v1/authorisations", key=idempotency_key, body=request.to_json()
        )
        return _parse(Authorisation.from_json, body, replayed, idempotency_key)

    async def reverse(
        self,
        authorisation: str | Authorisation | None = None,
        *,
        original_idempotency_key: str | None = None,
        idempotency_key: str,
        reason: str | None = None,
    ) -> Authorisation:
        """Reverse an approved authorisation, by id (or object) or by its request's key.

        By ``original_idempotency_key`` the client first asks the status, then reverses what
        the host found; :class:`~gateway.acquirer.errors.NotFound` when nothing was charged.

        Raises:
            NotFound, AcquirerRejected (``not_reversible``: declined), and the transport errors
            of :meth:`authorise`.
        """
        if (authorisation is None) == (original_idempotency_key is None):
            raise AcquirerUsageError("give an authorisation or original_idempotency_key")
        if authorisation is None:
            assert original_idempotency_key is not None
            authorisation = await self.status(original_idempotency_key)
        auth_id = authorisation.id if isinstance(authorisation, Authorisation) else authorisation
        body: dict[str, Any] = {} if reason is None else {"reason": reason}
        path = f"/v1/authorisations/{URL.build(path=auth_id).raw_path}/reversal"
        answer, replayed = await self._call("POST", path, key=idempotency_key, body=body)
        return _parse(Authorisation.from_json, answer, replayed, idempotency_key)

    async def refund(
        self,
        authorisation: str | Authorisation,
        *,
        amount: int,
        currency: int,
        idempotency_key: str,
    ) -> Refund:
        """Refund part or all of an approved authorisation (``POST /v1/refunds``)."""
        auth_id = authorisation.id if isinstance(authorisation, Authorisation) else authorisation
        body = {"authorisation_id": auth_id, "amount": amount, "currency": currency}
        answer, replayed = await self._call("POST", "/v1/refunds", key=idempotency_key, body=body)
        return _parse(Refund.from_json, answer, replayed, idempotency_key)

    async def status(self, idempotency_key: str) -> Authorisation:
        """The authorisation made by the request with ``idempotency_key`` (status query).

        Raises:
            NotFound: the host never completed such a request.
        """
        answer, _ = await self._call(
            "GET", "/v1/authorisations", params={"idempotency_key": idempotency_key},
            key=idempotency_key, safe=True,
        )
        return _parse(Authorisation.from_json, answer, False, idempotency_key)

    async def resolve_unknown(self, idempotency_key: str) -> Resolution:
        """Resolve an authorisation whose answer never came: ask, never guess.

        Returns:
            The host's decision with its authorisation (the caller reverses it if the sale was
            abandoned), or ``NOT_FOUND``: nothing was charged under that key.

        Raises:
            AcquirerUnreachable, AnswerLost, AcquirerServerError: the host could not be asked;
            the outcome is still unknown (keep the key, ask again later).
        """
        try:
            found = await self.status(idempotency_key)
        except NotFound:
            _log.info("resolve key=%s: not found, nothing charged", idempotency_key)
            return Resolution(Outcome.NOT_FOUND)
        outcome = Outcome.APPROVED if found.approved else Outcome.DECLINED
        _log.info("resolve key=%s: %s (%s)", idempotency_key, outcome, found.id)
        return Resolution(outcome, found)

    # --- transport ---------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        key: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        safe: bool = False,
    ) -> tuple[Any, bool]:
        """One request with the bounded retries of the module docstring; the parsed JSON."""
        if self._session is None:
            raise AcquirerUsageError("the client is not open (use `async with` or open())")
        if not key or len(key) > 64:
            raise AcquirerUsageError("idempotency key must be 1 to 64 characters")
        url = self._base.with_path(self._base.path.rstrip("/") + path, encoded=True)
        headers = {"Idempotency-Key": key} if method == "POST" else {}
        attempt = 0
        while True:
            attempt += 1
            try:
                status, raw, replayed = await self._once(method, url, body, params, headers)
            except AcquirerUnreachable as exc:
                failure: AcquirerError = exc
            except AnswerLost as exc:
                if not safe:
                    exc.idempotency_key, exc.attempts = key, attempt
                    raise
                failure = exc
            else:
                if status < 500:
                    _log.debug("%s %s key=%s attempt=%d -> %d", method, path, key, attempt, status)
                    return _decode(status, raw, key, attempt), replayed
                failure = AcquirerServerError(
                    f"host answered {status}", status=status, idempotency_key=key
                )
            failure.idempotency_key, failure.attempts = key, attempt
            _log.debug("%s %s key=%s attempt=%d failed: %s", method, path, key, attempt, failure)
            if attempt >= self._max_attempts:
                raise failure
            delay = min(self._backoff_cap, self._backoff * 2 ** (attempt - 1))
            await self._sleep(delay / 2 + self._random() * delay / 2)

    async def _once(
        self,
        method: str,
        url: URL,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        headers: dict[str, str],
    ) -> tuple[int, bytes, bool]:
        """One attempt; aiohttp's exceptions translated here and nowhere else.

        Whether the request may have reached the host decides between "unreachable, nothing
        sent" (retried) and "answer lost" (status query): see the module docstring.
        """
        assert self._session is not None
        attempt = _Attempt()
        try:
            async with asyncio.timeout(self._total_timeout):
                async with self._session.request(
                    method, url, json=body, params=params, headers=headers,
                    trace_request_ctx=attempt,
                ) as response:
                    raw = await response.read()
                    replayed = response.headers.get("Idempotent-Replayed") == "true"
                    return response.status, raw, replayed
        except aiohttp.ConnectionTimeoutError as exc:
            raise AcquirerUnreachable("connect time-out, nothing sent") from exc
        except aiohttp.ClientConnectorError as exc:
            raise AcquirerUnreachable(f"cannot connect ({exc.strerror or 'error'})") from exc
        except TimeoutError as exc:
            if not attempt.sent:
                raise AcquirerUnreachable(
                    f"no connection within {self._total_timeout:g} s, nothing sent"
                ) from exc
            raise AcquirerTimeout(f"no answer within {self._total_timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            if not attempt.sent:  # e.g. a pooled connection the host had just closed
                raise AcquirerUnreachable(
                    f"connection failed before the request was sent ({type(exc).__name__})"
                ) from exc
            raise AnswerLost(f"answer lost ({type(exc).__name__})") from exc


class _Attempt:
    """One attempt's progress, seen by the trace hook: has the request reached the transport?"""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


async def _mark_sent(
    _session: aiohttp.ClientSession,
    context: SimpleNamespace,
    _params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    """``on_request_headers_sent``: called just before the request's first byte is written."""
    attempt = context.trace_request_ctx
    if isinstance(attempt, _Attempt):
        attempt.sent = True


def _decode(status: int, raw: bytes, key: str, attempts: int) -> Any:
    """The JSON of a non-5xx answer; 4xx become AcquirerRejected and its subclasses."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AcquirerProtocolError(
            f"answer {status} is not JSON", field="body", idempotency_key=key, attempts=attempts
        ) from exc
    if 200 <= status < 300:
        return data
    if not 400 <= status < 500:
        raise AcquirerProtocolError(
            f"unexpected status {status}", field="status", idempotency_key=key, attempts=attempts
        )
    code = str(data.get("error", "unknown")) if isinstance(data, dict) else "unknown"
    field = data.get("field") if isinstance(data, dict) else None
    kind: type[AcquirerRejected] = AcquirerRejected
    if status == 404:
        kind = NotFound
    elif status == 409 and code == "idempotency_conflict":
        kind = IdempotencyConflict
    raise kind(
        f"host refused the request: {status} {code}",
        status=status, code=code, field=field if isinstance(field, str) else None,
        idempotency_key=key, attempts=attempts,
    )


def _parse(parser: Callable[..., _T], data: Any, replayed: bool, key: str) -> _T:
    """Parse an answer object, the protocol error tagged with the request's key."""
    try:
        return parser(data, replayed=replayed)
    except AcquirerProtocolError as exc:
        exc.idempotency_key = key
        raise


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
