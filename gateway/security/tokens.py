"""Till bearer tokens: made from 256 random bits, shown once, stored only as a hash.

A token is ``pgt_`` followed by 52 base32 characters (32 bytes from :func:`secrets.token_bytes`;
base32 has no long digit runs, so the journal's card-data guard never trips on one). With 256
bits of entropy a slow password hash buys nothing: what is stored is SHA-256 of the token under a
fixed domain label (NIST SP 800-63B, 5.1.1.2 asks for a salted slow hash of *memorised* secrets
only; a random 256-bit secret cannot be guessed offline). Comparison is by a database lookup of
the hash, so no timing depends on how much of a guessed token was right.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

__all__ = ["TOKEN_PREFIX", "hash_token", "looks_like_token", "new_token"]

TOKEN_PREFIX = "pgt_"  # noqa: S105 (a prefix, not a secret)
_TOKEN = re.compile(r"^pgt_[a-z2-7]{52}$")
_DOMAIN = b"posgw till token v1\x00"


def new_token() -> str:
    """A fresh till token (256 random bits)."""
    return TOKEN_PREFIX + base64.b32encode(secrets.token_bytes(32)).decode().rstrip("=").lower()


def looks_like_token(text: str) -> bool:
    """True when ``text`` has the shape of a till token (checked before any lookup)."""
    return bool(_TOKEN.match(text))


def hash_token(token: str) -> str:
    """The stored form of a token: SHA-256 (hex) of the domain label and the token."""
    return hashlib.sha256(_DOMAIN + token.encode("ascii")).hexdigest()
