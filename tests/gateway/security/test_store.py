"""Till credentials, manager accounts and refund approvals in the journal file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.journal import Journal
from gateway.security import (
    CredentialStore,
    InvalidName,
    PrincipalExists,
    UnknownPrincipal,
    WeakPassword,
)
from gateway.security.service import SecurityService
from gateway.security.store_core import CREDENTIALS_FRESH_S
from gateway.security.tokens import hash_token, looks_like_token, new_token

PASSWORD = "correct horse battery"


def _store(tmp_path: Path) -> CredentialStore:
    return CredentialStore.open(tmp_path / "journal.db", clock=lambda: 1_800_000_000.0)


def test_a_till_token_is_shown_once_and_stored_only_as_its_hash(tmp_path: Path) -> None:
    store = _store(tmp_path)
    token = store.add_till("front-1", lanes=[1, 2], refund_limit=5000, actor="cli:test")
    assert looks_like_token(token)
    till = store.till_for_token(token)
    assert till is not None
    assert (till.name, till.lanes, till.refunds, till.refund_limit) == (
        "front-1", frozenset({1, 2}), True, 5000)  # fmt: skip
    assert till.actor == "till:front-1"
    assert till.may_use_lane(2) and not till.may_use_lane(3)
    assert till.needs_approval(5001) and not till.needs_approval(5000)
    store.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("journal.db*"))
    assert token.encode() not in raw
    assert hash_token(token).encode() in raw


def test_revoking_and_rotating_move_the_version(tmp_path: Path) -> None:
    store = _store(tmp_path)
    v0 = store.version()
    old = store.add_till("front-1", actor="cli:test")
    v1 = store.version()
    new = store.rotate_till("front-1", actor="cli:test")
    v2 = store.version()
    assert v0 < v1 < v2
    assert store.till_for_token(old) is None
    assert store.till_for_token(new) is not None
    store.revoke_till("front-1", actor="cli:test")
    assert store.version() > v2
    assert store.till_for_token(new) is None
    assert [t.revoked_ms is not None for t in store.tills()] == [True]
    with pytest.raises(UnknownPrincipal):
        store.revoke_till("front-1", actor="cli:test")
    # a revoked name may be given a new credential
    again = store.add_till("front-1", actor="cli:test")
    assert store.till_for_token(again) is not None


def test_names_and_duplicates_are_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add_till("front-1", actor="cli:test")
    with pytest.raises(PrincipalExists):
        store.add_till("front-1", actor="cli:test")
    for bad in ("", "a b", "x" * 33, "till;drop", "²"):
        with pytest.raises(InvalidName):
            store.add_till(bad, actor="cli:test")
    assert store.till_for_token("pgt_" + "a" * 52) is None
    assert store.till_for_token("not a token") is None


def test_managers_use_argon2id_and_never_store_the_password(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add_manager("alice", PASSWORD, role="manager", actor="cli:test")
    with pytest.raises(WeakPassword):
        store.add_manager("bob", "short", role="viewer", actor="cli:test")
    with pytest.raises(PrincipalExists):
        store.add_manager("alice", PASSWORD, role="viewer", actor="cli:test")
    stored = store.conn.execute("SELECT password_hash FROM managers").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    account = store.check_password("alice", PASSWORD)
    assert account is not None and account.role == "manager"
    assert store.check_password("alice", PASSWORD + "!") is None
    assert store.check_password("nobody", PASSWORD) is None
    store.set_password("alice", "another long password", actor="cli:test")
    assert store.check_password("alice", PASSWORD) is None
    store.disable_manager("alice", actor="cli:test")
    assert store.check_password("alice", "another long password") is None


def test_an_approval_is_asked_once_approved_by_a_manager_and_used_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    asked = store.request_approval("pay_abc", 9000, "front-1")
    assert store.request_approval("pay_abc", 9000, "front-1").id == asked.id
    assert store.consume_approval("pay_abc", 9000, "front-1") is None
    assert [a.id for a in store.pending_approvals()] == [asked.id]
    approved = store.approve(asked.id, manager="alice")
    assert approved.approved_by == "alice"
    with pytest.raises(UnknownPrincipal):
        store.approve(asked.id, manager="alice")
    assert store.consume_approval("pay_abc", 9000, "front-2") is None  # another till
    assert store.consume_approval("pay_abc", 9000, "front-1") is not None
    assert store.consume_approval("pay_abc", 9000, "front-1") is None  # used
    assert store.pending_approvals() == []


def test_every_administrative_change_is_audited_without_secrets(tmp_path: Path) -> None:
    store = _store(tmp_path)
    token = store.add_till("front-1", actor="cli:test")
    store.revoke_till("front-1", actor="cli:test")
    store.add_manager("alice", PASSWORD, role="viewer", actor="cli:test")
    asked = store.request_approval("pay_abc", 9000, "front-1")
    store.approve(asked.id, manager="alice")
    entries = store.audit_entries()
    assert [(e.actor, e.action, e.subject) for e in entries] == [
        ("cli:test", "till.add", "front-1"),
        ("cli:test", "till.revoke", "front-1"),
        ("cli:test", "manager.add", "alice"),
        ("manager:alice", "refund.approve", "pay_abc"),
    ]
    text = repr(entries)
    assert token not in text and PASSWORD not in text and hash_token(token) not in text
    assert store.verify_audit().ok


async def test_the_service_sees_a_revocation_made_by_another_process(tmp_path: Path) -> None:
    async with Journal.open(tmp_path / "journal.db"):  # the daemon's journal, same file
        now = [0.0]
        service = await SecurityService.open(tmp_path / "journal.db", monotonic=lambda: now[0])
        try:
            cli = _store(tmp_path)  # the posgw command, its own connection
            token = cli.add_till("front-1", actor="cli:test")
            till = await service.till_for(token)
            assert till is not None and till.name == "front-1"
            assert await service.till_for(new_token()) is None
            cli.revoke_till("front-1", actor="cli:test")
            now[0] += CREDENTIALS_FRESH_S + 0.001  # the command waits this long before it returns
            assert await service.till_for(token) is None
            cli.close()
        finally:
            await service.close()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE x (y)")
    other.commit()
    other.close()
    with pytest.raises(Exception, match="not a posgw journal"):
        CredentialStore.open(tmp_path / "other.db")
