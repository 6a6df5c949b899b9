"""The exceptions of the acquirer client: a short tree, each saying what happened to the money.

::

    AcquirerError                 base of every error the client raises
    ├── AcquirerUsageError        bad arguments, plain http to a remote host, client not open
    ├── AcquirerUnreachable       the request never reached the host (refused, DNS, connect
    │                             time-out): nothing was charged, safe to retry with the same key
    ├── AnswerLost                the request went out, its answer never came (connection dropped,
    │   │                         unreadable answer): outcome unknown, call ``resolve_unknown(key)``
    │   └── AcquirerTimeout       the total time-out expired after the request went out
    ├── AcquirerServerError       5xx after the bounded retries: the host did not complete the
    │                             request (it stores no 5xx answer); retry later with the same key
    ├── AcquirerRejected          the host refused it (4xx): ``status``, ``code``, ``field``
    │   ├── IdempotencyConflict   409: the key was used with another request
    │   └── NotFound              404: no such authorisation (or no request with that key)
    └── AcquirerProtocolError     the answer is not the documented JSON (``field`` names what)

aiohttp's exceptions are translated once, in :mod:`gateway.acquirer.client`, with
``raise ... from exc``. No message or attribute holds card data: the idempotency key and the
HTTP status are the only identifiers (docs/acquirer-api.md).
"""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = [
    "AcquirerError",
    "AcquirerProtocolError",
    "AcquirerRejected",
    "AcquirerServerError",
    "AcquirerTimeout",
    "AcquirerUnreachable",
    "AcquirerUsageError",
    "AnswerLost",
    "IdempotencyConflict",
    "NotFound",
]


class AcquirerError(GatewayError):
    """Base of the acquirer client's errors.

    Attributes:
        idempotency_key: The key of the request concerned, if any.
        attempts: How many times the request was tried.
    """

    def __init__(
        self, message: str, *, idempotency_key: str | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message)
        self.idempotency_key = idempotency_key
        self.attempts = attempts


class AcquirerUsageError(AcquirerError):
    """The client was misused: bad argument, plain http to a remote host, not open."""


class AcquirerUnreachable(AcquirerError):
    """The request never reached the host: nothing was charged."""


class AnswerLost(AcquirerError):
    """The request went out and its answer never came: the outcome is unknown."""


class AcquirerTimeout(AnswerLost):
    """The total time-out expired after the request went out."""


class AcquirerServerError(AcquirerError):
    """The host answered 5xx on every attempt.

    Attributes:
        status: The last HTTP status.
    """

    def __init__(
        self, message: str, *, status: int, idempotency_key: str | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message, idempotency_key=idempotency_key, attempts=attempts)
        self.status = status


class AcquirerRejected(AcquirerError):
    """The host refused the request (4xx).

    Attributes:
        status: The HTTP status.
        code: The ``error`` code of the answer (``invalid_request``, ``not_reversible``...).
        field: The field the host named, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        field: str | None = None,
        idempotency_key: str | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(message, idempotency_key=idempotency_key, attempts=attempts)
        self.status = status
        self.code = code
        self.field = field


class IdempotencyConflict(AcquirerRejected):
    """409: the idempotency key was already used with another request."""


class NotFound(AcquirerRejected):
    """404: no such authorisation, or no completed request with that key."""


class AcquirerProtocolError(AcquirerError):
    """The answer is not the documented JSON.

    Attributes:
        field: What was wrong (``body``, ``status``, ``issuer_response``...).
    """

    def __init__(
        self, message: str, *, field: str, idempotency_key: str | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message, idempotency_key=idempotency_key, attempts=attempts)
        self.field = field
