"""Who may move money: till credentials, TLS, manager sessions, request checks, limits.

* :mod:`~gateway.security.store`: till tokens (hashed), manager accounts (Argon2id) and refund
  approvals in the journal file, each change audited (:mod:`gateway.journal.audit`); built
  from :mod:`~gateway.security.tills`, :mod:`~gateway.security.accounts`,
  :mod:`~gateway.security.approvals` on :mod:`~gateway.security.store_core`, returning the
  records of :mod:`~gateway.security.principals`.
* :mod:`~gateway.security.service`: the daemon's async, cached face of the store.
* :mod:`~gateway.security.guard`: Host, Origin, Content-Type and till-token middlewares.
* :mod:`~gateway.security.manager`: login, logout, CSRF, roles and the approval page.
* :mod:`~gateway.security.sessions`: server-side sessions and the login lockout.
* :mod:`~gateway.security.tls`: the listener's certificate (files or self-signed) and pinning.
* :mod:`~gateway.security.limits`: connection caps at accept time, rate-limited logging.
* :mod:`~gateway.security.inputs`: strict ids, bounded JSON, card-number references.

See docs/security.md for the threat model and how to rotate every secret.
"""

from __future__ import annotations

from gateway.security.errors import (
    CredentialError,
    InputError,
    InvalidName,
    PrincipalExists,
    SecurityError,
    TlsSetupError,
    UnknownPrincipal,
    WeakPassword,
)
from gateway.security.store import CredentialStore, ManagerAccount, RefundApproval, TillCredential
from gateway.security.tokens import new_token

__all__ = [
    "CredentialError",
    "CredentialStore",
    "InputError",
    "InvalidName",
    "ManagerAccount",
    "PrincipalExists",
    "RefundApproval",
    "SecurityError",
    "TillCredential",
    "TlsSetupError",
    "UnknownPrincipal",
    "WeakPassword",
    "new_token",
]
