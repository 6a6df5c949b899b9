"""The security package's errors (one tree, rooted at :class:`SecurityError`).

* :class:`SecurityError`: anything below.
* :class:`CredentialError`: a till or manager credential cannot be added, changed or used
  (:class:`UnknownPrincipal`, :class:`PrincipalExists`, :class:`InvalidName`,
  :class:`WeakPassword`).
* :class:`TlsSetupError`: the listener's certificate or key cannot be read or made.

Messages name the till, the manager or the file at fault, never a token, a password or a key.
"""

from __future__ import annotations

__all__ = [
    "CredentialError",
    "InvalidName",
    "PrincipalExists",
    "SecurityError",
    "TlsSetupError",
    "UnknownPrincipal",
    "WeakPassword",
]


class SecurityError(Exception):
    """The root of the security package's errors."""


class CredentialError(SecurityError):
    """A till or manager credential cannot be added, changed or used."""


class UnknownPrincipal(CredentialError):
    """No such till or manager (or it is revoked)."""


class PrincipalExists(CredentialError):
    """A till or manager of that name already exists."""


class InvalidName(CredentialError):
    """A till or manager name outside ``[A-Za-z0-9._-]{1,32}``."""


class WeakPassword(CredentialError):
    """A manager password shorter than the minimum."""


class TlsSetupError(SecurityError):
    """The HTTP listener's certificate or key cannot be read or made."""
