"""Issuer, ICC and ICC PIN encipherment public key recovery (EMV 4.4 Book 2, 5.3, 6.3, 6.4, 7.1).

The chain is CA public key (terminal) → Issuer Public Key Certificate (tag 90, remainder 92,
exponent 9F32) → ICC Public Key Certificate (9F46, 9F48, 9F47) or ICC PIN Encipherment Public
Key Certificate (9F2D, 9F2F, 9F2E). Each step returns the recovered key or an
:class:`~terminal.oda.results.OdaFailure` naming the failed check; nothing raises on card data.

Layouts of the recovered data (offsets from 0, N the certifier's modulus length):

issuer (format 02, Book 2 Table 6): 6A | 02 | issuer id (4) | expiry MMYY (2) | serial (3) |
hash algo | PK algo | N_I | exponent length | key or leftmost part (N-36) | hash (20) | BC.

ICC (format 04, Book 2 Table 14): 6A | 04 | PAN (10) | expiry (2) | serial (3) | hash algo |
PK algo | N_IC | exponent length | key or leftmost part (N-42) | hash (20) | BC.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Protocol

from terminal.oda.recovery import (
    HASH_LEN,
    HASH_SHA1,
    PK_RSA,
    cert_expired,
    digits,
    envelope_ok,
    rsa_recover,
    sha1,
)
from terminal.oda.results import (
    IccPublicKey,
    IssuerPublicKey,
    OdaCheck,
    OdaFailure,
    OdaStage,
    RsaPublicKey,
)

__all__ = [
    "CertifyingKey",
    "RevocationCheck",
    "recover_icc_key",
    "recover_issuer_key",
    "recover_pin_key",
]

ISSUER_CERT_FORMAT = 0x02
ICC_CERT_FORMAT = 0x04

RevocationCheck = Callable[[bytes, int, bytes], bool]
"""``is_revoked(rid, ca_index, serial)``: the terminal's certification revocation list."""


class CertifyingKey(Protocol):
    """What certificate recovery needs of a CA public key (:class:`terminal.capk.CaPublicKey`)."""

    @property
    def rid(self) -> bytes: ...

    @property
    def index(self) -> int: ...

    @property
    def modulus(self) -> bytes: ...

    @property
    def exponent(self) -> bytes: ...


def _fail(stage: OdaStage, check: OdaCheck, detail: str = "") -> OdaFailure:
    return OdaFailure(stage, check, detail)


def _recover_key_cert(
    stage: OdaStage,
    certifier: RsaPublicKey,
    certificate: bytes,
    remainder: bytes,
    exponent: bytes,
    *,
    fmt: int,
    id_len: int,
    extra_hashed: bytes,
    today: datetime.date,
    check_identifier: Callable[[bytes], OdaFailure | None],
    check_serial: Callable[[bytes], OdaFailure | None] | None = None,
) -> tuple[bytes, bytes, bytes, RsaPublicKey] | OdaFailure:
    """Shared part of Book 2 5.3 / 6.4: returns (identifier, expiry, serial, key)."""
    size = certifier.size
    if len(certificate) != size:
        return _fail(stage, OdaCheck.LENGTH, f"{len(certificate)} bytes, modulus {size}")
    recovered = rsa_recover(certifier, certificate)
    # Fixed fields: header, format, id, expiry(2), serial(3), 2 algos, 2 lengths, hash, trailer.
    fixed = 1 + 1 + id_len + 2 + 3 + 4 + HASH_LEN + 1
    if recovered is None or size <= fixed or not envelope_ok(recovered):
        return _fail(stage, OdaCheck.RECOVERY)
    if recovered[1] != fmt:
        return _fail(stage, OdaCheck.FORMAT, f"format {recovered[1]:02X}")
    pos = 2
    identifier = recovered[pos : pos + id_len]
    pos += id_len
    expiry = recovered[pos : pos + 2]
    serial = recovered[pos + 2 : pos + 5]
    hash_algo, pk_algo, key_len, exp_len = recovered[pos + 5 : pos + 9]
    key_field = recovered[pos + 9 : size - HASH_LEN - 1]
    hash_result = recovered[size - HASH_LEN - 1 : size - 1]
    if hash_algo != HASH_SHA1:
        return _fail(stage, OdaCheck.HASH_ALGORITHM, f"indicator {hash_algo:02X}")
    # The hash covers format .. key field, then remainder, exponent (and static data).
    if sha1(recovered[1 : size - HASH_LEN - 1], remainder, exponent, extra_hashed) != hash_result:
        return _fail(stage, OdaCheck.HASH)
    failure = check_identifier(identifier)
    if failure is not None:
        return failure
    expired = cert_expired(expiry, today)
    if expired is None:
        return _fail(stage, OdaCheck.DATE_INVALID)
    if expired:
        return _fail(stage, OdaCheck.EXPIRED, f"expiry {expiry.hex()}")
    if check_serial is not None:
        failure = check_serial(serial)
        if failure is not None:
            return failure
    if pk_algo != PK_RSA:
        return _fail(stage, OdaCheck.PK_ALGORITHM, f"indicator {pk_algo:02X}")
    if exp_len != len(exponent):
        return _fail(stage, OdaCheck.KEY_LENGTH, "exponent length differs")
    room = len(key_field)
    if key_len == 0:
        return _fail(stage, OdaCheck.KEY_LENGTH, "zero modulus length")
    if key_len <= room:
        modulus = key_field[:key_len]
    elif len(remainder) != key_len - room:
        return _fail(stage, OdaCheck.REMAINDER, f"{len(remainder)} bytes, {key_len - room} due")
    else:
        modulus = key_field + remainder
    return identifier, expiry, serial, RsaPublicKey(modulus, exponent)


def recover_issuer_key(
    ca_key: CertifyingKey,
    certificate: bytes | None,
    remainder: bytes | None,
    exponent: bytes | None,
    pan: bytes | None,
    today: datetime.date,
    *,
    is_revoked: RevocationCheck | None = None,
) -> IssuerPublicKey | OdaFailure:
    """Recover the issuer public key from its certificate (EMV 4.4 Book 2, 5.3 and 6.3).

    Checks, in the order of Book 2 5.3: certificate length = N_CA (step 1), header ``6A`` and
    trailer ``BC`` (2, 3), format ``02`` (4), hash algorithm and SHA-1 hash over format .. key
    field || remainder || exponent (5-7), issuer identifier = leftmost 3-8 PAN digits (8),
    expiration month not passed (9), RID || index || serial not revoked (10), public key
    algorithm (11), then builds the modulus from the key field and the remainder.

    Args:
        ca_key: The CA public key selected by RID and tag 8F.
        certificate: Tag 90.
        remainder: Tag 92, or ``None``/empty when the card has none.
        exponent: Tag 9F32.
        pan: Tag 5A (cn, F-padded).
        today: Transaction date (injected clock).
        is_revoked: The terminal's certification revocation list, if any.

    Returns:
        The recovered :class:`IssuerPublicKey`, or an :class:`OdaFailure`.
    """
    stage = OdaStage.ISSUER_CERT
    if not certificate or not exponent or not pan:
        return _fail(stage, OdaCheck.DATA_MISSING, "tag 90, 9F32 or 5A absent")
    pan_digits = digits(pan)
    if not pan_digits:
        return _fail(stage, OdaCheck.IDENTIFIER, "PAN is not cn")
    def check_identifier(identifier: bytes) -> OdaFailure | None:
        issuer_digits = digits(identifier)
        if issuer_digits is None or not 3 <= len(issuer_digits) <= 8:
            return _fail(stage, OdaCheck.IDENTIFIER, "issuer identifier is not 3-8 digits")
        if not pan_digits.startswith(issuer_digits):
            return _fail(stage, OdaCheck.IDENTIFIER, "issuer identifier does not match the PAN")
        return None

    def check_serial(serial: bytes) -> OdaFailure | None:
        if is_revoked is not None and is_revoked(ca_key.rid, ca_key.index, serial):
            return _fail(stage, OdaCheck.REVOKED, f"serial {serial.hex().upper()}")
        return None

    ca = RsaPublicKey(ca_key.modulus, ca_key.exponent)
    out = _recover_key_cert(
        stage, ca, certificate, remainder or b"", exponent,
        fmt=ISSUER_CERT_FORMAT, id_len=4, extra_hashed=b"", today=today,
        check_identifier=check_identifier, check_serial=check_serial,
    )
    if isinstance(out, OdaFailure):
        return out
    identifier, expiry, serial, key = out
    return IssuerPublicKey(key, identifier, expiry, serial)


def _recover_icc_like(
    stage: OdaStage,
    issuer: IssuerPublicKey | RsaPublicKey,
    certificate: bytes | None,
    remainder: bytes | None,
    exponent: bytes | None,
    pan: bytes | None,
    today: datetime.date,
    static_data: bytes,
) -> IccPublicKey | OdaFailure:
    if not certificate or not exponent or not pan:
        return _fail(stage, OdaCheck.DATA_MISSING, "certificate, exponent or 5A absent")
    pan_digits = digits(pan)
    if not pan_digits:
        return _fail(stage, OdaCheck.IDENTIFIER, "PAN is not cn")
    def check_identifier(cert_pan: bytes) -> OdaFailure | None:
        if digits(cert_pan) != pan_digits:
            return _fail(stage, OdaCheck.IDENTIFIER, "certified PAN differs from tag 5A")
        return None

    key = issuer.key if isinstance(issuer, IssuerPublicKey) else issuer
    out = _recover_key_cert(
        stage, key, certificate, remainder or b"", exponent,
        fmt=ICC_CERT_FORMAT, id_len=10, extra_hashed=static_data, today=today,
        check_identifier=check_identifier,
    )
    if isinstance(out, OdaFailure):
        return out
    _, expiry, serial, icc_key = out
    return IccPublicKey(icc_key, expiry, serial)


def recover_icc_key(
    issuer: IssuerPublicKey | RsaPublicKey,
    certificate: bytes | None,
    remainder: bytes | None,
    exponent: bytes | None,
    pan: bytes | None,
    static_data: bytes,
    today: datetime.date,
) -> IccPublicKey | OdaFailure:
    """Recover the ICC public key from its certificate (EMV 4.4 Book 2, 6.4).

    Checks: length = N_I (step 1), header/trailer (2, 3), format ``04`` (4), hash algorithm and
    SHA-1 over format .. key field || remainder (9F48) || exponent (9F47) || static data to be
    authenticated (5-7), certified PAN = tag 5A (8), expiration (9), PK algorithm (10).

    Args:
        issuer: The recovered issuer public key.
        certificate: Tag 9F46.
        remainder: Tag 9F48, or ``None``/empty.
        exponent: Tag 9F47.
        pan: Tag 5A.
        static_data: The static data to be authenticated (Book 3, 10.3; see
            :mod:`terminal.oda.static_data`).
        today: Transaction date.

    Returns:
        The recovered :class:`IccPublicKey`, or an :class:`OdaFailure`.
    """
    return _recover_icc_like(
        OdaStage.ICC_CERT, issuer, certificate, remainder, exponent, pan, today, static_data
    )


def recover_pin_key(
    issuer: IssuerPublicKey | RsaPublicKey,
    certificate: bytes | None,
    remainder: bytes | None,
    exponent: bytes | None,
    pan: bytes | None,
    today: datetime.date,
) -> IccPublicKey | OdaFailure:
    """Recover the ICC PIN Encipherment public key (EMV 4.4 Book 2, 7.1).

    Same layout and checks as the ICC certificate (format ``04``), except that the hash does
    not cover the static data to be authenticated.

    Args:
        issuer: The recovered issuer public key.
        certificate: Tag 9F2D.
        remainder: Tag 9F2F, or ``None``/empty.
        exponent: Tag 9F2E.
        pan: Tag 5A.
        today: Transaction date.

    Returns:
        The recovered :class:`IccPublicKey`, or an :class:`OdaFailure`.
    """
    return _recover_icc_like(
        OdaStage.PIN_CERT, issuer, certificate, remainder, exponent, pan, today, b""
    )
