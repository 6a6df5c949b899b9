"""Generate the simulator's test PKI, deterministically from a seed, into simulator/data/keys/.

Run once (the output is committed as test data)::

    .venv/bin/python -m simulator.gen_keys [--seed posgw-test-pki-1] [--out simulator/data/keys]

The same seed always gives the same files: primes come from a SHA-256 counter-mode byte
stream seeded with the seed string, tested with Miller-Rabin using bases drawn from the same
stream. Files written:

* ``ca.json``: our test CAs (RID A000000003/A000000004/A000000025, index F0, 1152-bit, e=3);
* ``capk_sim.json``: their public halves in the :mod:`terminal.capk` file layout;
* ``issuers.json``: issuer key pairs (1024-bit) with CA-signed certificates, one per CA, plus
  ``visa_expired`` whose certificate expired in December 2020;
* ``icc.json``: a pool of ICC key pairs (1024-bit, one with e=65537) and ICC PIN encipherment
  key pairs (768-bit), certified at run time by :func:`simulator.keys.icc_certificate` since the
  ICC certificate binds each card's PAN and static data.

Test material only, never for live use.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from simulator.keys import DEFAULT_KEYS_DIR, RsaKeyPair, issuer_certificate

__all__ = ["DeterministicStream", "generate", "generate_rsa", "main"]

DEFAULT_SEED = "posgw-test-pki-1"
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % k for k in range(2, int(p**0.5) + 1))]

#: (name, RID, issuer identifier, expiry MMYY, serial) of each issuer certificate.
ISSUERS = [
    ("visa", "A000000003", "476173", "1249", "000101"),
    ("visa_expired", "A000000003", "476173", "1220", "000102"),
    ("mastercard", "A000000004", "541333", "1249", "000201"),
    ("amex", "A000000025", "374245", "1249", "000301"),
]
CA_RIDS = ["A000000003", "A000000004", "A000000025"]
CA_INDEX = 0xF0


class DeterministicStream:
    """SHA-256 in counter mode over a seed: reproducible bytes for test key generation."""

    def __init__(self, seed: str) -> None:
        """Start the stream for ``seed``."""
        self._seed = seed.encode()
        self._counter = 0
        self._buffer = b""

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes."""
        while len(self._buffer) < size:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def below(self, bound: int) -> int:
        """A number in [2, bound - 2] (for Miller-Rabin bases)."""
        size = (bound.bit_length() + 7) // 8 + 8
        return 2 + int.from_bytes(self.read(size), "big") % (bound - 3)


def _probable_prime(n: int, stream: DeterministicStream, rounds: int = 40) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        x = pow(stream.below(n), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, e: int, stream: DeterministicStream) -> int:
    while True:
        candidate = int.from_bytes(stream.read(bits // 8), "big")
        candidate |= (3 << (bits - 2)) | 1  # top two bits set: p*q has exactly 2*bits bits
        if (candidate - 1) % e == 0:
            continue
        if _probable_prime(candidate, stream):
            return candidate


def generate_rsa(bits: int, e: int, stream: DeterministicStream) -> RsaKeyPair:
    """An RSA key pair of exactly ``bits`` bits with public exponent ``e``, from ``stream``."""
    while True:
        p = _prime(bits // 2, e, stream)
        q = _prime(bits // 2, e, stream)
        if p == q:
            continue
        n = p * q
        if n.bit_length() != bits:
            continue
        phi = (p - 1) * (q - 1)
        d = pow(e, -1, phi)
        if p < q:
            p, q = q, p
        return RsaKeyPair(n=n, e=e, d=d, p=p, q=q)


def generate(seed: str = DEFAULT_SEED) -> dict[str, Any]:
    """Build the four JSON documents (name → content) for ``seed``."""
    stream = DeterministicStream(seed)
    cas: dict[str, RsaKeyPair] = {rid: generate_rsa(1152, 3, stream) for rid in CA_RIDS}
    capk_keys = []
    for rid, key in cas.items():
        data = bytes.fromhex(rid) + bytes((CA_INDEX,)) + key.modulus + key.exponent
        capk_keys.append({
            "rid": rid, "index": f"{CA_INDEX:02X}", "modulus": key.modulus.hex().upper(),
            "exponent": key.exponent.hex().upper(),
            "checksum": hashlib.sha1(data).hexdigest().upper(),  # noqa: S324 - EMV check sum
            "expiry": None,
        })
    issuers = []
    issuer_keys: dict[str, RsaKeyPair] = {}
    for name, rid, issuer_id, expiry, serial in ISSUERS:
        # The expired variant reuses the live issuer's key with an older certificate.
        base = name.removesuffix("_expired")
        key = issuer_keys.get(base) or generate_rsa(1024, 3, stream)
        issuer_keys[base] = key
        cert = issuer_certificate(
            cas[rid], key.public(), issuer_id, bytes.fromhex(expiry), bytes.fromhex(serial)
        )
        issuers.append({
            "name": name, "rid": rid, "ca_index": f"{CA_INDEX:02X}", "issuer_id": issuer_id,
            "key": key.to_json(),
            "certificate": {
                "90": cert.certificate.hex().upper(), "92": cert.remainder.hex().upper(),
                "9F32": cert.exponent.hex().upper(), "expiry": expiry, "serial": serial,
            },
        })
    icc_keys = [generate_rsa(1024, 3, stream) for _ in range(3)]
    icc_keys.append(generate_rsa(1024, 65537, stream))
    pin_keys = [generate_rsa(768, 3, stream) for _ in range(2)]
    note = f"Generated by simulator/gen_keys.py from seed {seed!r}. TEST MATERIAL, never live."
    return {
        "ca.json": {
            "_comment": note,
            "cas": [{"rid": rid, "index": f"{CA_INDEX:02X}", "key": key.to_json()}
                    for rid, key in cas.items()],
        },
        "capk_sim.json": {"_comment": note, "keys": capk_keys, "revoked": []},
        "issuers.json": {"_comment": note, "issuers": issuers},
        "icc.json": {
            "_comment": note,
            "icc_keys": [k.to_json() for k in icc_keys],
            "pin_keys": [k.to_json() for k in pin_keys],
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: write the key files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_KEYS_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, document in generate(args.seed).items():
        (args.out / name).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
