"""The day's figures on a big journal: what one status-page refresh costs, old and new way.

A journal of ``--days`` days of ``--per-day`` payments each (online sales with their events,
some offline, some refunded), then, side by side in the same process: the day's queries the page
ran on every refresh before the money was kept in memory (``day_payments`` of today,
``auth_durations_ms``, ``offline_exposure``, ``forward_declined``, ``last_day_close``) and the
whole ``day_summary`` built from them; what the page runs now (``money_summary`` of
``Journal.money.read()``, no query); and a baseline of one indexed query through the journal's
worker (``offline_exposure``, the ``payments_by_state`` index). Prints ``name: value unit``
lines (medians and p99 over ``--rounds``).

    .venv/bin/python benchmarks/day.py --days 30 --per-day 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from gateway.day.summary import day_summary, money_summary
from gateway.journal import Journal, VaultKey

DAY_MS = 86_400_000


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


async def _fill(journal: Journal, clock: Clock, days: int, per_day: int) -> None:
    for day in range(days):
        clock.now = 1_700_000_000.0 + day * 86_400
        for i in range(per_day):
            clock.now += 30
            sale = await journal.create_sale(lane=str(i % 16 + 1), amount=500 + i,
                                             currency="EUR", actor="bench")  # fmt: skip
            await journal.card_read(sale.id, masked_pan="476173******0010",
                                    aid="A0000000031010", actor="bench")  # fmt: skip
            if i % 20 == 0:
                await journal.store_for_forwarding(sale.id, request=b"r", response_code="Y3",
                                                   actor="bench")  # fmt: skip
                continue
            await journal.request_auth(sale.id, actor="bench")
            clock.now += 0.4
            await journal.approve(sale.id, auth_code="123456", actor="acquirer")
            await journal.complete(sale.id, actor="bench")


def _figures(name: str, samples: list[float]) -> None:
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(len(samples) * 0.99))]
    print(f"{name}.median: {statistics.median(samples) * 1000:.2f} ms")
    print(f"{name}.p99: {p99 * 1000:.2f} ms")


async def main(days: int, per_day: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock(1_700_000_000.0)
        path = Path(tmp) / "journal.db"
        async with Journal.open(path, vault_key=VaultKey(os.urandom(32)), clock=clock) as journal:
            start = time.perf_counter()
            await _fill(journal, clock, days, per_day)
            print(f"fill.payments: {days * per_day} payments")
            print(f"fill.time: {time.perf_counter() - start:.1f} s")
            since = round(clock.now * 1000) - DAY_MS
            base: list[float] = []
            page: list[float] = []
            memory: list[float] = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                money_summary(journal.money.read())
                memory.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await journal.offline_exposure()
                base.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                payments = await journal.day_payments(since, round(clock.now * 1000) + 1)
                day_summary(payments, auth_ms=await journal.auth_durations_ms(since),
                            declined=await journal.forward_declined())  # fmt: skip
                await journal.offline_exposure()
                await journal.last_day_close()
                page.append(time.perf_counter() - t0)
            _figures("baseline.one_query", base)
            _figures("page.day_figures", page)
            ratio = statistics.median(page) / statistics.median(base)
            print(f"page.day_figures_vs_one_query: {ratio:.1f} x")
            _figures("page.day_money_from_memory", memory)
            ratio = statistics.median(memory) / statistics.median(base)
            print(f"page.day_money_from_memory_vs_one_query: {ratio:.3f} x")
            print(f"page.day_payments: {len(payments)} rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.days, args.per_day, args.rounds))
