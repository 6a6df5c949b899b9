"""The ``posgw till|manager|audit|tls`` commands on a journal file, in human and JSON form."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gateway.daemon.cli import main as posgw
from gateway.security import CredentialStore
from gateway.security.store_core import CREDENTIALS_FRESH_S
from gateway.security.tokens import looks_like_token
from tests.gateway.security.test_daemon_access import _cli_config


def _json_of(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # one object, nothing else on stdout
    document: dict[str, object] = json.loads(out[0])
    return document


def test_the_admin_commands_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(_cli_config(tmp_path))
    assert posgw(["till", "add", "front-1", "--lanes", "1,2", "--refund-limit", "5000",
                  "--config", config, "--json"]) == 0  # fmt: skip
    added = _json_of(capsys)
    assert added["till"] == "front-1" and looks_like_token(str(added["token"]))
    assert posgw(["till", "list", "--config", config, "--json"]) == 0
    [till] = _json_of(capsys)["tills"]  # type: ignore[misc]
    assert (till["lanes"], till["refund_limit"], till["revoked_ms"]) == ([1, 2], 5000, None)
    assert str(added["token"]) not in json.dumps(till)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert posgw(["manager", "add", "alice", "--role", "viewer", "--password-stdin",
                  "--config", config, "--json"]) == 0  # fmt: skip
    assert _json_of(capsys) == {"manager": "alice", "role": "viewer"}
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert posgw(["manager", "add", "bob", "--role", "viewer", "--password-stdin",
                  "--config", config]) == 2  # fmt: skip
    assert "at least" in capsys.readouterr().err
    assert posgw(["till", "rotate", "front-1", "--config", config, "--json"]) == 0
    rotated = _json_of(capsys)["token"]
    assert rotated != added["token"]
    assert posgw(["till", "revoke", "front-1", "--config", config]) == 0
    assert posgw(["till", "revoke", "front-1", "--config", config]) == 2  # already revoked
    capsys.readouterr()
    assert posgw(["audit", "show", "--config", config, "--json"]) == 0
    actions = [e["action"] for e in _json_of(capsys)["entries"]]  # type: ignore[attr-defined]
    assert actions == ["till.add", "manager.add", "till.rotate", "till.revoke"]
    assert posgw(["audit", "verify", "--config", config, "--json"]) == 0
    verdict = _json_of(capsys)
    assert (verdict["ok"], verdict["count"]) == (True, 4)
    # the certificate is made by the daemon at its first start: none yet
    assert posgw(["tls", "fingerprint", "--config", config]) == 2
    assert "first start" in capsys.readouterr().err
    store = CredentialStore.open(tmp_path / "journal.db")
    assert [t.revoked_ms is not None for t in store.tills()] == [True]
    store.close()


def test_a_command_that_changed_a_credential_returns_after_the_fresh_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What it prints and its return wait until a running daemon's till requests can no longer
    rely on a credentials version read before the change (gateway/security/service.py)."""
    config = str(_cli_config(tmp_path))
    waits: list[tuple[float, str, bool]] = []

    def wait(seconds: float) -> None:
        printed = capsys.readouterr().out
        store = CredentialStore.open(tmp_path / "journal.db")
        try:
            revoked = any(t.revoked_ms is not None for t in store.tills())
        finally:
            store.close()
        waits.append((seconds, printed, revoked))

    monkeypatch.setattr("gateway.daemon.admin.wait_in_force", wait)
    assert posgw(["till", "add", "front-1", "--config", config]) == 0
    assert "front-1 added" in capsys.readouterr().out
    assert posgw(["till", "list", "--config", config]) == 0  # a read: no wait
    assert "front-1" in capsys.readouterr().out
    assert posgw(["till", "revoke", "front-1", "--config", config]) == 0
    assert "revoked" in capsys.readouterr().out
    assert posgw(["till", "revoke", "front-1", "--config", config]) == 2  # refused: no wait
    # each change waited, nothing printed yet, the change already committed
    assert waits == [(CREDENTIALS_FRESH_S, "", False), (CREDENTIALS_FRESH_S, "", True)]
