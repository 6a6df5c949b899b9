"""Demo stage: the posgw daemon with three simulated lanes, the simulated acquirer, head office.

Everything runs on this machine: the daemon (gateway.daemon.daemon) with one chip lane and one
contactless lane on ``sim://`` readers and a TPE lane driving a virtual Caisse-AP payment
terminal over TCP (simulator.tpe, which runs EMV itself: the till asks, the terminal takes the
card and answers), the acquirer host (simulator.acquirer_host) checking
ARQCs over HTTP, a private mosquitto with the simulated head office when mosquitto is installed.
A till asks each lane for an amount over the till API, a virtual card is inserted or tapped, the
payment goes online and is journaled, head office receives the sale, and the status page shows
the shop. This script wires gateway and simulator together, which neither package may do.

Usage: ``python scripts/demo_daemon.py [--serve SECONDS]`` (``--serve`` keeps the status page up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from drivers import sim
from gateway.daemon.config import parse_config
from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore
from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from simulator.head_office import HeadOffice
from simulator.keys import DEFAULT_KEYS_DIR
from simulator.tpe import VirtualTcpTpe

#: What a PC/SC reader reports for a contactless card (PC/SC Part 3, 3.1.3.2.3).
CONTACTLESS_ATR = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")
SHOP = "demo-shop"
MANAGER, MANAGER_PASSWORD = "demo-manager", "demo password, not secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _mosquitto(workdir: Path) -> Iterator[int | None]:
    """A private mosquitto on a free loopback port, or None when it is not installed."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        print("(head office skipped: mosquitto is not installed)")
        yield None
        return
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _config(workdir: Path, acquirer_url: str, mqtt_port: int | None, tpe_port: int) -> Any:
    key = workdir / "vault.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    document: dict[str, Any] = {
        "shop": SHOP,
        "http": {"host": "127.0.0.1", "port": 0},  # TLS (self-signed) and manager logins
        "journal": {"path": str(workdir / "journal.db")},
        "vault": {"key_file": str(key)},
        "acquirer": {"url": acquirer_url, "merchant_id": "DEMO0001", "terminal_id": "LANE0001"},
        "terminal": {"extra_ca_keys": [str(DEFAULT_KEYS_DIR / "capk_sim.json")]},
        "lanes": [
            {"id": 1, "name": "Lane 1 (chip)", "reader": "sim://demo-lane1",
             "interface": "contact", "pin_pad": "virtual:1234"},
            {"id": 2, "name": "Lane 2 (contactless)", "reader": "sim://demo-lane2",
             "interface": "contactless", "pin_pad": "none"},
            {"id": 3, "name": "Lane 3 (TPE, Caisse-AP over IP)",
             "reader": f"tcp://127.0.0.1:{tpe_port}?protocol=caisse-ap&answer_timeout=20"},
        ],
    }  # fmt: skip
    if mqtt_port is not None:
        document["mqtt"] = {"host": "127.0.0.1", "port": mqtt_port}
    return parse_config(document, source="demo")


def _credentials(journal: Path) -> str:
    """A till credential and a manager account, as ``posgw till add`` and ``posgw manager add``
    make them; the till's token."""
    store = CredentialStore.open(journal)
    try:
        token = store.add_till("demo-till", refund_limit=1000, actor="demo")
        store.add_manager(MANAGER, MANAGER_PASSWORD, role="manager", actor="demo")
    finally:
        store.close()
    print("till demo-till added (refunds above 10.00 need a manager); manager demo-manager added")
    return token


async def _wait_prompt(session: aiohttp.ClientSession, base: str, lane: int, prompt: str) -> None:
    async with asyncio.timeout(10):
        while True:
            async with session.get(f"{base}/api/lanes") as response:
                lanes = (await response.json())["lanes"]
            if any(item["id"] == lane and item["prompt"] == prompt for item in lanes):
                return
            await asyncio.sleep(0.05)


#: The lane 1 sale's basket (docs/daemon.md, "Till API"): 2 x 4.50 + 3.50 = 12.50 EUR.
BASKET = [
    {"sku": "COFFEE-250", "label": "Coffee 250g", "qty": 2, "unit_price": 450, "vat_rate": "5.5"},
    {"label": "Gift wrap", "qty": 1, "unit_price": 350, "vat_rate": "20"},
]


async def _sale(session: aiohttp.ClientSession, base: str, lane: int, amount: int,
                card: str, *, contactless: bool,
                items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The till asks ``lane`` for ``amount`` cents (a basket optional); the customer presents
    ``card``."""
    body: dict[str, Any] = {"amount": amount, "currency": "EUR"}
    if items is not None:
        body["items"] = items
    async with session.post(f"{base}/api/lanes/{lane}/payments", json=body) as response:
        created = await response.json()
    await _wait_prompt(session, base, lane, "PRESENT CARD")
    print(f"till: lane {lane} asks for {amount / 100:.2f} EUR; the lane shows PRESENT CARD")
    slot = sim.slot(f"demo-lane{lane}")
    if contactless:
        slot.insert(VirtualCard.from_profile(card), CONTACTLESS_ATR)
        print(f"customer: taps a virtual {card} card")
    else:
        slot.insert(VirtualCard.from_profile(card))
        print(f"customer: inserts a virtual {card} card and types the PIN on the PIN pad")
    async with session.get(f"{base}/api/payments/{created['id']}?wait=20") as response:
        result: dict[str, Any] = await response.json()
    slot.remove()
    shown = {k: result.get(k) for k in ("state", "outcome", "masked_pan", "aid", "auth_code",
                                        "response_code", "interface")}  # fmt: skip
    print(f"lane {lane}: {json.dumps(shown)}")
    return result


async def _follow_prompts(
    session: aiohttp.ClientSession,
    base: str,
    lane: int,
    prompts: list[str],
    subscribed: asyncio.Event,
) -> None:
    """The till's view of a lane: its live event stream (Server-Sent Events), prompts only."""
    async with session.get(f"{base}/api/lanes/{lane}/events") as stream:
        subscribed.set()  # the stream is open: nothing the lane shows from now on is missed
        event = ""
        async for raw in stream.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "prompt":
                prompts.append(json.loads(line[6:])["prompt"])


async def _refund(
    session: aiohttp.ClientSession, base: str, sale: dict[str, Any], amount: int
) -> dict[str, Any]:
    """The till refunds part of a sale (no card): journal first, then the acquirer."""
    async with session.post(f"{base}/api/payments/{sale['id']}/refunds",
                            json={"amount": amount, "reference": "DEMO-R1"}) as response:
        refund: dict[str, Any] = await response.json()
    print(f"till: refunds {amount / 100:.2f} EUR of the lane 1 sale -> {refund.get('state')} "
          f"(refund {refund.get('id')}, card {refund.get('masked_pan')})")  # fmt: skip
    return refund


async def _tpe_sale(session: aiohttp.ClientSession, base: str, tpe: VirtualTcpTpe,
                    amount: int) -> dict[str, Any]:
    """The till asks the TPE lane; the virtual terminal takes the card and answers."""
    async with session.post(f"{base}/api/lanes/3/payments",
                            json={"amount": amount, "currency": "EUR"}) as response:
        created = await response.json()
    print(f"till: lane 3 asks its payment terminal for {amount / 100:.2f} EUR")
    async with session.get(f"{base}/api/payments/{created['id']}?wait=20") as response:
        result: dict[str, Any] = await response.json()
    async with session.post(f"{base}/api/lanes/3/payments",
                            json={"amount": 1200, "currency": "EUR"}) as response:
        mistake = await response.json()
    async with session.get(f"{base}/api/payments/{mistake['id']}?wait=20") as response:
        await response.read()
    async with session.post(f"{base}/api/payments/{mistake['id']}/void",
                            json={"reason": "rung up twice"}) as response:
        voided = await response.json()
    print(f"till: a 12.00 EUR sale rung up twice on lane 3 is voided -> {voided.get('state')} "
          f"(the terminal cancelled {[f'{c.amount / 100:.2f}' for c in tpe.brain.cancelled]})")
    async with session.post(f"{base}/api/lanes/3/end-of-day", json={}) as response:
        day = await response.json()
    charged = [f"{c.amount / 100:.2f}" for c in tpe.brain.charges]
    print(f"tpe lane 3: state={result.get('state')} outcome={result.get('outcome')} "
          f"card={result.get('masked_pan')} auth={result.get('auth_code')}; "
          f"the terminal charged {charged}")
    print(f"tpe lane 3 end of day: ok={day.get('ok')} transactions={day.get('transactions')} "
          f"debits={day.get('debits')} refunds={day.get('refunds')} (kept in the journal)")
    return result


def _takings_line(page: str) -> str:
    """The page's "today's takings" card as text (the French page says "Recette du jour")."""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    found = re.search(r"Recette du jour [^A-Za-z]*", html.unescape(text))
    return found.group(0).strip() if found else "(takings not found)"


async def _close_day(session: aiohttp.ClientSession, base: str) -> None:
    """The manager closes the day from the status page: session cookie, CSRF token, totals
    compared with the acquirer's (docs/day.md)."""
    async with session.get(f"{base}/manager") as response:
        form = re.search(r'name=csrf value="([^"]+)"', await response.text())
    if form is None:
        print("day close: no CSRF token on the manager page")
        return
    # what the page's "Close the day" button posts, asked for as JSON (the button's form post
    # answers 303 back to /manager with "Day N closed.")
    async with session.post(f"{base}/manager/days/close", json={},
                            headers={"X-CSRF-Token": form.group(1)}) as reply:  # fmt: skip
        day = await reply.json()
    lines = day.get("record", {}).get("totals", [])
    print(f"day close by {MANAGER}: {reply.status}, {len(lines)} total line(s) journaled and sent "
          f"to head office; reconciled with the acquirer: {day.get('reconciled')}, "
          f"differences: {day.get('differences')}")


async def _day_published(daemon: Daemon) -> None:
    """Wait (10 s at most) until head office has acknowledged the closed day's record."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            # the journal has no change notification for this; a demo may poll it
            while await daemon.journal.unpublished_days():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    left = await daemon.journal.unpublished_days()
    print(f"day record sent to head office: {'yes' if not left else 'not yet'}")


async def run(serve: float) -> int:
    """The whole stage; 0 when both sales completed."""
    workdir = Path(tempfile.mkdtemp(prefix="posgw-demo-"))
    host = AcquirerHost()
    tpe = VirtualTcpTpe()  # the TPE of lane 3: a virtual Caisse-AP terminal on TCP
    try:
        acquirer_url = await host.start()
        tpe_port = await tpe.start()
        with _mosquitto(workdir) as mqtt_port:
            office = None
            if mqtt_port is not None:
                office = HeadOffice(host="127.0.0.1", port=mqtt_port, shop=SHOP)
                await office.start()
                await office.publish_stock("COFFEE-250", level=12)
            config = _config(workdir, acquirer_url, mqtt_port, tpe_port)
            token = _credentials(config.journal.path)
            daemon = Daemon(config)
            task = asyncio.create_task(daemon.run(), name="demo.daemon")
            try:
                async with asyncio.timeout(20):
                    while not daemon.ready:
                        if task.done():
                            task.result()
                        await asyncio.sleep(0.02)
                base = f"https://127.0.0.1:{daemon.http_port}"
                print(f"daemon ready: till API and status page at {base}/")
                print(f"certificate SHA-256 (the till pins it): {daemon.tls_fingerprint}")
                assert daemon.tls_fingerprint is not None
                pin = aiohttp.Fingerprint(bytes.fromhex(daemon.tls_fingerprint.replace(":", "")))
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=pin),
                    headers={"Authorization": f"Bearer {token}"},
                    cookie_jar=aiohttp.CookieJar(unsafe=True),
                ) as session:
                    first = await _sale(session, base, 1, 1250, "visa_credit", contactless=False,
                                        items=BASKET)
                    prompts: list[str] = []
                    subscribed = asyncio.Event()
                    follower = asyncio.create_task(
                        _follow_prompts(session, base, 2, prompts, subscribed)
                    )
                    async with asyncio.timeout(10):
                        await subscribed.wait()
                    second = await _sale(session, base, 2, 890, "ctls_mc_cda_online",
                                         contactless=True)
                    await asyncio.sleep(0.2)  # the last prompt (IDLE) reaches the stream
                    follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follower
                    print(f"till (live events of lane 2): {' -> '.join(prompts)}")
                    refund = await _refund(session, base, first, 500)
                    tpe_prompts: list[str] = []
                    subscribed = asyncio.Event()
                    follower = asyncio.create_task(
                        _follow_prompts(session, base, 3, tpe_prompts, subscribed)
                    )
                    async with asyncio.timeout(10):
                        await subscribed.wait()
                    third = await _tpe_sale(session, base, tpe, 2350)
                    await asyncio.sleep(0.2)  # the last prompt (IDLE) reaches the stream
                    follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follower
                    print(f"till (live events of lane 3): {' -> '.join(tpe_prompts)}")
                    login = {"name": MANAGER, "password": MANAGER_PASSWORD}
                    async with session.post(f"{base}/login", data=login) as response:
                        print(f"manager {MANAGER} logged in to the status page: {response.status}")
                    async with session.get(f"{base}/status.json") as response:
                        status = await response.json()
                    async with session.get(f"{base}/api/stock") as response:
                        stock = await response.json() if response.status == 200 else {}
                    for line in stock.get("skus", []):
                        print(f"stock: {line['sku']} {line['level']} left (head office said "
                              f"{line['head_office_level']}, sold here {-line['local_net']})")
                    async with session.get(f"{base}/") as response:
                        page_ok = response.status == 200 and "<html" in (await response.text())
                    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
                    async with session.get(f"{base}/", headers=french) as response:
                        page = await response.text()
                    print(f"status page in French: {_takings_line(page)}")
                    await _close_day(session, base)
                    if mqtt_port is not None:  # the day's record leaves before the daemon stops
                        await _day_published(daemon)
                print(f"status page: {'ok' if page_ok else 'FAILED'}; journal today: "
                      f"{json.dumps(status.get('journal'))}")
                if office is not None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(10):
                            await office.wait_for_sales(3)
                    for sale in office.sales.values():
                        print(f"head office received: {json.dumps(sale)[:160]}")
                if serve > 0:
                    print(f"status page stays up for {serve:.0f} s at {base}/ (log in as "
                          f"{MANAGER} / {MANAGER_PASSWORD}; the certificate is self-signed)")
                    await asyncio.sleep(serve)
            finally:
                daemon.request_stop()
                await asyncio.wait_for(task, 20)
                if office is not None:
                    await office.stop()
        done = all(sale.get("state") == "COMPLETED" for sale in (first, second, refund, third))
        return 0 if done and page_ok else 1
    finally:
        await tpe.stop()
        await host.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=float, default=0.0, metavar="SECONDS",
                        help="keep the daemon and its status page up this long at the end")
    return asyncio.run(run(parser.parse_args().serve))


if __name__ == "__main__":
    sys.exit(main())
