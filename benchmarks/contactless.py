"""Contactless benchmark: kernel CPU time per replayed M/Chip CDA transcript, card-in-field time.

Run: ``.venv/bin/python benchmarks/contactless.py``. Prints one figure per line,
``name: value unit``:

* ``kernel_cpu_<transcript>_median`` / ``_p99``: process CPU time of one whole replayed
  transaction (Entry Point + kernel 2 + CDA verification) on a :class:`ReplayChannel`
  (target <= 1 ms median);
* ``transport_only_median`` and ``kernel_vs_transport_ratio``: the same recorded commands sent
  through :func:`terminal.transport.exchange` alone, as the in-process baseline;
* ``card_in_field_mchip_cda_median``: wall time from the first C-APDU to the response that
  lets the card go (``card_removable_at``), M/Chip CDA virtual card at 15 ms per APDU (target
  <= 200 ms); ``apdus_in_field_mchip_cda`` the exchanges up to that point (the virtual card's
  AFL starts with ``08010100``, read because the kernel does not offer mag-stripe mode, Book
  C-2 S3.31); ``transaction_wall_mchip_cda_median`` the whole call.
"""

from __future__ import annotations

import asyncio
import datetime
import statistics
import time
from pathlib import Path

import simulator
from simulator.card.engine import VirtualCard
from simulator.card.field import CardInField
from terminal import Environment, TerminalConfig, TransactionRequest, run_contactless_transaction
from terminal.contactless.replay import ReplayChannel, load_transcript, replay_setup
from terminal.transport import exchange

TRACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "conformance" / "emv" / \
    "contactless_traces"
MCHIP_CDA = ("mock-msc-offline.json", "mock-msc-offline-2.json", "mock-msc-online.json")
RUNS = 400


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def kernel_cpu(loop: asyncio.AbstractEventLoop, name: str) -> tuple[list[float], list[float]]:
    """CPU ms per replayed transaction, and per bare transport replay of the same commands."""
    setup = replay_setup(load_transcript(TRACES / name))
    kernel: list[float] = []
    transport: list[float] = []

    async def one() -> None:
        channel = ReplayChannel(setup.apdus)
        await run_contactless_transaction(channel, config=setup.config, request=setup.request,
                                          env=setup.env, kernel2=setup.kernel2)

    async def bare() -> None:
        channel = ReplayChannel(setup.apdus)
        for cmd, _ in setup.apdus:
            await exchange(channel, cmd)

    for _ in range(20):
        loop.run_until_complete(one())
    for _ in range(RUNS):
        start = time.process_time_ns()
        loop.run_until_complete(one())
        kernel.append((time.process_time_ns() - start) / 1e6)
        start = time.process_time_ns()
        loop.run_until_complete(bare())
        transport.append((time.process_time_ns() - start) / 1e6)
    return kernel, transport


class _Timed:
    """A channel wrapper noting when each exchange started and ended."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.marks: list[tuple[float, float]] = []

    async def transceive(self, capdu: bytes) -> bytes:
        start = time.perf_counter()
        rapdu: bytes = await self.inner.transceive(capdu)  # type: ignore[attr-defined]
        self.marks.append((start, time.perf_counter()))
        return rapdu


def card_in_field(
    loop: asyncio.AbstractEventLoop, runs: int = 8
) -> tuple[list[float], list[float], int]:
    """Wall ms the M/Chip CDA virtual card must stay in the field, per whole call, and the
    number of exchanges the card is needed for."""
    keys = str(Path(simulator.__file__).resolve().parent / "data" / "keys" / "capk_sim.json")
    base = TerminalConfig.default()
    config = base.model_copy(update={"ca_keys": [keys], "aids": [
        a.model_copy(update={"reader_ctls_floor_limit": 5000}) for a in base.aids]})
    env = Environment.fixed(datetime.datetime(2026, 11, 25, 12, 0), bytes.fromhex("12345678"))
    in_field: list[float] = []
    whole: list[float] = []
    apdus = 0
    for _ in range(runs):
        channel = _Timed(CardInField(VirtualCard.from_profile("ctls_mc_cda_offline"), 0.015))
        start = time.perf_counter()
        result = loop.run_until_complete(run_contactless_transaction(
            channel, config=config, request=TransactionRequest(amount=1250), env=env))
        whole.append((time.perf_counter() - start) * 1e3)
        if result.outcome.name != "APPROVED" or not result.oda_verified:
            raise SystemExit(f"unexpected outcome {result.outcome.name}")
        last = result.card_removable_at if result.card_removable_at is not None else -1
        in_field.append((channel.marks[last][1] - channel.marks[0][0]) * 1e3)
        apdus = len(channel.marks[: last + 1]) if last >= 0 else len(channel.marks)
    return in_field, whole, apdus


def main() -> None:
    """Run the benchmark and print the figures."""
    loop = asyncio.new_event_loop()
    try:
        all_kernel: list[float] = []
        all_transport: list[float] = []
        for name in MCHIP_CDA:
            kernel, transport = kernel_cpu(loop, name)
            label = name.removesuffix(".json").replace("-", "_")
            print(f"kernel_cpu_{label}_median: {statistics.median(kernel):.3f} ms")
            print(f"kernel_cpu_{label}_p99: {_p99(kernel):.3f} ms")
            all_kernel += kernel
            all_transport += transport
        k_med, t_med = statistics.median(all_kernel), statistics.median(all_transport)
        print(f"kernel_cpu_mchip_cda_median: {k_med:.3f} ms")
        print(f"transport_only_median: {t_med:.3f} ms")
        print(f"kernel_vs_transport_ratio: {k_med / t_med:.2f} x")
        in_field, whole, apdus = card_in_field(loop)
        print(f"card_in_field_mchip_cda_median: {statistics.median(in_field):.1f} ms")
        print(f"apdus_in_field_mchip_cda: {apdus} count")
        print(f"transaction_wall_mchip_cda_median: {statistics.median(whole):.1f} ms")
    finally:
        loop.close()


if __name__ == "__main__":
    main()
