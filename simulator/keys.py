"""Test PKI for the virtual cards: CA, issuer and ICC RSA keys, certificates and signatures.

The card side of EMV offline data authentication (EMV 4.4 Book 2, 5-7): the issuer certificate
signed by a CA, the ICC and ICC PIN encipherment certificates signed by the issuer, the Signed
Static Application Data (SDA), and the Signed Dynamic Application Data of DDA (INTERNAL
AUTHENTICATE), CDA (GENERATE AC) and Visa fDDA (GPO). Every signature is the ISO/IEC 9796-2
scheme EMV uses: ``6A || data || SHA-1(data || extra) || BC`` raised to the private exponent.

The key material is generated once, deterministically from a seed, by :mod:`simulator.gen_keys`
and kept as test data in ``simulator/data/keys/*.json``; :func:`load_pki` reads it. Our CAs use
indexes that no scheme test key uses (``F0`` under A000000003, A000000004 and A000000025) and
their public halves are in ``capk_sim.json``, loadable with
:meth:`terminal.capk.CapkStore.load_file`. NEVER use any of this for real money.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal import RsaPublicKey

__all__ = [
    "DEFAULT_KEYS_DIR",
    "Certificate",
    "Issuer",
    "RsaKeyPair",
    "TestCa",
    "TestPki",
    "emv_sign",
    "icc_certificate",
    "issuer_certificate",
    "load_pki",
    "pin_certificate",
    "sign_cda",
    "sign_dda",
    "sign_dynamic_data",
    "sign_fdda",
    "sign_static_data",
]

DEFAULT_KEYS_DIR = Path(__file__).resolve().parent / "data" / "keys"
_HASH_SHA1 = 0x01
_PK_RSA = 0x01


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()  # noqa: S324 - EMV ODA specifies SHA-1


@dataclass(frozen=True, slots=True)
class RsaKeyPair:
    """An RSA key pair (test material only). ``repr`` shows no private part."""

    n: int
    e: int
    d: int
    p: int
    q: int

    @property
    def size(self) -> int:
        """Modulus length in bytes."""
        return (self.n.bit_length() + 7) // 8

    @property
    def modulus(self) -> bytes:
        """Big-endian modulus."""
        return self.n.to_bytes(self.size, "big")

    @property
    def exponent(self) -> bytes:
        """Big-endian public exponent (``03`` or ``010001``)."""
        return self.e.to_bytes((self.e.bit_length() + 7) // 8, "big")

    def public(self) -> RsaPublicKey:
        """The public half, as the terminal's ODA code takes it."""
        return RsaPublicKey(self.modulus, self.exponent)

    def private_op(self, block: bytes) -> bytes:
        """Raw RSA private operation (CRT) on a block of exactly the modulus length."""
        if len(block) != self.size:
            raise ValueError(f"block of {len(block)} bytes for a {self.size}-byte modulus")
        x = int.from_bytes(block, "big")
        if x >= self.n:
            raise ValueError("block is not below the modulus")
        mp = pow(x, self.d % (self.p - 1), self.p)
        mq = pow(x, self.d % (self.q - 1), self.q)
        h = (pow(self.q, -1, self.p) * (mp - mq)) % self.p
        return (mq + h * self.q).to_bytes(self.size, "big")

    def to_json(self) -> dict[str, str]:
        """Hex fields for the key files."""
        return {name: format(getattr(self, name), "X") for name in ("n", "e", "d", "p", "q")}

    @classmethod
    def from_json(cls, obj: Mapping[str, str]) -> RsaKeyPair:
        """Inverse of :meth:`to_json`; checks that the parts fit together."""
        pair = cls(*(int(obj[name], 16) for name in ("n", "e", "d", "p", "q")))
        if pair.p * pair.q != pair.n or pow(2, pair.e * pair.d, pair.n) != 2:
            raise ValueError("inconsistent RSA key pair")
        return pair

    def __repr__(self) -> str:
        return f"RsaKeyPair({self.n.bit_length()} bits, e={self.e})"


def emv_sign(key: RsaKeyPair, data: bytes, hashed_extra: bytes = b"") -> bytes:
    """Sign with message recovery as EMV does (EMV 4.4 Book 2, Annex A2.1).

    Args:
        key: The signer's key pair.
        data: The recoverable part, format byte first, exactly ``key.size - 22`` bytes.
        hashed_extra: Data hashed after ``data`` but not recoverable (remainder, exponent,
            static data, terminal dynamic data...).

    Returns:
        The signature, ``key.size`` bytes.
    """
    if len(data) != key.size - 22:
        raise ValueError(f"recoverable data must be {key.size - 22} bytes, got {len(data)}")
    return key.private_op(b"\x6a" + data + _sha1(data + hashed_extra) + b"\xbc")


@dataclass(frozen=True, slots=True)
class Certificate:
    """A public key certificate as the card carries it.

    Attributes:
        certificate: Tag 90 (issuer), 9F46 (ICC) or 9F2D (PIN key).
        remainder: Tag 92, 9F48 or 9F2F (empty when the key fits).
        exponent: Tag 9F32, 9F47 or 9F2E.
    """

    certificate: bytes
    remainder: bytes
    exponent: bytes


def _key_certificate(
    signer: RsaKeyPair,
    subject: RsaPublicKey,
    *,
    fmt: int,
    identifier: bytes,
    expiry: bytes,
    serial: bytes,
    extra: bytes,
) -> Certificate:
    room = signer.size - 22 - (1 + len(identifier) + 2 + 3 + 4)
    modulus = subject.modulus
    if len(modulus) <= room:
        field, remainder = modulus + b"\xbb" * (room - len(modulus)), b""
    else:
        field, remainder = modulus[:room], modulus[room:]
    if len(expiry) != 2 or len(serial) != 3 or len(modulus) > 0xFF:
        raise ValueError("expiry is 2 bytes, serial 3 bytes, modulus at most 255 bytes")
    data = (
        bytes((fmt,)) + identifier + expiry + serial
        + bytes((_HASH_SHA1, _PK_RSA, len(modulus), len(subject.exponent)))
        + field
    )
    cert = emv_sign(signer, data, remainder + subject.exponent + extra)
    return Certificate(cert, remainder, subject.exponent)


def _pad_cn(digits: str, size: int) -> bytes:
    if not digits.isdigit() or len(digits) > size * 2:
        raise ValueError("identifier must be decimal digits that fit the field")
    return bytes.fromhex(digits + "F" * (size * 2 - len(digits)))


def issuer_certificate(
    ca: RsaKeyPair, issuer: RsaPublicKey, issuer_id: str, expiry: bytes, serial: bytes
) -> Certificate:
    """Issuer Public Key Certificate, format 02 (EMV 4.4 Book 2, 5.1 Table 2 / 6.1).

    Args:
        ca: The CA key pair.
        issuer: The issuer public key.
        issuer_id: Leftmost 3-8 PAN digits.
        expiry: Certificate expiration date MMYY, BCD.
        serial: Certificate serial number, 3 bytes.
    """
    return _key_certificate(
        ca, issuer, fmt=0x02, identifier=_pad_cn(issuer_id, 4),
        expiry=expiry, serial=serial, extra=b"",
    )


def icc_certificate(
    issuer: RsaKeyPair,
    icc: RsaPublicKey,
    pan: str,
    expiry: bytes,
    serial: bytes,
    static_data: bytes,
) -> Certificate:
    """ICC Public Key Certificate, format 04, binding PAN and static data (Book 2, 6.1 Table 14).

    Args:
        issuer: The issuer key pair.
        icc: The ICC public key.
        pan: The application PAN digits (tag 5A).
        expiry: MMYY, BCD.
        serial: 3 bytes.
        static_data: The static data to be authenticated (Book 3, 10.3).
    """
    return _key_certificate(
        issuer, icc, fmt=0x04, identifier=_pad_cn(pan, 10),
        expiry=expiry, serial=serial, extra=static_data,
    )


def pin_certificate(
    issuer: RsaKeyPair, pin_key: RsaPublicKey, pan: str, expiry: bytes, serial: bytes
) -> Certificate:
    """ICC PIN Encipherment Public Key Certificate, format 04, no static data (Book 2, 7.1)."""
    return _key_certificate(
        issuer, pin_key, fmt=0x04, identifier=_pad_cn(pan, 10),
        expiry=expiry, serial=serial, extra=b"",
    )


def sign_static_data(issuer: RsaKeyPair, dac: bytes, static_data: bytes) -> bytes:
    """Signed Static Application Data, tag 93 (EMV 4.4 Book 2, 5.4 Table 7).

    Args:
        issuer: The issuer key pair.
        dac: Data Authentication Code (2 bytes, becomes 9F45 in the terminal).
        static_data: The static data to be authenticated.
    """
    if len(dac) != 2:
        raise ValueError("the data authentication code is 2 bytes")
    pad = b"\xbb" * (issuer.size - 26)
    return emv_sign(issuer, bytes((0x03, _HASH_SHA1)) + dac + pad, static_data)


def sign_dynamic_data(icc: RsaKeyPair, icc_dynamic_data: bytes, terminal_data: bytes) -> bytes:
    """Signed Dynamic Application Data, tag 9F4B (EMV 4.4 Book 2, 6.5.1 Table 17).

    Args:
        icc: The ICC key pair.
        icc_dynamic_data: The ICC Dynamic Data (IDN length, IDN, and for CDA CID, AC, TDHC).
        terminal_data: The terminal dynamic data hashed after the recoverable part.
    """
    room = icc.size - 25
    if len(icc_dynamic_data) > room:
        raise ValueError(f"ICC dynamic data longer than {room} bytes")
    pad = b"\xbb" * (room - len(icc_dynamic_data))
    data = bytes((0x05, _HASH_SHA1, len(icc_dynamic_data))) + icc_dynamic_data + pad
    return emv_sign(icc, data, terminal_data)


def _idn_field(idn: bytes) -> bytes:
    if not 2 <= len(idn) <= 8:
        raise ValueError("the ICC dynamic number is 2-8 bytes")
    return bytes((len(idn),)) + idn


def sign_dda(icc: RsaKeyPair, idn: bytes, ddol_data: bytes) -> bytes:
    """Card side of INTERNAL AUTHENTICATE: SDAD over the DDOL data (Book 2, 6.5.1)."""
    return sign_dynamic_data(icc, _idn_field(idn), ddol_data)


def sign_cda(
    icc: RsaKeyPair,
    *,
    idn: bytes,
    cid: bytes,
    cryptogram: bytes,
    unpredictable_number: bytes,
    transaction_data: bytes,
) -> bytes:
    """Card side of GENERATE AC with CDA (EMV 4.4 Book 2, 6.6.1).

    Args:
        icc: The ICC key pair.
        idn: ICC Dynamic Number (2-8 bytes).
        cid: Cryptogram Information Data (1 byte, 9F27).
        cryptogram: The application cryptogram (8 bytes, 9F26).
        unpredictable_number: The terminal's UN (9F37) from the CDOL data.
        transaction_data: PDOL data || CDOL1 data (|| CDOL2 data) || the response TLVs other
            than 9F4B (see :func:`terminal.oda.cda.cda_transaction_data`); its SHA-1 is the
            Transaction Data Hash Code.
    """
    if len(cid) != 1 or len(cryptogram) != 8:
        raise ValueError("CID is 1 byte and the cryptogram 8 bytes")
    dynamic = _idn_field(idn) + cid + cryptogram + _sha1(transaction_data)
    return sign_dynamic_data(icc, dynamic, unpredictable_number)


def sign_fdda(
    icc: RsaKeyPair,
    *,
    idn: bytes,
    unpredictable_number: bytes,
    amount_authorised: bytes,
    currency_code: bytes,
    card_auth_data: bytes,
) -> bytes:
    """Card side of Visa fDDA in the GPO response (Visa Contactless, kernel 3).

    ``card_auth_data`` is 9F69; when its first byte (fDDA version) is ``01`` the signature
    covers UN || 9F02 || 5F2A || 9F69, else the UN only.
    """
    if card_auth_data[:1] == b"\x01":
        terminal = unpredictable_number + amount_authorised + currency_code + card_auth_data
    else:
        terminal = unpredictable_number
    return sign_dynamic_data(icc, _idn_field(idn), terminal)


@dataclass(frozen=True, slots=True)
class TestCa:
    """One of our test CAs: RID, index and key pair."""

    __test__ = False  # not a pytest class

    rid: bytes
    index: int
    key: RsaKeyPair

    @property
    def modulus(self) -> bytes:
        """The CA public key modulus (so a TestCa serves where a CA public key is expected)."""
        return self.key.modulus

    @property
    def exponent(self) -> bytes:
        """The CA public key exponent."""
        return self.key.exponent


@dataclass(frozen=True, slots=True)
class Issuer:
    """A test issuer with its key pair and CA-signed certificate.

    Attributes:
        name: Name in ``issuers.json`` (``visa``, ``visa_expired``, ``mastercard``...).
        ca: The CA that certified it.
        issuer_id: Leftmost PAN digits bound in the certificate.
        key: The issuer key pair.
        certificate: Tags 90, 92, 9F32.
        expiry: Certificate expiration MMYY (BCD).
        serial: Certificate serial number.
    """

    name: str
    ca: TestCa
    issuer_id: str
    key: RsaKeyPair
    certificate: Certificate
    expiry: bytes
    serial: bytes


@dataclass(frozen=True, slots=True)
class TestPki:
    """All test key material: CAs, issuers, ICC keys and ICC PIN encipherment keys."""

    __test__ = False

    cas: dict[tuple[bytes, int], TestCa]
    issuers: dict[str, Issuer]
    icc_keys: tuple[RsaKeyPair, ...]
    pin_keys: tuple[RsaKeyPair, ...]
    capk_file: Path


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_pki(directory: str | Path = DEFAULT_KEYS_DIR) -> TestPki:
    """Load the generated test PKI from ``directory`` (default ``simulator/data/keys``)."""
    directory = Path(directory)
    cas: dict[tuple[bytes, int], TestCa] = {}
    for entry in _read(directory / "ca.json")["cas"]:
        ca = TestCa(bytes.fromhex(entry["rid"]), int(entry["index"], 16),
                    RsaKeyPair.from_json(entry["key"]))
        cas[(ca.rid, ca.index)] = ca
    issuers: dict[str, Issuer] = {}
    for entry in _read(directory / "issuers.json")["issuers"]:
        cert = entry["certificate"]
        issuers[entry["name"]] = Issuer(
            name=entry["name"],
            ca=cas[(bytes.fromhex(entry["rid"]), int(entry["ca_index"], 16))],
            issuer_id=entry["issuer_id"],
            key=RsaKeyPair.from_json(entry["key"]),
            certificate=Certificate(
                bytes.fromhex(cert["90"]), bytes.fromhex(cert["92"]), bytes.fromhex(cert["9F32"])
            ),
            expiry=bytes.fromhex(cert["expiry"]),
            serial=bytes.fromhex(cert["serial"]),
        )
    icc = _read(directory / "icc.json")
    return TestPki(
        cas=cas,
        issuers=issuers,
        icc_keys=tuple(RsaKeyPair.from_json(k) for k in icc["icc_keys"]),
        pin_keys=tuple(RsaKeyPair.from_json(k) for k in icc["pin_keys"]),
        capk_file=directory / "capk_sim.json",
    )
