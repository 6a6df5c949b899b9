"""Certification Authority public keys and the certification revocation list (EMV 4.4 Book 2, 11.2).

The terminal trusts a CA public key by (RID, CA Public Key Index, tag 8F). Each key is stored
with its modulus, exponent, expiration date and the CA Public Key Check Sum, which is SHA-1 over
``RID || index || modulus || exponent`` (Book 2, 11.2.2, Table 29) and is verified whenever a key
is loaded. The revocation list holds (RID, CA index, certificate serial number) triples; an
issuer certificate whose triple is listed is rejected (Book 2, 5.3 step 10).

Keys are loaded from JSON; :meth:`CapkStore.default` ships the public EMV *test* keys from
``terminal/data/capk_test.json``. JSON layout::

    {"keys": [{"rid": "A000000003", "index": "92", "modulus": "...", "exponent": "03",
               "checksum": "...", "expiry": "2030-12-31" | null}],
     "revoked": [{"rid": "A000000003", "index": "92", "serial": "000001"}]}
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from terminal.errors import EmvError

__all__ = ["DEFAULT_CAPK_FILE", "CaPublicKey", "CapkError", "CapkStore"]

DEFAULT_CAPK_FILE = Path(__file__).resolve().parent / "data" / "capk_test.json"


class CapkError(EmvError):
    """A CA public key file or entry is malformed, or a check sum does not verify."""


@dataclass(frozen=True, slots=True)
class CaPublicKey:
    """One CA public key (EMV 4.4 Book 2, 11.2.2).

    Attributes:
        rid: Registered Application Provider Identifier (5 bytes).
        index: CA Public Key Index (tag 8F / 9F22).
        modulus: Big-endian modulus.
        exponent: Big-endian exponent (``03`` or ``010001``).
        checksum: The CA Public Key Check Sum (SHA-1), or ``None`` if not provided.
        expiry: Last day of validity, or ``None`` when unknown/unlimited.
    """

    rid: bytes
    index: int
    modulus: bytes
    exponent: bytes
    checksum: bytes | None = None
    expiry: datetime.date | None = None

    def compute_checksum(self) -> bytes:
        """SHA-1(RID || index || modulus || exponent) (Book 2, 11.2.2)."""
        data = self.rid + bytes((self.index,)) + self.modulus + self.exponent
        return hashlib.sha1(data).digest()  # noqa: S324 - the check sum is specified as SHA-1

    def checksum_ok(self) -> bool:
        """True when no check sum is stored or the stored one verifies."""
        return self.checksum is None or self.checksum == self.compute_checksum()

    def expired(self, today: datetime.date) -> bool:
        """True when the key's expiry date is known and before ``today``."""
        return self.expiry is not None and today > self.expiry

    def __repr__(self) -> str:
        bits = len(self.modulus) * 8
        return f"CaPublicKey({self.rid.hex().upper()}/{self.index:02X}, {bits} bits)"


def _hex(entry: Mapping[str, Any], name: str, where: str, *, size: int | None = None) -> bytes:
    raw = entry.get(name)
    if not isinstance(raw, str):
        raise CapkError(f"{where}: field {name!r} missing or not a string")
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        raise CapkError(f"{where}: field {name!r} is not hex") from None
    if size is not None and len(value) != size:
        raise CapkError(f"{where}: field {name!r} must be {size} bytes")
    return value


def _index(entry: Mapping[str, Any], where: str) -> int:
    return _hex(entry, "index", where, size=1)[0]


def key_from_json(entry: Mapping[str, Any], where: str = "key") -> CaPublicKey:
    """Build and check one key from its JSON object (see the module docstring).

    Raises:
        CapkError: on a missing or malformed field, or a check sum that does not verify.
    """
    if not isinstance(entry, Mapping):
        raise CapkError(f"{where}: not an object")
    rid = _hex(entry, "rid", where, size=5)
    index = _index(entry, where)
    where = f"{where} {rid.hex().upper()}/{index:02X}"
    modulus = _hex(entry, "modulus", where)
    exponent = _hex(entry, "exponent", where)
    if not modulus or modulus[0] == 0 or not exponent:
        raise CapkError(f"{where}: empty or zero-led modulus/exponent")
    checksum = _hex(entry, "checksum", where, size=20) if entry.get("checksum") else None
    expiry: datetime.date | None = None
    raw_expiry = entry.get("expiry")
    if raw_expiry is not None:
        try:
            expiry = datetime.date.fromisoformat(str(raw_expiry))
        except ValueError:
            raise CapkError(f"{where}: expiry is not an ISO date") from None
    key = CaPublicKey(rid, index, modulus, exponent, checksum, expiry)
    if not key.checksum_ok():
        raise CapkError(f"{where}: check sum does not verify")
    return key


class CapkStore:
    """The terminal's CA public keys and certification revocation list.

    Lookups are by (RID, index). Adding a different key under an (RID, index) already present
    is refused, since a lookup would then be ambiguous; adding the same key again is a no-op.
    """

    def __init__(self, keys: Iterable[CaPublicKey] = ()) -> None:
        """Create a store holding ``keys`` (each check sum verified)."""
        self._keys: dict[tuple[bytes, int], CaPublicKey] = {}
        self._revoked: set[tuple[bytes, int, bytes]] = set()
        for key in keys:
            self.add(key)

    @classmethod
    def default(cls) -> CapkStore:
        """A store with the public EMV test keys shipped in ``terminal/data/capk_test.json``."""
        store = cls()
        store.load_file(DEFAULT_CAPK_FILE)
        return store

    def add(self, key: CaPublicKey) -> None:
        """Add one key.

        Raises:
            CapkError: when its check sum does not verify or another key has its (RID, index).
        """
        if not key.checksum_ok():
            raise CapkError(f"{key!r}: check sum does not verify")
        slot = (key.rid, key.index)
        current = self._keys.get(slot)
        if current is not None and (current.modulus, current.exponent) != (
            key.modulus,
            key.exponent,
        ):
            raise CapkError(f"{key!r}: another key is already stored under this RID and index")
        self._keys[slot] = key

    def revoke(self, rid: bytes, index: int, serial: bytes) -> None:
        """Add (RID, CA index, certificate serial number) to the revocation list (Book 2, 5.3)."""
        if len(rid) != 5 or len(serial) != 3 or not 0 <= index <= 0xFF:
            raise CapkError("revocation entry needs a 5-byte RID, 1-byte index, 3-byte serial")
        self._revoked.add((bytes(rid), index, bytes(serial)))

    def is_revoked(self, rid: bytes, index: int, serial: bytes) -> bool:
        """True when (RID, CA index, certificate serial) is revoked (Book 2, 5.3 step 10)."""
        return (bytes(rid), index, bytes(serial)) in self._revoked

    def get(self, rid: bytes, index: int) -> CaPublicKey | None:
        """The key for (RID, CA Public Key Index), or ``None`` (Book 2, 5.2)."""
        return self._keys.get((bytes(rid), index))

    def __iter__(self) -> Iterator[CaPublicKey]:
        return iter(list(self._keys.values()))

    def __len__(self) -> int:
        return len(self._keys)

    def load_json(self, document: Any, source: str = "CA key file") -> None:
        """Add the keys and revocation entries of a parsed JSON document.

        Raises:
            CapkError: on any malformed entry or failed check sum (nothing is added then).
        """
        if not isinstance(document, Mapping):
            raise CapkError(f"{source}: top level is not an object")
        keys = document.get("keys", [])
        revoked = document.get("revoked", [])
        if not isinstance(keys, list) or not isinstance(revoked, list):
            raise CapkError(f"{source}: 'keys' and 'revoked' must be lists")
        parsed = [key_from_json(entry, f"{source} key #{n}") for n, entry in enumerate(keys)]
        entries: list[tuple[bytes, int, bytes]] = []
        for n, entry in enumerate(revoked):
            where = f"{source} revoked #{n}"
            if not isinstance(entry, Mapping):
                raise CapkError(f"{where}: not an object")
            entries.append(
                (_hex(entry, "rid", where, size=5), _index(entry, where),
                 _hex(entry, "serial", where, size=3))
            )
        trial = CapkStore(self)
        for key in parsed:
            trial.add(key)
        self._keys = trial._keys
        for rid, index, serial in entries:
            self.revoke(rid, index, serial)

    def load_file(self, path: str | Path) -> None:
        """Add the keys of a JSON file (see the module docstring for the layout).

        Raises:
            CapkError: when the file cannot be read or parsed, or any entry is invalid.
        """
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CapkError(f"{path.name}: cannot read CA key file ({type(exc).__name__})") from exc
        self.load_json(document, path.name)
