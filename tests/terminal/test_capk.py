"""CA public key store: check sums, duplicates, revocation, files (EMV 4.4 Book 2, 11.2)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from terminal.capk import DEFAULT_CAPK_FILE, CapkError, CapkStore, CaPublicKey, key_from_json
from tests.conftest import load_conformance

VISA = bytes.fromhex("A000000003")
MASTERCARD = bytes.fromhex("A000000004")


def _conformance_key(entry: dict[str, str]) -> CaPublicKey:
    return CaPublicKey(
        rid=bytes.fromhex(entry["rid"]),
        index=int(entry["index"], 16),
        modulus=bytes.fromhex(entry["modulus"]),
        exponent=bytes.fromhex(entry["exponent"]),
        checksum=bytes.fromhex(entry["sha1"]),
    )


@pytest.mark.parametrize("name", ["capk_emv_utils.json", "capk_proxmark3.json"])
def test_every_conformance_key_checksum_verifies(name: str) -> None:
    keys = [_conformance_key(e) for e in load_conformance("emv", name)["keys"]]
    assert len(keys) >= 30
    for key in keys:
        assert key.checksum_ok(), key
        assert key.compute_checksum() == key.checksum


def test_a_flipped_modulus_bit_breaks_the_checksum() -> None:
    entry = load_conformance("emv", "capk_emv_utils.json")["keys"][0]
    key = _conformance_key(entry)
    bad = CaPublicKey(key.rid, key.index, bytes([key.modulus[0] ^ 1]) + key.modulus[1:],
                      key.exponent, key.checksum)
    assert not bad.checksum_ok()
    with pytest.raises(CapkError, match="check sum"):
        CapkStore([bad])


def test_duplicate_rid_index_with_other_modulus_is_refused() -> None:
    entries = [e for e in load_conformance("emv", "capk_proxmark3.json")["keys"]
               if e["rid"] == "A000000004" and e["index"] == "05"]
    assert len(entries) == 2
    first, second = (_conformance_key(e) for e in entries)
    assert first.modulus != second.modulus
    assert first.checksum_ok()
    assert second.checksum_ok()
    store = CapkStore([first])
    store.add(first)  # the same key again is harmless
    with pytest.raises(CapkError, match="already stored"):
        store.add(second)
    assert store.get(MASTERCARD, 5) == first


def test_default_store_ships_the_test_keys() -> None:
    store = CapkStore.default()
    wanted = {(VISA, 0x92), (VISA, 0x94), (VISA, 0x95), (VISA, 0x99), (MASTERCARD, 0xEF),
              (MASTERCARD, 0xF1), (MASTERCARD, 0xF3), (MASTERCARD, 0xF8), (MASTERCARD, 0xFA)}
    assert wanted <= {(k.rid, k.index) for k in store}
    assert any(k.rid == bytes.fromhex("A000000025") for k in store)
    assert store.get(VISA, 0x01) is None  # live keys are not shipped
    conformance = {(e["rid"], e["index"]): e["modulus"]
                   for e in load_conformance("emv", "capk_emv_utils.json")["keys"]}
    for key in store:
        assert conformance[(key.rid.hex().upper(), f"{key.index:02X}")] == key.modulus.hex().upper()


def test_load_file_with_extra_keys_and_revocations(tmp_path: Path) -> None:
    entry = load_conformance("emv", "capk_emv_utils.json")["keys"][0]
    doc = {
        "keys": [{"rid": entry["rid"], "index": entry["index"], "modulus": entry["modulus"],
                  "exponent": entry["exponent"], "checksum": entry["sha1"],
                  "expiry": "2009-12-31"}],
        "revoked": [{"rid": "A000000003", "index": "01", "serial": "0042B3"}],
    }
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(doc))
    store = CapkStore.default()
    before = len(store)
    store.load_file(path)
    assert len(store) == before + 1
    key = store.get(VISA, 1)
    assert key is not None
    assert key.expiry == datetime.date(2009, 12, 31)
    assert key.expired(datetime.date(2010, 1, 1))
    assert not key.expired(datetime.date(2009, 12, 31))
    assert store.is_revoked(VISA, 1, bytes.fromhex("0042B3"))
    assert not store.is_revoked(VISA, 1, bytes.fromhex("0042B4"))
    assert "0042" not in repr(key)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.update(checksum="00" * 20), "check sum"),
        (lambda e: e.update(modulus="zz"), "not hex"),
        (lambda e: e.pop("rid"), "rid"),
        (lambda e: e.update(index="0101"), "index"),
        (lambda e: e.update(expiry="31/12/2030"), "ISO date"),
    ],
)
def test_malformed_entries_raise_capk_error(
    mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    entry = load_conformance("emv", "capk_emv_utils.json")["keys"][4]
    doc: dict[str, Any] = {
        "rid": entry["rid"], "index": entry["index"], "modulus": entry["modulus"],
        "exponent": entry["exponent"], "checksum": entry["sha1"],
    }
    mutate(doc)
    with pytest.raises(CapkError, match=message):
        key_from_json(doc)


def test_a_bad_file_adds_nothing(tmp_path: Path) -> None:
    store = CapkStore()
    good = json.loads(DEFAULT_CAPK_FILE.read_text())["keys"][0]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"keys": [good, {"rid": "A0"}]}))
    with pytest.raises(CapkError):
        store.load_file(path)
    assert len(store) == 0
    path.write_text("{not json")
    with pytest.raises(CapkError, match="cannot read"):
        store.load_file(path)
    with pytest.raises(CapkError, match="cannot read"):
        store.load_file(tmp_path / "missing.json")
