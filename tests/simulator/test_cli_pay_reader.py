"""``posgw-sim pay --reader pcsc://...``: the kernel against a card in a real PC/SC reader.

The card is a virtual EMV card attached as a virtual ICC to vsmartcard's vpcd, inside the test
session's private pcscd; ``posgw-sim`` runs as a separate process and reaches it through pyscard
and pcscd exactly as it would reach a scheme test card on a desk reader.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.card import VirtualCard

pytestmark = pytest.mark.pcsc

POSGW_SIM = str(Path(sys.executable).parent / "posgw-sim")


async def _pay(*args: str) -> tuple[int, dict[str, Any], str]:
    proc = await asyncio.create_subprocess_exec(
        POSGW_SIM, "pay", "--json", "--random-draw", "99", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, json.loads(out) if out.strip() else {}, err.decode()


@pytest.mark.parametrize(
    ("profile", "protocol", "oda"),
    [("visa_credit", "T=1", "DDA"), ("cda_card", "T=0", "CDA"), ("mastercard_debit", "T=1", "CDA")],
)
async def test_pay_through_pcscd_and_vpcd(
    attach_icc: Any, vpcd_readers: list[Any], profile: str, protocol: str, oda: str
) -> None:
    await attach_icc(VirtualCard.from_profile(profile), protocol=protocol)
    code, out, err = await _pay("--reader", f"pcsc://{vpcd_readers[0].name}", "--amount", "12.50")
    assert code == 0, err
    assert out["decision"] == "approved"
    assert out["oda_method"] == oda
    assert out["oda_verified"] is True
    assert out["masked_pan"].count("*") == 6
    commands = [entry["command"] for entry in out["trace"]]
    assert "GENERATE AC" in commands
    if protocol == "T=0":  # the virtual ICC answered 61xx and the kernel fetched the rest
        assert "GET RESPONSE" in commands


async def test_pay_reader_host_offline_takes_the_unable_to_go_online_path(
    attach_icc: Any, vpcd_readers: list[Any]
) -> None:
    await attach_icc(VirtualCard.from_profile("visa_credit"))
    code, out, err = await _pay("--reader", f"pcsc://{vpcd_readers[0].name}", "--amount", "12.50",
                                "--host", "offline")
    assert out["authorisation_response_code"] in ("Y3", "Z3"), err
    assert code == (0 if out["decision"] == "approved" else 1)


async def test_pay_reader_with_no_such_reader_fails_cleanly(vpcd_readers: list[Any]) -> None:
    code, out, err = await _pay("--reader", "pcsc://No Such Reader*", "--amount", "1.00")
    assert code == 3
    assert out == {}
    assert "error:" in err
    assert "Traceback" not in err
