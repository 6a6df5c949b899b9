"""``posgw close-day``: on the box with the daemon stopped; refused while it runs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import running, slot_name, vault_key_file
from tests.gateway.day.day_support import day_daemon, pay, till_session

REPO = Path(__file__).resolve().parents[3]


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.daemon.cli", *args, cwd=REPO, env={**os.environ},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_close_day_from_the_command_line(tmp_path: Path) -> None:
    host = AcquirerHost()
    url = await host.start()
    slot = slot_name()
    config = tmp_path / "posgw.toml"
    config.write_text(
        f'shop = "t"\n[journal]\npath = "journal.db"\n'
        f'[vault]\nkey_file = "{vault_key_file(tmp_path)}"\n'
        f'[acquirer]\nurl = "{url}"\nmerchant_id = "SHOP0001"\n'
        f'[[lanes]]\nid = 1\nreader = "sim://{slot}"\n'
    )
    try:
        async with till_session(tmp_path) as http, running(
            day_daemon(tmp_path, url, [slot])
        ) as daemon:
            assert (await pay(daemon, http, slot, 1300))["state"] == "COMPLETED"
            code, _out, err = await _cli("close-day", "--config", str(config))
            assert code == 2 and "POST /api/days/close" in err, err
        code, out, err = await _cli("close-day", "--config", str(config), "--json")
        assert code == 0, err
        day = json.loads(out)
        assert (day["day"], day["differences"], day["reconciled"]) == (1, 0, True)
        assert day["closed_by"].startswith("cli:")
        assert day["record"]["journal_lines"] == [
            {"currency": "EUR", "kind": "sales_net", "count": 1, "amount": 1300}
        ]
        code, out, err = await _cli("close-day", "--config", str(config))
        assert code == 0 and out.startswith("day 2 closed by cli:"), err
    finally:
        await host.stop()
