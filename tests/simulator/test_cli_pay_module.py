"""``posgw-sim pay``: the profile's interface by default; ``--card-module`` plugs any card in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulator.cli import main


def _pay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["pay", "--json", "--random-draw", "99", "--latency-ms", "0", *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_a_contactless_only_profile_runs_contactless_by_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _pay(capsys, "--card", "ctls_visa_online", "--amount", "12.50")
    assert (code, out["interface"], out["decision"]) == (0, "contactless", "approved"), out
    code, out = _pay(capsys, "--card", "visa_credit", "--amount", "12.50")
    assert (code, out["interface"]) == (0, "contact")


MODULE = '''
from simulator.card import VirtualCard


class Channel:
    """Only async transceive: a card channel of one's own (here around a virtual card)."""

    def __init__(self):
        self.card = VirtualCard.from_profile("{profile}")
        self.commands = 0

    async def transceive(self, capdu):
        self.commands += 1
        return self.card.process(capdu)


class Processor:
    """Only process(): the simulator's card interface."""

    def __init__(self):
        self._card = VirtualCard.from_profile("{profile}")

    def process(self, capdu):
        return self._card.process(capdu)


def channel():
    return Channel()


def processor():
    return Processor()


def nothing():
    return 42
'''


@pytest.mark.parametrize(("factory", "profile", "interface"), [
    ("channel", "visa_credit", "contact"), ("processor", "mastercard_debit", "contact"),
    ("processor", "ctls_visa_online", "contactless")])  # fmt: skip
def test_card_module_plugs_in_a_channel_or_a_card(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, factory: str, profile: str,
    interface: str,
) -> None:
    module = tmp_path / f"mycards_{factory}_{profile}.py"
    module.write_text(MODULE.replace("{profile}", profile))
    args = ["--card-module", f"{module}:{factory}", "--amount", "12.50"]
    if interface == "contactless":  # no profile on these objects: the interface is given
        args += ["--interface", "contactless"]
    code, out = _pay(capsys, *args)
    assert (code, out["decision"], out["interface"]) == (0, "approved", interface), out


def test_card_module_errors_are_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = tmp_path / "mycards_bad.py"
    module.write_text(MODULE.replace("{profile}", "visa_credit"))
    for target, message in (
        (f"{module}:nothing", "neither async transceive"),
        (f"{module}:missing", "no callable 'missing'"),
        ("no_such_module_xyz:card", "no module"),
        (str(module), "expected module:factory"),
        (f"{tmp_path / 'absent.py'}:card", "no file"),
    ):
        assert main(["pay", "--card-module", target, "--amount", "1.00"]) == 2
        assert message in capsys.readouterr().err
