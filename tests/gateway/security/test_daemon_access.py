"""Who may reach the till API, against the real daemon over real TLS (a pinned self-signed
certificate): bearer tokens, revocation without restart, per-till lanes, Host/Origin/
Content-Type checks, the old 500s answered 400, and the journal and audit naming the till."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from gateway.daemon.cli import main as posgw
from gateway.daemon.daemon import Daemon
from gateway.journal import audit
from gateway.security import CredentialStore
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    TEST_TILL,
    acquirer_fixture,
    fixed_env,
    insert_card,
    register_till,
    running,
    slot_name,
    till_token,
)
from tests.gateway.security.tls_support import base_url, pinned_session, tls_config, tls_till

pytestmark = pytest.mark.both_loops  # the daemon's two event loops

__all__ = ["acquirer_fixture"]

CARD_LIKE = "4111111111111111"


def _daemon(tmp_path: Path, acquirer: AcquirerHost, lanes: int = 1) -> Daemon:
    assert acquirer.url is not None
    slots = [slot_name() for _ in range(lanes)]
    return Daemon(tls_config(tmp_path, acquirer.url, slots), env=fixed_env, environ={})


def _cli_config(tmp_path: Path) -> Path:
    """A configuration file naming the test's journal (what ``posgw ... --config`` reads)."""
    path = tmp_path / "posgw.toml"
    path.write_text(
        'shop = "shop-test"\n[journal]\npath = "journal.db"\n'
        '[acquirer]\nurl = "http://127.0.0.1:1"\nmerchant_id = "SHOP0001"\n'
        '[[lanes]]\nid = 1\nreader = "sim://x"\n'
        f'[vault]\nkey_file = "{tmp_path / "vault.key"}"\n'  # the daemon's (daemon_support)
    )
    return path


async def test_no_token_a_wrong_one_or_plain_http_is_refused(
    tmp_path: Path, acquirer: AcquirerHost, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running(_daemon(tmp_path, acquirer)) as daemon:
        assert daemon.tls_fingerprint is not None
        # what `posgw tls fingerprint` prints is what the tills pin
        assert posgw(["tls", "fingerprint", "--config", str(_cli_config(tmp_path))]) == 0
        assert daemon.tls_fingerprint in capsys.readouterr().out
        async with pinned_session(daemon) as anonymous:
            url = f"{base_url(daemon)}/api/lanes/1/payments"
            async with anonymous.post(url, json={"amount": 100}) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            async with anonymous.get(f"{base_url(daemon)}/api/lanes") as response:
                assert response.status == 401
            wrong = {"Authorization": "Bearer pgt_" + "a" * 52}
            async with anonymous.post(url, json={"amount": 100}, headers=wrong) as response:
                assert response.status == 401
                assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        # the listener speaks TLS only: a plain HTTP request gets no HTTP answer
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                async with plain.get(f"http://127.0.0.1:{daemon.http_port}/api/lanes") as r:
                    await r.read()


async def test_a_token_added_by_the_command_works_and_stops_when_revoked(
    tmp_path: Path, acquirer: AcquirerHost, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running(_daemon(tmp_path, acquirer)) as daemon:
        config = _cli_config(tmp_path)
        assert posgw(["till", "add", "front-1", "--config", str(config)]) == 0
        token = capsys.readouterr().out.strip().splitlines()[-1]
        async with pinned_session(daemon, token) as session:
            till = tls_till(session, daemon)
            assert (await till.lanes())["lanes"][0]["id"] == 1
            assert posgw(["till", "revoke", "front-1", "--config", str(config)]) == 0
            async with session.get(f"{till.base}/api/lanes") as response:
                assert response.status == 401  # the next request, no restart
        assert posgw(["till", "list", "--config", str(config)]) == 0
        listing = capsys.readouterr().out
        assert "front-1" in listing and token not in listing


async def test_a_till_uses_only_its_lanes(tmp_path: Path, acquirer: AcquirerHost) -> None:
    (tmp_path / "other").mkdir()
    token = till_token(tmp_path / "other")
    daemon = _daemon(tmp_path, acquirer, lanes=2)
    register_till(tmp_path / "journal.db", "lane-2-only", token, lanes=[2])
    async with running(daemon), pinned_session(daemon, token) as session:
        till = tls_till(session, daemon)
        status, body = await till.pay(1, 100)
        assert (status, body.get("error")) == (403, "lane_not_allowed"), body
        status, body = await till.pay(2, 100)
        assert status == 202, body
        assert await till.cancel(body["id"]) == 202
        await till.get(body["id"], wait=5)
        events = await daemon.journal.events(body["id"])
        assert events[0].actor == "till:lane-2-only"
        assert events[-1].to_state.value == "CANCELLED"
        assert "till:lane-2-only" in events[-1].reason  # who cancelled


async def test_cross_origin_wrong_host_and_text_plain_are_refused(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    daemon = _daemon(tmp_path, acquirer)
    async with running(daemon), pinned_session(daemon, till_token(tmp_path)) as session:
        url = f"{base_url(daemon)}/api/lanes/1/payments"
        body = json.dumps({"amount": 100})
        evil = {"Origin": "http://evil.example", "Content-Type": "application/json"}
        async with session.post(url, data=body, headers=evil) as response:
            assert (response.status, (await response.json())["error"]) == (403, "cross_origin")
        site = {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}
        async with session.post(url, data=body, headers=site) as response:
            assert response.status == 403
        opaque = {"Origin": "null", "Content-Type": "application/json"}  # a sandboxed page
        async with session.post(url, data=body, headers=opaque) as response:
            assert response.status == 403
        plain = {"Content-Type": "text/plain"}
        async with session.post(url, data=body, headers=plain) as response:
            assert response.status == 415
        rebinding = {"Host": "evil.example", "Content-Type": "application/json"}
        async with session.post(url, data=body, headers=rebinding) as response:
            assert response.status == 421
        async with session.get(f"{base_url(daemon)}/api/lanes", headers=rebinding) as resp:
            assert resp.status == 421
        # nothing of the above started a payment; the same request done right does
        lanes = (await tls_till(session, daemon).lanes())["lanes"]
        assert lanes[0]["payment"] is None
        own = {"Origin": base_url(daemon), "Content-Type": "application/json"}
        async with session.post(url, data=body, headers=own) as response:
            assert response.status == 202
            payment_id = (await response.json())["id"]
        assert await tls_till(session, daemon).cancel(payment_id) == 202


async def test_the_old_500s_are_400s_and_a_card_number_is_not_echoed(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    daemon = _daemon(tmp_path, acquirer)
    async with running(daemon), pinned_session(daemon, till_token(tmp_path)) as session:
        base = base_url(daemon)
        deep = "[" * 50_000 + "]" * 50_000
        headers = {"Content-Type": "application/json"}
        url = f"{base}/api/lanes/1/payments"
        async with session.post(url, data=deep, headers=headers) as response:
            assert response.status == 400, await response.text()
            assert (await response.json())["field"] == "body"
        ref = {"amount": 100, "reference": CARD_LIKE}
        async with session.post(url, json=ref) as response:
            text = await response.text()
            assert response.status == 400 and json.loads(text)["field"] == "reference"
            assert CARD_LIKE not in text
        for lane in ("²", "١", "1" * 5000):
            lane_url = f"{base}/api/lanes/{lane}/payments"
            async with session.post(lane_url, json={"amount": 1}) as r:
                assert r.status == 400, lane
                assert lane not in await r.text()
            async with session.get(f"{base}/api/lanes/{lane}/events") as r:
                assert r.status == 400, lane
        async with session.get(
            f"{base}/api/lanes/1/events", headers={"Last-Event-ID": "²"}
        ) as stream:
            assert stream.status == 200
            head = b""
            async with asyncio.timeout(5):
                while b"event: state" not in head:
                    head += await stream.content.readuntil(b"\n\n")
            assert b"event: gap" in head  # a resume it cannot give: gap, then the state
        # the daemon is still well
        assert len((await tls_till(session, daemon).lanes())["lanes"]) == 1


async def test_the_journal_and_the_audit_log_name_the_till(
    tmp_path: Path, acquirer: AcquirerHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert acquirer.url is not None
    slot = slot_name()
    daemon = Daemon(tls_config(tmp_path, acquirer.url, [slot]), env=fixed_env, environ={})
    async with running(daemon), pinned_session(daemon, till_token(tmp_path)) as session:
        till = tls_till(session, daemon)
        status, body = await till.pay(1, 1250, reference="S-1")
        assert status == 202
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot)
        assert (await till.get(body["id"], wait=10))["state"] == "COMPLETED"
        events = await daemon.journal.events(body["id"])
        assert events[0].actor == f"till:{TEST_TILL}"
    config = str(_cli_config(tmp_path))
    assert posgw(["audit", "verify", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "audit chain: OK" in out
    assert "signed checkpoint: rows 1-" in out  # the daemon signed with its vault key
    store = CredentialStore.open(tmp_path / "journal.db")
    actions = [(e.actor, e.action, e.subject) for e in store.audit_entries()]
    store.close()
    assert (f"till:{TEST_TILL}", "payment.start", body["id"]) in actions
    assert ("daemon", "daemon.start", "") in actions
    # someone with the file edits a row: verify names it
    conn = sqlite3.connect(tmp_path / "journal.db")
    conn.execute("DROP TRIGGER audit_append_only_update")
    conn.execute("UPDATE audit SET actor = 'till:nobody' WHERE action = 'payment.start'")
    conn.commit()
    conn.close()
    assert posgw(["audit", "verify", "--config", config]) == 1
    assert "BROKEN at row" in capsys.readouterr().out
    # a careful one recomputes every hash and the anchor: only the signed checkpoint tells
    conn = sqlite3.connect(tmp_path / "journal.db")
    prev = audit.GENESIS
    for entry in audit.entries(conn):
        digest = audit.entry_hash(entry.seq, entry.at_ms, entry.actor, entry.action,
                                  entry.subject, entry.outcome, entry.detail, prev)  # fmt: skip
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?",
                     (prev, digest, entry.seq))  # fmt: skip
        prev = digest
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (prev,))
    conn.commit()
    assert audit.verify(conn).ok
    conn.close()
    assert posgw(["audit", "verify", "--config", config]) == 1
    assert "the chain was rebuilt" in capsys.readouterr().out


async def test_a_refused_connection_attempt_costs_no_till_its_service(
    tmp_path: Path, acquirer: AcquirerHost
) -> None:
    """A TLS handshake with garbage is dropped; the listener goes on answering."""
    async with running(_daemon(tmp_path, acquirer)) as daemon:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", daemon.http_port or 0))
        await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            while await loop.sock_recv(sock, 4096):  # closed by the server, maybe an alert
                pass
        sock.close()
        async with pinned_session(daemon, till_token(tmp_path)) as session:
            assert len((await tls_till(session, daemon).lanes())["lanes"]) == 1
