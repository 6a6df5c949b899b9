"""APDU round trip through pyscard + pcscd + vpcd: raw pyscard vs the posgw PC/SC driver.

Starts its own private pcscd with a vpcd reader (simulator.pcscd) and a virtual ICC in its own
process (``python -m simulator.vpcd``: the card is outside the process measured), then
measures, in the same run:

* raw: ``SCardTransmit`` called directly (blocking) on the benchmark thread;
* driver: ``await reader.transceive()`` of ``pcsc://`` (executor hop, state checks, timeout).

Prints ``name: value unit`` lines: medians, p99, and the driver/raw ratio of medians.
Run: ``.venv/bin/python benchmarks/pcsc.py [--n 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulator.pcscd import PrivatePcscd  # noqa: E402 - after the sys.path line

CAPDU = bytes.fromhex("00B2010C00")


def start_icc(port: int) -> subprocess.Popen[str]:
    """The virtual ICC in its own process (a real card is outside the process measured)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.vpcd", "--port", str(port),
         "--static", (bytes(64) + b"\x90\x00").hex()],
        cwd=str(ROOT), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    if process.stdout.readline().strip() != "attached":
        raise SystemExit("virtual ICC did not attach")
    return process


def stats(name: str, samples: list[float]) -> float:
    samples = sorted(samples)
    median = statistics.median(samples)
    p99 = samples[max(0, int(len(samples) * 0.99) - 1)]
    print(f"{name}_median: {median * 1e3:.4f} ms")
    print(f"{name}_p99: {p99 * 1e3:.4f} ms")
    return median


def bench_raw(reader: str, n: int) -> list[float]:
    from smartcard import scard

    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    deadline = time.monotonic() + 10
    while True:
        hresult, card, protocol = scard.SCardConnect(
            context, reader, scard.SCARD_SHARE_EXCLUSIVE, scard.SCARD_PROTOCOL_T1
        )
        if hresult == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if hresult != 0:
        raise SystemExit(f"raw connect failed: 0x{hresult & 0xFFFFFFFF:08X}")
    samples = []
    command = list(CAPDU)
    for _ in range(n):
        start = time.perf_counter()
        hresult, response = scard.SCardTransmit(card, protocol, command)
        samples.append(time.perf_counter() - start)
        assert hresult == 0
        assert len(response) == 66
    scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(context)
    return samples


async def bench_driver(reader_name: str, n: int) -> list[float]:
    from drivers import open_device

    samples = []
    async with await open_device(f"pcsc://{reader_name}") as reader:
        async with asyncio.timeout(10):
            await reader.wait_for_card()
        for _ in range(n):
            start = time.perf_counter()
            response = await reader.transceive(CAPDU)
            samples.append(time.perf_counter() - start)
            assert len(response) == 66
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="exchanges per series")
    args = parser.parse_args()
    with PrivatePcscd(["bench"]) as daemon:
        daemon.export_env()  # before pyscard's library first connects
        slot = daemon.readers[0]
        icc = start_icc(slot.port)
        try:
            bench_raw(slot.name, 200)  # warm-up
            raw = bench_raw(slot.name, args.n)
            driver = asyncio.run(bench_driver(slot.name, args.n))
            raw_again = bench_raw(slot.name, args.n)  # drift check: raw before and after
        finally:
            icc.terminate()
            icc.wait(10)
        raw_median = stats("raw_pyscard", raw + raw_again)
        driver_median = stats("driver", driver)
        print(f"driver_overhead_ratio: {driver_median / raw_median:.3f} x")
        print(f"driver_overhead_median: {(driver_median - raw_median) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
