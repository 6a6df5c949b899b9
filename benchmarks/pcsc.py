"""APDU round trip through pcscd + vpcd: raw pyscard vs the posgw PC/SC driver's two backends.

Starts its own private pcscd with a vpcd reader (simulator.pcscd) and a virtual ICC in its own
process (``python -m simulator.vpcd``: the card is outside the process measured), then measures,
in the same run, on the same reader, card, protocol (T=1) and C-APDU (READ RECORD, 66-byte
answer), each series on its own shared connection:

* ``raw_scard``: ``smartcard.scard.SCardTransmit`` called directly (blocking) on the benchmark
  thread, outside any event loop: the floor, and the strictest baseline;
* ``raw_cardconnection``: pyscard's high-level ``CardConnection.transmit`` (observers, list
  answer split into data, SW1, SW2), blocking on the benchmark thread;
* ``raw_scard_thread``: ``SCardTransmit`` from asyncio the stock way, ``run_in_executor`` on a
  one-thread pool: what raw pyscard costs once it obeys "nothing blocking in ``async def``";
* ``driver``: ``await reader.transceive()`` of ``pcsc://`` with its default, native backend
  (state checks, watchdog timeout, pcscd's socket protocol written and answered on the loop,
  error mapping, trace check): no thread;
* ``driver_pyscard``: the same through ``pcsc://...?backend=pyscard`` (pyscard on the device
  thread);
* ``executor_hop_noop``: the pyscard backend's device-thread hop alone, on a call that does
  nothing.

Why two backends: nothing blocking may run on the loop, so the pyscard backend pays two thread
wake-ups per exchange (loop to device thread and back), 15-25 us each on the 2-vCPU KVM guest
this was tuned on (idle vCPU halt and wake; ``guest_halt_poll_ns`` is 0 there), 1.4-1.6x raw.
The native backend makes the same system calls as libpcsclite (its write, then a wait for the
answer), with the wait in the event loop instead of a blocked thread.

Series are interleaved in rounds (order rotated each round) after a warm-up, so drift in the
machine's load hits all of them alike. Prints ``name: value unit`` lines: medians, p99, each
driver's ratio of medians to each raw flavour (the baseline is in the name) and its overhead.
Run: ``.venv/bin/python benchmarks/pcsc.py [--n 6000] [--rounds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figures import print_ms  # noqa: E402 - after the sys.path line
from simulator.pcscd import PrivatePcscd  # noqa: E402

CAPDU = bytes.fromhex("00B2010C00")
ANSWER_LENGTH = 66
WARM_UP = 300
pc = time.perf_counter


def start_icc(port: int) -> subprocess.Popen[str]:
    """The virtual ICC in its own process (a real card is outside the process measured)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.vpcd", "--port", str(port),
         "--static", (bytes(ANSWER_LENGTH - 2) + b"\x90\x00").hex()],
        cwd=str(ROOT), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    if process.stdout.readline().strip() != "attached":
        raise SystemExit("virtual ICC did not attach")
    return process



def connect_raw(reader: str) -> tuple[Any, Any, int]:
    """Own context and shared T=1 connection (retried while pcscd powers the card up)."""
    from smartcard import scard

    _, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    deadline = time.monotonic() + 10
    while True:
        hresult, card, protocol = scard.SCardConnect(
            context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1
        )
        if hresult == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if hresult != 0:
        raise SystemExit(f"raw connect failed: 0x{hresult & 0xFFFFFFFF:08X}")
    return context, card, protocol


class Series:
    """The series of one run, each a callable taking a sample count."""

    def __init__(self, reader_name: str, runner: asyncio.Runner) -> None:
        from smartcard.CardConnection import CardConnection
        from smartcard.scard import SCardTransmit
        from smartcard.System import readers

        from drivers import open_device
        from drivers.base import CardReader

        self._runner = runner
        self._transmit = SCardTransmit
        self._context, self._card, self._protocol = connect_raw(reader_name)
        slot = next(r for r in readers() if str(r) == reader_name)
        self._connection = slot.createConnection()
        self._connection.connect(CardConnection.T1_protocol)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raw")

        async def open_driver(backend: str) -> CardReader:
            reader = await open_device(f"pcsc://{reader_name}?share=shared&backend={backend}")
            assert isinstance(reader, CardReader)
            async with asyncio.timeout(10):
                await reader.wait_for_card()
            return reader

        self.reader = runner.run(open_driver("native"))
        self.reader_pyscard = runner.run(open_driver("pyscard"))

    def runs(self) -> dict[str, Callable[[int], list[float]]]:
        """Name -> series runner, in the order of the first round."""
        return {
            "raw_scard": self.raw_scard,
            "raw_cardconnection": self.raw_cardconnection,
            "raw_scard_thread": lambda n: self._runner.run(self.raw_scard_thread(n)),
            "driver": lambda n: self._runner.run(self.driver(self.reader, n)),
            "driver_pyscard": lambda n: self._runner.run(self.driver(self.reader_pyscard, n)),
            "executor_hop_noop": lambda n: self._runner.run(self.hop_noop(n)),
        }

    def raw_scard(self, n: int) -> list[float]:
        """Blocking ``SCardTransmit`` on this thread, no loop running."""
        transmit, card, protocol, command = self._transmit, self._card, self._protocol, list(CAPDU)
        samples = []
        for _ in range(n):
            start = pc()
            hresult, response = transmit(card, protocol, command)
            samples.append(pc() - start)
            assert hresult == 0
            assert len(response) == ANSWER_LENGTH
        return samples

    def raw_cardconnection(self, n: int) -> list[float]:
        """Blocking high-level ``CardConnection.transmit`` on this thread."""
        transmit, command = self._connection.transmit, list(CAPDU)
        samples = []
        for _ in range(n):
            start = pc()
            data, sw1, _sw2 = transmit(command)
            samples.append(pc() - start)
            assert sw1 == 0x90
            assert len(data) == ANSWER_LENGTH - 2
        return samples

    async def raw_scard_thread(self, n: int) -> list[float]:
        """``SCardTransmit`` through ``run_in_executor`` on a one-thread pool."""
        loop = asyncio.get_running_loop()
        pool, transmit, card, protocol = self._pool, self._transmit, self._card, self._protocol
        command = list(CAPDU)
        samples = []
        for _ in range(n):
            start = pc()
            hresult, response = await loop.run_in_executor(pool, transmit, card, protocol, command)
            samples.append(pc() - start)
            assert hresult == 0
            assert len(response) == ANSWER_LENGTH
        return samples

    async def driver(self, reader: Any, n: int) -> list[float]:
        """``await reader.transceive(capdu)`` of a ``pcsc://`` driver."""
        transceive = reader.transceive
        samples = []
        for _ in range(n):
            start = pc()
            response = await transceive(CAPDU)
            samples.append(pc() - start)
            assert len(response) == ANSWER_LENGTH
        return samples

    async def hop_noop(self, n: int) -> list[float]:
        """The driver's device thread running a call that does nothing."""
        run, noop = self.reader_pyscard.executor.run, int
        samples = []
        for _ in range(n):
            start = pc()
            await run(noop)
            samples.append(pc() - start)
        return samples

    def close(self) -> None:
        """Close the driver and the raw connections."""
        from smartcard import scard

        self._runner.run(self.reader.close())
        self._runner.run(self.reader_pyscard.close())
        self._pool.shutdown()
        self._connection.disconnect()
        self._connection.release()
        scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self._context)


def measure(reader_name: str, n: int, rounds: int) -> dict[str, list[float]]:
    """Warm every series up, then run them interleaved, ``n // rounds`` samples per round."""
    with asyncio.Runner() as runner:
        series = Series(reader_name, runner)
        try:
            runs = list(series.runs().items())
            for _, run in runs:
                run(WARM_UP)
            samples: dict[str, list[float]] = {name: [] for name, _ in runs}
            per_round = max(1, n // rounds)
            for index in range(rounds):
                shift = index % len(runs)
                for name, run in runs[shift:] + runs[:shift]:
                    samples[name] += run(per_round)
            return samples
        finally:
            series.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000, help="exchanges per series")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    args = parser.parse_args()
    with PrivatePcscd(["bench"]) as daemon:
        daemon.export_env()  # before pyscard's library first connects
        slot = daemon.readers[0]
        icc = start_icc(slot.port)
        try:
            samples = measure(slot.name, args.n, args.rounds)
        finally:
            icc.terminate()
            icc.wait(10)
    medians = {name: print_ms(name, values, digits=4) for name, values in samples.items()}
    for driver in ("driver", "driver_pyscard"):
        for baseline in ("raw_scard", "raw_cardconnection", "raw_scard_thread"):
            ratio, extra = medians[driver] / medians[baseline], medians[driver] - medians[baseline]
            print(f"{driver}_overhead_ratio_vs_{baseline}: {ratio:.3f} x")
            print(f"{driver}_overhead_vs_{baseline}: {extra * 1e6:.1f} us")
    print(f"samples_per_series: {len(samples['driver'])} exchanges")


if __name__ == "__main__":
    main()
