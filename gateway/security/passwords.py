"""Manager passwords: Argon2id from argon2-cffi (RFC 9106), never stored or logged in clear.

The parameters are argon2-cffi's defaults (its ``RFC_9106_LOW_MEMORY`` profile: t=3, 64 MiB),
encoded in each hash, so raising them later re-hashes a password at its next login
(:meth:`PasswordHasher.check_needs_rehash`). Verifying an unknown account still spends one hash
(against a dummy), so response time does not tell which names exist. The dummy is a constant
made with today's parameters, not a hash made at import: a hash takes its 64 MiB for a moment,
and at import it was the daemon's peak RSS (113 MB against 74 MB once ready;
benchmarks/rss.py). Should the parameters change, the dummy is made again once, at the first
unknown name, so that checking it still costs what checking a real hash costs.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.security.errors import WeakPassword

__all__ = ["MIN_PASSWORD", "hash_password", "needs_rehash", "verify_password"]

MIN_PASSWORD = 10
_HASHER = PasswordHasher()


#: Argon2id of "posgw dummy password, never valid" with argon2-cffi's default parameters (not a
#: secret: an unknown account is refused whatever the check says).
_DUMMY = (
    "$argon2id$v=19$m=65536,t=3,p=4$ngHyEXxNzAiWPffV0VutOg$"
    "cWuBcs+y0mmkGasTWLWxXAvY6jPzB1lg8uno8KWv61Q"
)


@functools.cache
def _dummy() -> str:
    """The hash verified for an unknown account: :data:`_DUMMY`, or one made with the hasher's
    parameters once, if they are no longer the constant's."""
    if _HASHER.check_needs_rehash(_DUMMY):
        return _HASHER.hash("posgw dummy password, never valid")
    return _DUMMY


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string) of ``password``.

    Raises:
        WeakPassword: Shorter than :data:`MIN_PASSWORD` characters.
    """
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a manager password needs at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored`` (None: an unknown account, always False)."""
    try:
        return _HASHER.verify(stored if stored is not None else _dummy(), password) and (
            stored is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)
