"""The online payment API client: authorise, reverse, refund, status query (docs/acquirer-api.md).

:class:`AcquirerClient` speaks the JSON-over-HTTPS API with idempotency keys, bounded safe
retries and :meth:`~AcquirerClient.resolve_unknown` for answers that never came;
:class:`AcquirerHealth` is its reachability for the status page; :func:`seal_request` /
:func:`open_request` are the store-and-forward form of a request; the exceptions are in
:mod:`gateway.acquirer.errors` (a branch of :mod:`gateway.errors`). The lane's online step,
journal first, is :mod:`gateway.payments.online`.
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
from gateway.acquirer.stored import ForwardingError, open_request, seal_request

__all__ = [
    "AcquirerClient",
    "AcquirerError",
    "AcquirerHealth",
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
    "open_request",
    "seal_request",
]
