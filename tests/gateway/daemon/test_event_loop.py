"""The daemon's event loop (gateway/daemon/event_loop.py, docs/daemon.md "Event loop"): asyncio's
own by default, uvloop when configured, and a clear refusal when uvloop is named but missing.
``test_lifecycle.py`` runs ``posgw run`` on each loop; the modules marked ``both_loops`` run the
daemon's I/O on both."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from gateway.daemon import event_loop
from gateway.daemon.cli import main as posgw
from gateway.daemon.config import ConfigError, parse_config
from tests.gateway.daemon_support import slot_name, vault_key_file

MINIMAL = {
    "shop": "s1",
    "acquirer": {"url": "https://acq.example", "merchant_id": "M1"},
    "lanes": [{"id": 1, "reader": "sim://lane1"}],
}


def test_asyncio_is_the_default_and_uvloop_can_be_chosen() -> None:
    assert parse_config(MINIMAL).event_loop == "asyncio"
    assert parse_config({**MINIMAL, "event_loop": "uvloop"}).event_loop == "uvloop"
    with pytest.raises(ConfigError, match=r"^config: event_loop: Input should be 'asyncio' or"):
        parse_config({**MINIMAL, "event_loop": "trio"})


@pytest.mark.parametrize("name", ["uvloop", "asyncio"])
def test_run_runs_the_coroutine_on_the_named_loop(name: event_loop.EventLoopName) -> None:
    async def which() -> tuple[str, str]:
        return event_loop.running_loop_name(), type(asyncio.get_running_loop()).__module__

    running, module = event_loop.run(which(), name)
    assert running == name
    assert module.startswith("uvloop") == (name == "uvloop")


def test_uvloop_named_but_missing_is_a_config_error_that_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what a machine without it imports

    async def never() -> None:
        raise AssertionError("must not run")

    main = never()
    with pytest.raises(ConfigError, match=r'install it .* or set event_loop = "asyncio"'):
        event_loop.run(main, "uvloop")
    assert main.cr_frame is None  # closed, so no "never awaited" warning either
    assert event_loop.run(asyncio.sleep(0, "ran"), "asyncio") == "ran"


def test_posgw_run_without_uvloop_exits_2_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    config = tmp_path / "posgw.toml"
    config.write_text(
        f'shop = "s1"\nevent_loop = "uvloop"\n[journal]\npath = "journal.db"\n[vault]\n'
        f'key_file = "{vault_key_file(tmp_path)}"\n'
        '[acquirer]\nurl = "http://127.0.0.1:9"\nmerchant_id = "M1"\n'
        f'[[lanes]]\nid = 1\nreader = "sim://{slot_name()}"\n'
    )
    with caplog.at_level("ERROR", logger="gateway"):
        assert posgw(["run", "--config", str(config)]) == 2
    (record,) = [r for r in caplog.records if r.name == "gateway"]
    assert record.getMessage().startswith('posgw cannot start: event_loop = "uvloop" but uvloop')
    assert not (tmp_path / "journal.db").exists()  # refused before anything was opened
