"""The outbox drained to MQTT against ``mosquitto_pub``, side by side on one private broker.

10,000 queued sales (a journal whose outbox holds 10,000 completed sales, as after a long
outage) are drained by :class:`gateway.sync.OutboxPublisher` at QoS 1 (claim from the journal,
card-data re-check, PUBLISH, PUBACK, ``mark_sent`` on disk with ``synchronous=FULL``) to a
private mosquitto, and the very same messages, one per line, are published by
``mosquitto_pub -l -q 1`` (the broker's own C client: the ceiling) to the same broker, in
alternating rounds of the same run. No subscriber is attached (head office's side is not
measured; the broker answers PUBACK either way).

A third side is a reference: ``paho_bare``, a bare loop of QoS 1 MQTT 5 publishes on a
paho-mqtt client (the library under aiomqtt, the client posgw connects with), with the same
window of messages in flight, each PUBACK sending the next one, and no posgw code at all (no
journal, no asyncio). posgw's window writes its own PUBLISH packets and settles PUBACKs from
their bytes (gateway/sync/window.py), so it can drain faster than paho's own publish path.

Prints each side's median rate (messages/s) over the rounds, ``posgw_drain_ratio`` (posgw's
rate / mosquitto_pub's; the target is >= 0.5), ``paho_bare_ratio`` (paho's / mosquitto_pub's)
and ``posgw_vs_paho_bare`` (posgw's / paho's). Bounded: about 10-30 s here. Run:
``.venv/bin/python benchmarks/sync.py [--n 10000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import paho.mqtt.client as paho

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.journal import Journal, OutboxItem  # noqa: E402
from gateway.sync import OutboxPublisher, mqtt_client_factory, sale_message  # noqa: E402
from gateway.sync.client import DEFAULT_INFLIGHT  # noqa: E402

SHOP = "bench-shop"
MASKED = "476173******0010"
ITEMS = [{"sku": "SKU-1", "qty": 2, "label": "Coffee 250g", "unit_price": 450}]
pc = time.perf_counter


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """A private mosquitto (no persistence) on a free loopback port; yields the port."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = _free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      "max_queued_messages 0\n")  # fmt: skip
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("mosquitto did not start") from None
                time.sleep(0.02)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def fill(path: Path, n: int) -> None:
    """A journal with ``n`` completed sales in its outbox: one through the journal, cloned."""
    async with Journal.open(path) as journal:
        sale = await journal.create_sale(lane="1", amount=1250, currency="EUR", actor="bench",
                                         items=ITEMS)  # fmt: skip
        await journal.card_read(sale.id, masked_pan=MASKED, aid="A0000000031010", actor="bench")
        await journal.request_auth(sale.id, actor="bench")
        await journal.approve(sale.id, auth_code="A1B2C3", actor="bench")
        await journal.complete(sale.id, actor="bench")
    conn = sqlite3.connect(path)
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(payments)")]
        others = ", ".join(c for c in columns if c not in ("id", "idempotency_key"))
        body = conn.execute("SELECT body FROM outbox").fetchone()[0]
        with conn:
            for k in range(1, n):
                new_id = f"{sale.id[:-8]}{k:08d}"
                conn.execute(f"INSERT INTO payments (id, {others}) "
                             f"SELECT ?, {others} FROM payments WHERE id = ?",
                             (new_id, sale.id))  # fmt: skip
                conn.execute(
                    "INSERT INTO outbox (payment_id, body, created_ms) VALUES (?, ?, ?)",
                    (new_id, body.replace(sale.id, new_id), int(time.time() * 1000)),
                )
    finally:
        conn.close()


def payloads(path: Path) -> list[bytes]:
    """The messages posgw publishes for the journal's outbox (for mosquitto_pub's input)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT id, payment_id, body FROM outbox ORDER BY id").fetchall()
    finally:
        conn.close()
    return [sale_message(OutboxItem(i, p, b, 1, 0), shop=SHOP) for i, p, b in rows]


class Counting:
    """The journal's outbox, with an event set once ``target`` records are marked sent."""

    def __init__(self, journal: Journal, target: int) -> None:
        self.journal = journal
        self.target = target
        self.sent = 0
        self.done = asyncio.Event()

    async def claim_batch(self, n: int, *, lease: float = 60.0) -> list[OutboxItem]:
        return await self.journal.claim_batch(n, lease=lease)

    async def mark_sent(self, ids: Sequence[int]) -> int:
        changed = await self.journal.mark_sent(ids)
        self.sent += changed
        if self.sent >= self.target:
            self.done.set()
        return changed

    async def mark_failed(self, ids: Sequence[int], *, error: str) -> None:
        await self.journal.mark_failed(ids, error=error)


def fresh_copy(template: Path, path: Path) -> None:
    """``path`` becomes a copy of the filled journal (its WAL files removed first)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, path)


async def drain_posgw(template: Path, workdir: Path, port: int, n: int) -> float:
    """Seconds for the publisher to drain ``n`` queued sales (connect included)."""
    path = workdir / "drain.db"
    fresh_copy(template, path)
    async with Journal.open(path) as journal:
        outbox = Counting(journal, n)
        clients = mqtt_client_factory(host="127.0.0.1", port=port, shop=SHOP, role="sales")
        publisher = OutboxPublisher(journal=outbox, client_factory=clients, shop=SHOP)
        start = pc()
        task = asyncio.create_task(publisher.run())
        async with asyncio.timeout(120):
            await outbox.done.wait()
        elapsed = pc() - start
        publisher.stop()
        await task
    if publisher.diagnostics()["published"] != n:
        raise SystemExit(f"posgw published {publisher.diagnostics()['published']} of {n}")
    return elapsed


def drain_mosquitto_pub(lines: Path, port: int) -> float:
    """Seconds for ``mosquitto_pub -l -q 1`` to publish every line (process start included)."""
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        raise SystemExit("mosquitto_pub not found: apt-get install mosquitto-clients")
    with lines.open("rb") as stdin:
        start = pc()
        subprocess.run([binary, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l",
                        "-i", "bench-mosquitto-pub", "-t", f"posgw/{SHOP}/sales"],
                       stdin=stdin, check=True, timeout=120)  # fmt: skip
        return pc() - start


def drain_paho_bare(messages: list[bytes], port: int, window: int = DEFAULT_INFLIGHT) -> float:
    """Seconds for a bare paho-mqtt loop to publish every message at QoS 1 (connect included).

    MQTT 5, clean start, ``window`` messages in flight: the first ``window`` go out on CONNACK,
    then each PUBACK sends the next one, from paho's own callback in its own blocking loop.
    """
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-paho-bare",
                         protocol=paho.MQTTv5)  # fmt: skip
    client.max_inflight_messages_set(window)
    topic = f"posgw/{SHOP}/sales"
    total = len(messages)
    sent = acked = 0

    def send_next() -> None:
        nonlocal sent
        if sent < total:
            client.publish(topic, messages[sent], 1)
            sent += 1

    def on_connect(*_: object) -> None:
        for _ in range(window):
            send_next()

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        if acked == total:
            client.disconnect()
        else:
            send_next()

    client.on_connect = on_connect
    client.on_publish = on_publish
    start = pc()
    client.connect("127.0.0.1", port)
    client.loop_forever()
    elapsed = pc() - start
    if acked != total:
        raise SystemExit(f"paho published {acked} of {total}")
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="posgw-bench-sync-"))
    try:
        template = workdir / "template.db"
        await fill(template, args.n)
        lines = workdir / "sales.txt"
        messages = payloads(template)
        lines.write_bytes(b"\n".join(messages) + b"\n")
        ours: list[float] = []
        theirs: list[float] = []
        bare: list[float] = []
        with mosquitto(workdir) as port:
            for _ in range(args.rounds):
                theirs.append(args.n / drain_mosquitto_pub(lines, port))
                ours.append(args.n / await drain_posgw(template, workdir, port, args.n))
                bare.append(args.n / drain_paho_bare(messages, port))
        posgw_rate, pub_rate = statistics.median(ours), statistics.median(theirs)
        bare_rate = statistics.median(bare)
        print(f"posgw_drain_rate: {posgw_rate:.0f} msg/s")
        print(f"mosquitto_pub_rate: {pub_rate:.0f} msg/s")
        print(f"paho_bare_rate: {bare_rate:.0f} msg/s")
        print(f"posgw_drain_ratio: {posgw_rate / pub_rate:.2f}")
        print(f"paho_bare_ratio: {bare_rate / pub_rate:.2f}")
        print(f"posgw_vs_paho_bare: {posgw_rate / bare_rate:.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
