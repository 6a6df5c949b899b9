"""The security package's errors (one tree, rooted at :class:`SecurityError`).

* :class:`SecurityError`: anything below.
* :class:`CredentialError`: a till or manager credential cannot be added, changed or used
  (:class:`UnknownPrincipal`, :class:`PrincipalExists`, :class:`InvalidName`,
  :class:`WeakPassword`).
* :class:`TlsSetupError`: the listener's certificate or key cannot be read or made.
* :class:`InputError`: bad input from the network; ``field`` names it (a 400).

Messages name the till, the manager or the file at fault, never a token, a password or a key.
"""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = [
    "CredentialError",
    "InputError",
    "InvalidName",
    "PrincipalExists",
    "SecurityError",
    "TlsSetupError",
    "UnknownPrincipal",
    "WeakPassword",
]


class SecurityError(GatewayError):
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


class InputError(SecurityError):
    """Bad input from the network: ``field`` names what, ``message`` says why (never the value)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
