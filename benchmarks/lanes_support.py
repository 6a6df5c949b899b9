"""The parts of ``benchmarks/lanes.py`` that are not the load: the lane mix, the daemon's
configuration, the kernel's CPU floor for the same cards, and the million-payment journal."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.daemon.config import DaemonConfig, parse_config
from gateway.security import CredentialStore, new_token
from simulator.cli_pay import FIXED_TIME
from simulator.keys import DEFAULT_KEYS_DIR
from terminal.environment import Environment

__all__ = [
    "MIX",
    "LaneKind",
    "NextCardholder",
    "bench_till",
    "build_big_journal",
    "daemon_config",
    "fixed_env",
    "floor_during",
    "kernel_cpu_per_payment",
    "weighted",
]


@dataclass(frozen=True, slots=True)
class LaneKind:
    """One kind of lane: its card, how it is presented, the till's amount, the end state."""

    name: str
    profile: str
    contactless: bool
    amount: int
    expected: frozenset[str]


_ONLINE = LaneKind("contact_online", "visa_credit", False, 1250, frozenset({"COMPLETED"}))
_OFFLINE = LaneKind(
    "contact_offline", "visa_credit", False, 500, frozenset({"STORED_FOR_FORWARDING", "FORWARDED"})
)
_TAP = LaneKind("contactless", "ctls_mc_cda_online", True, 1250, frozenset({"COMPLETED"}))
#: Lane N (1-based) is ``MIX[N - 1]``: 6 contact online, 5 contact offline, 5 contactless.
MIX: tuple[LaneKind, ...] = (_ONLINE,) * 6 + (_OFFLINE,) * 5 + (_TAP,) * 5


class NextCardholder:
    """A slot's card that is a fresh card of ``profile`` at each payment (each SELECT of the
    PSE or PPSE): the card's offline counters never push the next cardholder online.

    The profile is read and personalised once; each new card is a new card object over the
    same personalised data (fresh ATC, counters and PIN tries), so no file is read per payment
    in the daemon's process (that would be the benchmark's cost, not the daemon's).
    """

    def __init__(self, profile: str) -> None:
        from simulator.card import VirtualCard

        self._make = VirtualCard
        self._first = VirtualCard.from_profile(profile)
        self._card = self._new()

    def _new(self) -> Any:
        return self._make(self._first.profile, list(self._first.applications))

    def process(self, capdu: bytes) -> bytes:
        """Answer one C-APDU (a new card at ``SELECT 1PAY.SYS.DDF01`` / ``2PAY.SYS.DDF01``)."""
        if capdu[1:2] == b"\xa4" and capdu[5:9] in (b"1PAY", b"2PAY"):
            self._card = self._new()
        return bytes(self._card.process(capdu))


def fixed_env() -> Environment:
    """The kernel's clock at the simulator's fixed time (inside every test certificate)."""
    return Environment(lambda: FIXED_TIME, lambda: os.urandom(4), lambda: 99)


def daemon_config(
    workdir: Path,
    acquirer_url: str,
    *,
    slots: bool,
    inline_cards: bool = False,
    event_loop: str = "asyncio",
) -> DaemonConfig:
    """The daemon's configuration: the :data:`MIX` lanes (``slots``) or one idle lane; with
    ``inline_cards`` the virtual cards answer on the event loop (``sim://...?inline=1``);
    ``event_loop`` as the configuration file's."""
    query = "?inline=1" if inline_cards else ""
    key = workdir / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    count = len(MIX) if slots else 1
    return parse_config(
        {
            "shop": "bench",
            "event_loop": event_loop,
            # loopback: plain HTTP and an open status page are allowed (docs/security.md)
            "http": {"host": "127.0.0.1", "port": 0, "tls": False, "status_login": False},
            "journal": {"path": str(workdir / "journal.db")},
            "vault": {"key_file": str(key)},
            "acquirer": {"url": acquirer_url, "merchant_id": "BENCH001",
                         "terminal_id": "LANE0001", "total_timeout": 10.0},
            "terminal": {"extra_ca_keys": [str(DEFAULT_KEYS_DIR / "capk_sim.json")]},
            "lanes": [{"id": i, "reader": f"sim://bench-lanes-{i}{query}", "interface": "auto",
                       "pin_pad": "none"} for i in range(1, count + 1)],
        },
        source="bench",
    )  # fmt: skip


def bench_till(journal: Path) -> dict[str, str]:
    """Register the bench till in the journal at ``journal`` (as ``posgw till add`` does); the
    headers its requests carry."""
    token = new_token()
    store = CredentialStore.open(journal)
    try:
        store.add_till("bench", token=token, actor="bench")
    finally:
        store.close()
    return {"Authorization": f"Bearer {token}"}


# -- the kernel's floor ------------------------------------------------------------------------


class _InProcessCard:
    """The virtual card as the kernel's channel, with no transport at all."""

    def __init__(self, card: Any) -> None:
        self.card = card
        self.cpu = 0.0  # the card's own CPU seconds (what the daemon runs on reader threads)

    async def transceive(self, capdu: bytes) -> bytes:
        start = time.thread_time()
        try:
            return bytes(self.card.process(capdu))
        finally:
            self.cpu += time.thread_time() - start


class _Floor:
    """The kernel's entry points as the daemon's reader adapter calls them, on in-process cards,
    one transaction at a time, its CPU measured with the issuer's taken out; without the APDU
    trace, as the daemon runs them, unless ``trace``."""

    def __init__(self, trace: bool = False) -> None:
        self.trace = trace
        from gateway.daemon.config import KernelConfig
        from gateway.daemon.daemon import kernel_config
        from simulator.issuer import IssuerHost
        from terminal import OnlineResponse
        from terminal.tlv import encode

        self._response, self._encode = OnlineResponse, encode
        self.terminal = kernel_config(
            KernelConfig(extra_ca_keys=[DEFAULT_KEYS_DIR / "capk_sim.json"])
        ).model_copy(update={"pin_pad_present": False})
        self.capk = self.terminal.capk_store()
        self.issuer = IssuerHost()
        self.issuer_cpu = 0.0

    async def _online(self, request: Any) -> Any:
        start = time.thread_time()
        pan = self._encode(0x5A, bytes.fromhex(request.pan or ""))
        answer = self.issuer.authorise(request.icc_data + pan)
        self.issuer_cpu += time.thread_time() - start
        if answer is None:
            return None
        return self._response(approved=answer.approved, authorisation_response_code=answer.arc,
                              issuer_authentication_data=answer.issuer_auth_data or None,
                              scripts=answer.scripts or None)  # fmt: skip

    async def one(self, kind: LaneKind) -> tuple[float, float]:
        """One transaction of ``kind``: its CPU seconds (the issuer's removed) and the card's."""
        from simulator.card import VirtualCard
        from terminal import (
            Decision,
            TransactionRequest,
            run_contact_transaction,
            run_contactless_payment,
        )

        async def removed() -> None:
            return None

        card = _InProcessCard(VirtualCard.from_profile(kind.profile))
        self.issuer_cpu = 0.0
        start = time.thread_time()
        request = TransactionRequest(amount=kind.amount, currency_code=978, currency_exponent=2)
        if kind.contactless:  # the kernel's entry points, as the daemon's reader adapter calls them
            result = await run_contactless_payment(
                card, config=self.terminal, request=request, env=fixed_env(),
                online=self._online, pinpad=None, on_card_removable=removed, trace=self.trace,
            )  # fmt: skip
        else:
            result = await run_contact_transaction(
                card, config=self.terminal, request=request, env=fixed_env(),
                online=self._online, pinpad=None, capk=self.capk, trace=self.trace,
            )  # fmt: skip
        cpu = time.thread_time() - start - self.issuer_cpu
        if result.decision is not Decision.APPROVED:
            raise SystemExit(f"kernel {kind.name}: {result.decision} {result.reason}")
        return cpu, card.cpu


async def _kernel_cpu(kind: LaneKind, runs: int, trace: bool = False) -> tuple[float, float]:
    """Median CPU seconds of one transaction of ``kind`` in process, the issuer's CPU removed,
    and the median of the virtual card's share of it (``trace``: with the APDU trace)."""
    import statistics

    floor = _Floor(trace)
    samples = [await floor.one(kind) for _ in range(runs)]
    return (statistics.median(cpu for cpu, _ in samples),
            statistics.median(card for _, card in samples))  # fmt: skip


async def kernel_cpu_per_payment(done: dict[str, int], runs: int = 30) -> float:
    """The kernel's CPU seconds per payment, weighted by the payments ``done`` of each kind."""
    kinds = {kind.name: kind for kind in MIX}
    measured = {name: await _kernel_cpu(kind, runs) for name, kind in kinds.items()}
    for name, (cpu, card) in measured.items():
        print(f"kernel_cpu_{name}: {cpu * 1e3:.2f} ms")
        print(f"kernel_cpu_{name}_card_share: {card * 1e3:.2f} ms")
    return weighted({name: cpu for name, (cpu, _) in measured.items()}, done)


async def floor_per_kind(runs: int = 30, trace: bool = False) -> dict[str, float]:
    """Each kind's median CPU seconds per transaction (as :func:`kernel_cpu_per_payment`
    measures them, printing nothing): the floor before the load; ``trace``: with the kernel's
    APDU trace, which the daemon does not record."""
    return {kind.name: (await _kernel_cpu(kind, runs, trace))[0] for kind in MIX}


def weighted(per_kind: dict[str, float], done: dict[str, int]) -> float:
    """``per_kind`` (seconds per payment of each kind) weighted by the payments ``done``."""
    total = sum(done.values())
    if total == 0:
        raise SystemExit("no payment ended as expected")
    return sum(per_kind[name] * count for name, count in done.items()) / total


async def floor_during(seconds: float, interval: float = 0.05) -> dict[str, list[float]]:
    """The kernel's CPU per transaction sampled for ``seconds`` while something else runs: one
    transaction of each kind in turn, ``interval`` seconds apart (about 5 % of a core), after
    three of each to warm up. Returns each kind's samples (seconds)."""
    floor = _Floor()
    kinds = {kind.name: kind for kind in MIX}
    for kind in kinds.values():
        for _ in range(3):
            await floor.one(kind)
    samples: dict[str, list[float]] = {name: [] for name in kinds}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, kind in kinds.items():
            samples[name].append((await floor.one(kind))[0])
            await asyncio.sleep(interval)
    return samples


# -- the big journal ---------------------------------------------------------------------------


def _local_midnight_ms(now: float) -> int:
    t = time.localtime(now)
    return int(time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1)) * 1000)


async def build_big_journal(path: Path, payments: int) -> int:
    """A journal of ``payments`` rows over the last year, about a day's worth today.

    The schema is the code's own (:meth:`Journal.open` migrates it); the rows go in with
    ``executemany``, ``synchronous=OFF`` (a benchmark's scratch file). Sales mostly completed,
    2 % declined, 1 % refunds; today's completed sales are still in the outbox.

    Returns:
        How many sales were created today (what the page must show).
    """
    from gateway.journal import Journal

    async with Journal.open(path):
        pass
    now = time.time()
    now_ms, midnight = int(now * 1000), _local_midnight_ms(now)
    per_day = max(1, payments // 365)
    today_rows = min(payments, per_day)
    older = payments - today_rows
    year_ago = midnight - 365 * 86_400_000
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    today_sales = 0

    def rows(start: int, stop: int) -> Any:
        nonlocal today_sales
        previous_sale = None
        for i in range(start, stop):
            if i < older:
                created = year_ago + (i * (midnight - year_ago)) // max(1, older)
            else:
                created = midnight + ((i - older) * (now_ms - midnight)) // max(1, today_rows)
            pid = "pay_" + base64.b32encode(i.to_bytes(8, "big")).decode().rstrip("=").lower()
            refund = previous_sale is not None and i % 100 == 99
            state = "DECLINED" if i % 50 == 7 else "COMPLETED"
            if not refund:
                previous_sale = pid
                today_sales += created >= midnight
            yield (pid, "refund" if refund else "sale", previous_sale if refund else None,
                   str(i % 16 + 1), 1250, "EUR", state, None, "476173******0010",
                   "A0000000031010", "000001", "00", None, created, created, None)  # fmt: skip

    chunk = 100_000
    for start in range(0, payments, chunk):
        conn.executemany(
            "INSERT INTO payments (id, kind, refund_of, lane, amount, currency, state, items,"
            " masked_pan, aid, auth_code, response_code, idempotency_key, created_ms,"
            " updated_ms, till_reference) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(start, min(payments, start + chunk)),
        )
    conn.execute(
        "INSERT INTO outbox (payment_id, body, created_ms) SELECT id, '{}', created_ms"
        " FROM payments WHERE created_ms >= ? AND state = 'COMPLETED'",
        (midnight,),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return today_sales
