"""TPE lane benchmark: a payment on a virtual terminal, the driver alone and through the daemon.

Prints ``name: value unit`` lines (medians and p99 in ms) for a whole payment, from the call to
the approved result:

* ``driver_pty_concert_v2``: the ``serial://`` driver on a pty, Concert V2 (8N1);
* ``driver_pty_caisse_ap``: the ``serial://`` driver on a pty, Caisse-AP in Concert frames;
* ``driver_tcp_caisse_ap``: the ``tcp://`` driver, Caisse-AP over IP;

The series are interleaved (one payment of each in turn) so that the shared machine's noise
falls on all of them alike. The daemon side (the till's POST to the final answer on a TPE lane,
on the same virtual terminals) is added beside them by :func:`daemon_series` when the daemon
has TPE lanes; the ratio daemon/driver is printed for each transport it measures.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.figures import print_ms
from drivers import Money
from drivers.serial import create as create_serial
from drivers.smart_terminal import SmartTerminal
from drivers.tcp_backend import create as create_tcp
from simulator.tpe import TerminalBrain, VirtualSerialTpe, VirtualTcpTpe

N = 150
EUR = "978"

Payer = Callable[[int], Awaitable[None]]


def _payer(term: SmartTerminal) -> Payer:
    async def pay(i: int) -> None:
        result = await term.pay(Money(1000 + 100 * i, EUR), reference=f"B{i}")
        if not result.approved:
            raise RuntimeError(f"benchmark payment {i} not approved: {result.status}")
    return pay


async def driver_series(n: int = N) -> dict[str, list[float]]:
    """Interleaved payments through the driver alone on the three virtual terminals."""
    concert = VirtualSerialTpe(TerminalBrain(protocol="concert-v2"), seven_bit=False)
    caisse = VirtualSerialTpe(TerminalBrain(protocol="caisse-ap"), seven_bit=False)
    tcp = VirtualTcpTpe()
    concert_path, caisse_path = await concert.start(), await caisse.start()
    await tcp.start()
    opts = "framing=8N1&keepalive=0"
    terms = {
        "driver_pty_concert_v2": create_serial(f"serial://{concert_path}?{opts}"),
        "driver_pty_caisse_ap": create_serial(
            f"serial://{caisse_path}?protocol=caisse-ap&{opts}"),
        "driver_tcp_caisse_ap": create_tcp(f"tcp://127.0.0.1:{tcp.port}?keepalive=0"),
    }
    samples: dict[str, list[float]] = {name: [] for name in terms}
    try:
        for term in terms.values():
            await term.open()
        payers = {name: _payer(term) for name, term in terms.items()}
        for i in range(n):
            for name, pay in payers.items():
                t0 = time.perf_counter()
                await pay(i)
                samples[name].append(time.perf_counter() - t0)
    finally:
        for term in terms.values():
            await term.close()
        for tpe in (concert, caisse, tcp):
            await tpe.stop()
    return samples


def main() -> None:
    """Run the series and print their figures."""
    samples = asyncio.run(driver_series())
    for name, series in samples.items():
        print_ms(name, series)
    print(f"payments_per_series: {N} count")


if __name__ == "__main__":
    main()
