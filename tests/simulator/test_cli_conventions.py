"""One set of CLI conventions for ``posgw`` and ``posgw-sim`` (docs/cli.md): ``--config`` for
configuration files, ``--json`` wherever results are printed, the documented exit codes."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from gateway.daemon.cli import main as posgw
from gateway.daemon.config import EXAMPLE_CONFIG
from simulator.cli import build_parser
from simulator.cli import main as posgw_sim
from terminal.config import DEFAULT_CONFIG_FILE
from tests.simulator.sandbox_support import SIM, env


def test_check_config_takes_config_and_json(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:  # fmt: skip
    assert posgw(["check-config", "--config", str(EXAMPLE_CONFIG)]) == 0
    assert capsys.readouterr().out.startswith(f"{EXAMPLE_CONFIG}: OK")
    assert posgw(["check-config", "--config", str(EXAMPLE_CONFIG), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True and summary["lanes"]
    # the positional form still works, with a deprecation warning
    assert posgw(["check-config", str(EXAMPLE_CONFIG)]) == 0
    assert "deprecated" in capsys.readouterr().err
    assert posgw(["check-config"]) == 2
    assert "--config FILE is required" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("shop = 3\n")
    assert posgw(["check-config", "--config", str(bad), "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is False and err.startswith("error:")


def test_version_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert posgw(["version", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "posgw"


@pytest.mark.parametrize("argv", [
    ["decode", "9F0200", "--json"], ["pay", "--amount", "1", "--json"], ["replay", "f", "--json"],
    ["cards", "--json"], ["serve", "--config", "f", "--json"], ["insert", "--lane", "1", "--json"],
    ["tap", "--lane", "1", "--json"], ["remove", "--lane", "1", "--json"], ["acquirer", "--json"],
    ["till", "--json", "lanes"],
])  # fmt: skip
def test_every_result_printing_command_takes_json(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).json is True


def test_pay_takes_the_kernel_configuration_as_config(capsys: pytest.CaptureFixture[str]) -> None:
    code = posgw_sim(["pay", "--json", "--config", str(DEFAULT_CONFIG_FILE), "--amount", "12.50",
                      "--random-draw", "99"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "approved"
    assert posgw_sim(["pay", "--config", "/nonexistent.json", "--amount", "1.00"]) == 2
    assert "--config" in capsys.readouterr().err


async def test_acquirer_json_announces_its_url() -> None:
    proc = await asyncio.create_subprocess_exec(
        SIM, "acquirer", "--port", "0", "--json", env=env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        assert json.loads(line)["listening"].startswith("http://127.0.0.1:")
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
