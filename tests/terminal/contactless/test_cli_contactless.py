"""``posgw-sim pay --interface contactless`` on the profiles that need a reader setting (issue 4).

``tests/simulator/test_cli_pay.py`` runs every contactless profile that works with the shipped
terminal configuration; the profiles whose ``expected.config`` changes a reader limit (an
offline approval needs a Reader Contactless Floor Limit above the amount) run here through the
same CLI with ``--terminal-config``, so that every ``ctls_*`` profile reaches its expected
outcome through ``posgw-sim pay``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import simulator
from simulator.cli import main
from terminal.config import DEFAULT_CONFIG_FILE

PROFILES = [
    (path.stem, json.loads(path.read_text())["expected"])
    for path in sorted((Path(simulator.__file__).resolve().parent / "profiles").glob("ctls_*.json"))
]
WITH_CONFIG = [(name, expected) for name, expected in PROFILES if "config" in expected]


def test_profiles_with_a_reader_setting_exist() -> None:
    assert {name for name, _ in WITH_CONFIG} >= {"ctls_mc_cda_offline", "ctls_visa_offline_fdda"}


@pytest.mark.parametrize(("name", "expected"), WITH_CONFIG, ids=[n for n, _ in WITH_CONFIG])
def test_cli_pay_contactless_profile_with_terminal_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, expected: dict[str, Any]
) -> None:
    config = json.loads(DEFAULT_CONFIG_FILE.read_text())
    config["aids"] = [{**aid, **expected["config"]} for aid in config["aids"]]
    path = tmp_path / "terminal.json"
    path.write_text(json.dumps(config))
    code = main(["pay", "--json", "--interface", "contactless", "--latency-ms", "0",
                 "--card", name, "--amount", expected["amount"], "--terminal-config", str(path)])
    out = json.loads(capsys.readouterr().out)
    assert expected["contactless"] == "APPROVED" and not expected.get("online")
    assert (code, out["outcome"], out["decision"]) == (0, "APPROVED", "approved")
    assert (out["oda_method"], out["oda_verified"]) == (expected["oda"], True)
    assert "authorisation_response_code" not in out  # approved offline, no acquirer
