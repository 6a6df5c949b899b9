"""ODA cost per transaction: the CDA chain of a real M/Chip transcript, and card-side signing.

Figures (medians and p99 over repeated runs, in this process):

* ``oda_cda_chain``: static data + issuer key + ICC key + CDA verification of
  ``mock-msc-offline.json`` (three RSA public operations, four SHA-1);
* ``oda_bare_pow``: the same three ``pow(x, e, n)`` alone, as the baseline;
* ``oda_cda_chain_over_bare_pow``: the ratio, i.e. what parsing and checks add;
* ``sim_sign_cda``: the simulator's card-side CDA signature (1024-bit private op, CRT).

Run: ``.venv/bin/python benchmarks/oda.py``
"""

from __future__ import annotations

import datetime
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from simulator.keys import load_pki, sign_cda
from terminal import CapkStore, tlv
from terminal.oda import (
    IccPublicKey,
    IssuerPublicKey,
    OdaFailure,
    StaticDataCollector,
    recover_icc_public_key,
    recover_issuer_public_key,
    verify_cda_response,
)

TRACE = (Path(__file__).resolve().parents[1] / "tests" / "data" / "conformance" / "emv"
         / "contactless_traces" / "mock-msc-offline.json")


def timings(func: Callable[[], object], runs: int) -> list[float]:
    """Per-call wall times in microseconds."""
    out = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        func()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def p99(values: list[float]) -> float:
    """99th percentile."""
    return sorted(values)[int(len(values) * 0.99) - 1]


def main() -> None:
    """Print the figures, one per line."""
    trace = json.loads(TRACE.read_text())
    apdus = [(bytes.fromhex(a["cmd"]), bytes.fromhex(a["resp"])[:-2]) for a in trace["apdus"]]
    card: dict[int, bytes] = {}
    records = []
    pdol = cdol1 = genac = b""
    for cmd, data in apdus:
        if cmd[1] == 0xA8:
            pdol = tlv.decode(cmd[5 : 5 + cmd[4]])[0].value
            tlv.flatten(tlv.decode(data), card)
        elif cmd[1] == 0xB2:
            records.append((cmd[3] >> 3, cmd[2], data))
            tlv.flatten(tlv.decode(data), card)
        elif cmd[1] == 0xAE:
            cdol1, genac = cmd[5 : 5 + cmd[4]], data
    store = CapkStore.default()
    rid, today, un = bytes.fromhex("A000000004"), datetime.date(2019, 8, 19), bytes.fromhex(
        trace["randoms"])

    def static_data() -> bytes | OdaFailure:
        collector = StaticDataCollector(card[0x94])
        for sfi, number, record in records:
            collector.add_record(sfi, number, record)
        return collector.finish(card.get(0x9F4A), card)

    def chain() -> object:
        icc = recover_icc_public_key(store, rid, card, static_data(), today)
        assert isinstance(icc, IccPublicKey)
        return verify_cda_response(icc, genac, unpredictable_number=un, pdol_data=pdol,
                                   cdol1_data=cdol1)

    # Baseline: the same three RSA public operations with the same keys, nothing else.
    ca = store.get(rid, card[0x8F][0])
    issuer = recover_issuer_public_key(store, rid, card, today)
    icc_key = recover_icc_public_key(store, rid, card, static_data(), today)
    assert ca is not None
    assert isinstance(issuer, IssuerPublicKey)
    assert isinstance(icc_key, IccPublicKey)
    sdad = tlv.flatten(tlv.decode(genac))[0x9F4B]
    ops = [
        (card[0x90], ca.exponent, ca.modulus),
        (card[0x9F46], issuer.key.exponent, issuer.key.modulus),
        (sdad, icc_key.key.exponent, icc_key.key.modulus),
    ]
    ints = [tuple(int.from_bytes(v, "big") for v in op) for op in ops]

    def bare() -> object:
        return [pow(x, e, n) for x, e, n in ints]

    pki = load_pki()
    icc = pki.icc_keys[0]

    def sign() -> object:
        return sign_cda(icc, idn=b"\x01\x02", cid=b"\x40", cryptogram=bytes(8),
                        unpredictable_number=un, transaction_data=cdol1)

    for warm in (chain, bare, sign):
        timings(warm, 50)
    ours, base, signing = timings(chain, 2000), timings(bare, 2000), timings(sign, 500)
    print(f"oda_cda_chain_median: {statistics.median(ours):.1f} us")
    print(f"oda_cda_chain_p99: {p99(ours):.1f} us")
    print(f"oda_bare_pow_median: {statistics.median(base):.1f} us")
    print(f"oda_cda_chain_over_bare_pow: {statistics.median(ours) / statistics.median(base):.2f} x")
    print(f"sim_sign_cda_median: {statistics.median(signing):.1f} us")
    print(f"sim_sign_cda_p99: {p99(signing):.1f} us")


if __name__ == "__main__":
    main()
