"""TLV decode speed: posgw's decoder against pyemv's ``tlv.decode`` on the same inputs.

Inputs: the data field of every R-APDU in the conformance transcripts (tests/data/conformance).
Prints, one figure per line: median decode time per response for each decoder (on the responses
both accept), their ratio, and how many responses each accepts (pyemv rejects 00/FF padding).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pyemv import tlv as pyemv_tlv

from terminal import decode

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "tests" / "data" / "conformance" / "emv"
ROUNDS = 7
LOOPS = 200


def responses() -> list[bytes]:
    """Every R-APDU data field of the transcripts, with its status word removed."""
    out = []
    for path in sorted((CONFORMANCE / "contactless_traces").glob("*.json")):
        for apdu in json.loads(path.read_text())["apdus"]:
            raw = bytes.fromhex(apdu["resp"])
            if len(raw) > 2:
                out.append(raw[:-2])
    # The synthetic SDA card of oda_vectors.json: FCI, GPO response and records (no SW there).
    for vector in json.loads((CONFORMANCE / "oda_vectors.json").read_text()):
        inputs = vector["inputs"]
        if "records" in inputs:
            out.append(bytes.fromhex(inputs["fci"]))
            out.append(bytes.fromhex(inputs["gpo_response"]))
            out.extend(bytes.fromhex(r) for r in inputs["records"].values())
    return out


def accepts(fn: Callable[[bytes], object], data: bytes) -> bool:
    try:
        fn(data)
    except Exception:  # noqa: BLE001 - counting rejections of a foreign decoder
        return False
    return True


def per_call_ns(fn: Callable[[bytes], object], data: bytes) -> float:
    """Best-of-rounds mean time of one call, in nanoseconds."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(LOOPS):
            fn(data)
        best = min(best, (time.perf_counter_ns() - start) / LOOPS)
    return best


def main() -> int:
    inputs = responses()
    if not inputs:
        print("no conformance transcripts found", file=sys.stderr)
        return 1
    ours_ok = [d for d in inputs if accepts(decode, d)]
    theirs_ok = [d for d in inputs if accepts(pyemv_tlv.decode, d)]
    both = [d for d in inputs if d in theirs_ok and d in ours_ok]
    ours, theirs = [], []
    for data in both:  # interleaved, so machine noise hits both alike
        ours.append(per_call_ns(decode, data))
        theirs.append(per_call_ns(pyemv_tlv.decode, data))
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(f"tlv_responses_total: {len(inputs)} responses")
    print(f"tlv_accepted_posgw: {len(ours_ok)} responses")
    print(f"tlv_accepted_pyemv: {len(theirs_ok)} responses")
    print(f"tlv_decode_median_posgw: {statistics.median(ours) / 1000:.2f} us")
    print(f"tlv_decode_median_pyemv: {statistics.median(theirs) / 1000:.2f} us")
    print(f"tlv_decode_p99_posgw: {_p99(ours) / 1000:.2f} us")
    print(f"tlv_decode_p99_pyemv: {_p99(theirs) / 1000:.2f} us")
    print(f"tlv_decode_ratio_posgw_over_pyemv: {statistics.median(ratios):.3f} x")
    return 0


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main())
