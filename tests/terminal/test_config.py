"""Terminal configuration: validation naming the field, the default file, terminal data."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from terminal.config import (
    DEFAULT_CONFIG_FILE,
    ConfigError,
    TerminalConfig,
    exception_file_entry,
)
from terminal.environment import Environment, TransactionRequest, TransactionType


def test_default_config_is_valid_and_uses_the_test_keys() -> None:
    config = TerminalConfig.default()
    assert {a.aid for a in config.aids} >= {"A0000000031010", "A0000000041010", "A0000000421010"}
    assert len(config.capk_store()) > 0
    assert config.cobadge_brand_priority == ["A0000000421010"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"terminal_capabilities": "E0F8"}, "terminal_capabilities"),
        ({"terminal_type": "zz"}, "terminal_type"),
        ({"aids": [{"aid": "A0000000031010", "tac_denial": "00"}]}, "aids.0.tac_denial"),
        ({"aids": [{"aid": "A000"}]}, "aids.0.aid"),
        (
            {"aids": [{"aid": "A0000000031010", "random_selection_target_percent": 120}]},
            "aids.0.random_selection_target_percent",
        ),
        (
            {
                "aids": [
                    {
                        "aid": "A0000000031010",
                        "random_selection_target_percent": 30,
                        "random_selection_max_target_percent": 10,
                    }
                ]
            },
            "aids.0.random_selection_max_target_percent",
        ),
        ({"exception_file": ["4761739001010010"]}, "exception_file"),
        ({"terminal_country_code": 1000}, "terminal_country_code"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_validation_error_names_the_field(patch: dict, field: str, tmp_path: Path) -> None:
    document = json.loads(DEFAULT_CONFIG_FILE.read_text())
    document.update(patch)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as info:
        TerminalConfig.load(path)
    assert field in str(info.value)
    assert "4761739001010010" not in str(info.value)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError):
        TerminalConfig.load(path)
    with pytest.raises(ConfigError):
        TerminalConfig.load(tmp_path / "missing.json")


def test_book3_10_6_1_exception_file_holds_hashes_only() -> None:
    entry = exception_file_entry("4761739001010010", 1)
    assert len(entry) == 64
    assert "4761739001010010" not in entry
    config = TerminalConfig.default().model_copy(update={"exception_file": [entry]})
    assert config.on_exception_file("4761739001010010", 1)
    assert not config.on_exception_file("4761739001010010", 2)
    assert not config.on_exception_file("4761739001010011", 1)
    whole = TerminalConfig.default().model_copy(
        update={"exception_file": [exception_file_entry("4761739001010010")]}
    )
    assert whole.on_exception_file("4761739001010010", 7)


def test_terminal_data_gives_every_terminal_tag() -> None:
    config = TerminalConfig.default()
    env = Environment.fixed(datetime(2025, 12, 31, 23, 59, 58), bytes.fromhex("CAFEBABE"))
    request = TransactionRequest(
        amount=12345,
        amount_other=2000,
        currency_code=978,
        transaction_type=TransactionType.CASHBACK,
        transaction_sequence_counter=42,
    )
    data = config.terminal_data(request, env, config.aids[0])
    assert data[0x9F02] == bytes.fromhex("000000012345")
    assert data[0x9F03] == bytes.fromhex("000000002000")
    assert data[0x5F2A] == bytes.fromhex("0978")
    assert data[0x9F1A] == bytes.fromhex("0250")
    assert data[0x9A] == bytes.fromhex("251231")
    assert data[0x9F21] == bytes.fromhex("235958")
    assert data[0x9C] == b"\x09"
    assert data[0x9F37] == bytes.fromhex("CAFEBABE")
    assert data[0x95] == bytes(5)
    assert data[0x9F35] == b"\x22"
    assert data[0x9F33] == bytes.fromhex("E0F8C8")
    assert len(data[0x9F40]) == 5
    assert data[0x9F41] == bytes.fromhex("00000042")
    assert data[0x9F09] == bytes.fromhex(config.aids[0].application_version)
    assert data[0x9F66] == bytes.fromhex(config.aids[0].ttq)
    assert len(data[0x9F1E]) == 8


def test_aid_config_matches_exact_then_partial() -> None:
    config = TerminalConfig.default()
    assert config.aid_config(bytes.fromhex("A0000000031010")).aid == "A0000000031010"
    assert config.aid_config(bytes.fromhex("A000000003101001")).aid == "A0000000031010"
    assert config.aid_config(bytes.fromhex("A0000009991010")) is None


def test_request_and_environment_validate() -> None:
    with pytest.raises(ValueError):
        TransactionRequest(amount=-1)
    with pytest.raises(ValueError):
        TransactionRequest(amount=100, amount_other=200)
    with pytest.raises(ValueError):
        Environment.fixed(datetime(2025, 1, 1), b"123")
    system = Environment.system()
    assert len(system.unpredictable_number()) == 4
    assert 1 <= system.random_percent() <= 99


@pytest.mark.parametrize("key", ["lcol", "ucol", "colour"])
def test_unknown_keys_are_refused_naming_them(key: str) -> None:
    # lcol/ucol were accepted and never read: velocity checking uses the card's 9F14/9F23
    # (EMV 4.4 Book 3, 10.6.3); the terminal has no offline limits of its own.
    document = json.loads(DEFAULT_CONFIG_FILE.read_text())
    document[key] = 5
    with pytest.raises(ConfigError, match=f"config: {key}: "):
        TerminalConfig.from_dict(document)
