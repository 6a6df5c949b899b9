"""The online payment API client: authorise, reverse, refund, status query (docs/acquirer-api.md).

:class:`AcquirerClient` speaks the JSON-over-HTTPS API with idempotency keys, bounded safe
retries and :meth:`~AcquirerClient.resolve_unknown` for answers that never came;
:func:`online_authoriser` plugs it into the EMV kernel's online step; the exceptions are in
:mod:`gateway.acquirer.errors`.
"""

from __future__ import annotations

from gateway.acquirer.client import AcquirerClient
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
from gateway.acquirer.health import AcquirerHealth
from gateway.acquirer.models import (
    Authorisation,
    AuthorisationRequest,
    Outcome,
    Refund,
    Resolution,
)
from gateway.acquirer.online import AcquirerOnlineAuthoriser, online_authoriser
from gateway.acquirer.stored import ForwardingError, open_request, seal_request

__all__ = [
    "AcquirerClient",
    "AcquirerError",
    "AcquirerHealth",
    "AcquirerOnlineAuthoriser",
    "AcquirerProtocolError",
    "AcquirerRejected",
    "AcquirerServerError",
    "AcquirerTimeout",
    "AcquirerUnreachable",
    "AcquirerUsageError",
    "AnswerLost",
    "Authorisation",
    "AuthorisationRequest",
    "ForwardingError",
    "IdempotencyConflict",
    "NotFound",
    "Outcome",
    "Refund",
    "Resolution",
    "online_authoriser",
    "open_request",
    "seal_request",
]
