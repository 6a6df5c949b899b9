"""The security package's small parts: sessions, lockout, strict inputs, host policy, limits,
the listener's certificate."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path

import pytest

from gateway.security import TlsSetupError
from gateway.security.guard import HostPolicy, host_name, is_loopback
from gateway.security.inputs import (
    InputError,
    check_reference,
    load_json_object,
    parse_event_id,
    parse_lane_id,
)
from gateway.security.limits import ConnectionLimiter, RateLimitedLog
from gateway.security.sessions import LoginThrottle, SessionStore
from gateway.security.tls import ensure_self_signed, fingerprint, server_context


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- sessions and lockout --------------------------------------------------------------------


def test_a_session_ends_when_idle_too_long_or_too_old_or_logged_out() -> None:
    clock = Clock()
    store = SessionStore(idle=60, lifetime=300, clock=clock)
    session = store.create("alice", "manager")
    assert store.get(session.id) is session
    assert session.csrf_ok(session.csrf) and not session.csrf_ok("x") and not session.csrf_ok(None)
    clock.now += 61
    assert store.get(session.id) is None
    again = store.create("alice", "manager")
    for _ in range(5):
        clock.now += 59
        assert store.get(again.id) is again
    clock.now += 59  # 354 s after login: past the lifetime although never idle
    assert store.get(again.id) is None
    third = store.create("alice", "viewer")
    store.end(third.id)
    assert store.get(third.id) is None
    assert store.get(None) is None


def test_sessions_are_bounded() -> None:
    store = SessionStore(capacity=3)
    first = store.create("a", "viewer")
    for name in "bcd":
        store.create(name, "viewer")
    assert len(store) == 3
    assert store.get(first.id) is None


def test_lockout_per_account_and_per_address_with_a_cooldown() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window=60, cooldown=600, clock=clock)
    assert not throttle.failed("alice", "10.0.0.9")
    assert not throttle.failed("alice", "10.0.0.9")
    assert throttle.failed("alice", "10.0.0.9")
    assert throttle.locked_for("alice", "10.0.0.1") == pytest.approx(600)  # the account
    assert throttle.locked_for("bob", "10.0.0.9") == pytest.approx(600)  # the address
    assert throttle.locked_for("bob", "10.0.0.1") == 0
    clock.now += 601
    assert throttle.locked_for("alice", "10.0.0.9") == 0
    # failures spread over more than the window do not lock
    for _ in range(4):
        assert not throttle.failed("carol", f"10.0.1.{_}")
        clock.now += 31
        throttle.succeeded("nobody")
    throttle.failed("dave", "10.0.2.1")
    throttle.succeeded("dave")
    assert not throttle.failed("dave", "10.0.2.2")


# -- strict inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "١", "1" * 5000, "0", "01", "1000", "-1", " 1", "1.0", ""])
def test_lane_ids_are_ascii_numbers_of_a_sane_size(raw: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_lane_id(raw)
    assert caught.value.field == "lane"
    assert raw not in caught.value.message or raw == ""


def test_good_lane_ids() -> None:
    assert [parse_lane_id(x) for x in ("1", "42", "999")] == [1, 42, 999]


def test_last_event_id() -> None:
    assert parse_event_id(None) == (False, None)
    assert parse_event_id(" ") == (False, None)
    assert parse_event_id("17") == (True, 17)
    assert parse_event_id("²") == (True, -1)
    assert parse_event_id("9" * 20) == (True, -1)


def test_json_nested_fifty_thousand_deep_is_a_clean_input_error() -> None:
    for raw in (b"[" * 50_000 + b"]" * 50_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        with pytest.raises(InputError, match="nested deeper"):
            load_json_object(raw)
    shallow = {"a": [[["x"]]], "b": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \\\" [[["}
    assert load_json_object(json.dumps(shallow).encode()) == shallow
    for bad in (b"[1]", b"not json", b"\xff\xfe", b'"text"'):
        with pytest.raises(InputError, match="JSON object"):
            load_json_object(bad)


def test_a_card_number_reference_is_refused_without_echo() -> None:
    with pytest.raises(InputError) as caught:
        check_reference("4111111111111111")
    assert "4111" not in str(caught.value)
    check_reference("T-2026-0001")


# -- host policy -------------------------------------------------------------------------------


def test_host_names_are_parsed_strictly() -> None:
    assert host_name("Gateway.Shop.lan:8443") == "gateway.shop.lan"
    assert host_name("[::1]:8443") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1"
    for bad in ("", "a b", "user@host", "[::1", "host/x", "h:²"):
        assert host_name(bad) is None
    assert is_loopback("127.0.0.2") and is_loopback("::1") and not is_loopback("10.0.0.1")


def test_host_and_origin_policy() -> None:
    policy = HostPolicy(["gw.shop.lan", "192.168.1.10"], "0.0.0.0", "https", 8443)
    assert policy.host_ok("gw.shop.lan:8443") and policy.host_ok("localhost")
    assert not policy.host_ok("evil.example") and not policy.host_ok(None)
    assert not policy.host_ok("0.0.0.0")
    assert policy.host_ok("10.1.2.3:8443", "10.1.2.3")  # the address it arrived on
    assert not policy.host_ok("evil.example", "10.1.2.3")
    assert policy.origin_ok("https://10.1.2.3:8443", "10.1.2.3")
    assert not policy.origin_ok("https://10.1.2.3:8443", "10.1.2.4")
    assert policy.origin_ok("https://gw.shop.lan:8443")
    assert not policy.origin_ok("http://gw.shop.lan:8443")  # scheme
    assert not policy.origin_ok("https://gw.shop.lan")  # port 443
    assert not policy.origin_ok("https://evil.example:8443")
    assert not policy.origin_ok("null")


# -- connection caps ---------------------------------------------------------------------------


class FakeTransport(asyncio.Transport):
    """Only ``abort`` is used by the limiter (a pure bookkeeping test; the daemon test uses
    real sockets)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def abort(self) -> None:
        self.closed = True


def test_the_limiter_evicts_the_longest_idle_and_never_a_busy_connection() -> None:
    clock = Clock()
    limiter = ConnectionLimiter(per_client=3, total=5, clock=clock)
    transports = {}
    for key in range(3):
        clock.now += 1
        transports[key] = FakeTransport()
        assert limiter.admit(key, "10.0.0.1", transports[key])
    limiter._conns[0].busy = 1  # a request in progress on the oldest
    clock.now += 1
    transports[3] = FakeTransport()
    assert limiter.admit(3, "10.0.0.1", transports[3])
    assert transports[1].closed and not transports[0].closed  # oldest idle, not the busy one
    for key in (4, 5, 6):
        transports[key] = FakeTransport()
        assert limiter.admit(key, f"10.0.0.{key}", transports[key])
    assert limiter.open == 5
    assert transports[2].closed  # the total cap took the longest idle of anyone
    for conn in limiter._conns.values():
        conn.busy = 1
    assert not limiter.admit(9, "10.0.0.9", FakeTransport())
    assert (limiter.evicted, limiter.refused) == (2, 1)
    limiter.gone(4)
    assert limiter.admit(9, "10.0.0.9", FakeTransport())


def test_logging_is_rate_limited_with_a_count_of_what_was_dropped() -> None:
    clock = Clock()
    limit = RateLimitedLog(burst=3, period=10, clock=clock)
    records = [logging.LogRecord("aiohttp.server", logging.ERROR, "x", 1, "boom", None, None)
               for _ in range(100)]  # fmt: skip
    assert sum(limit.filter(r) for r in records) == 3
    assert limit.dropped == 97
    clock.now += 10
    later = logging.LogRecord("aiohttp.server", logging.ERROR, "x", 1, "boom", None, None)
    assert limit.filter(later)
    assert "97 similar messages dropped" in later.getMessage()


# -- the listener's certificate ----------------------------------------------------------------


def test_a_self_signed_certificate_is_made_once_and_pinned_by_fingerprint(tmp_path: Path) -> None:
    cert, key = tmp_path / "http.crt", tmp_path / "http.key"
    assert ensure_self_signed(cert, key, common_name="shop-1", names=["gw.lan", "127.0.0.1"])
    assert key.stat().st_mode & 0o777 == 0o600
    first = fingerprint(cert)
    assert len(first) == 95 and first.count(":") == 31
    assert not ensure_self_signed(cert, key, common_name="shop-1", names=["gw.lan"])
    assert fingerprint(cert) == first
    context = server_context(cert, key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    key.unlink()
    with pytest.raises(TlsSetupError, match="without the other"):
        ensure_self_signed(cert, key, common_name="shop-1", names=[])
    (tmp_path / "junk.crt").write_text("junk")
    with pytest.raises(TlsSetupError):
        fingerprint(tmp_path / "junk.crt")
    with pytest.raises(TlsSetupError):
        server_context(tmp_path / "junk.crt", cert)
