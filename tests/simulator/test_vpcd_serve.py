"""``posgw-sim serve`` machinery: lanes, control socket, virtual EMV cards through real pcscd."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from drivers import Interface, ReaderEventKind, open_device
from simulator import cli_devices
from simulator.control import request
from simulator.pcscd import PrivatePcscd
from simulator.serve import DeviceServer, LaneConfig, ServeConfigError, load_config
from terminal.transport import exchange
from tests.fixtures.pcsc import wait_slots_empty

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")


def test_load_config_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "lanes.toml"
    toml.write_text('[[lanes]]\nid = 3\nreader = "Shop A"\ncard = "visa_credit"\n')
    assert load_config(toml) == [LaneConfig(3, "Shop A", "visa_credit")]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lanes": [{"id": "one"}]}))
    with pytest.raises(ServeConfigError, match=r"lanes\[0\]\.id"):
        load_config(bad)
    bad.write_text("{}")
    with pytest.raises(ServeConfigError, match="non-empty"):
        load_config(bad)


def test_register_adds_subcommands() -> None:
    parser = argparse.ArgumentParser()
    cli_devices.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tap", "--lane", "2", "--card", "ctls_visa_online", "--pin", "1234"])
    assert (args.command, args.lane, args.card, args.pin) == ("tap", 2, "ctls_visa_online", "1234")
    assert parser.parse_args(["serve", "--config", "x.toml"]).config == "x.toml"


@pytest.mark.pcsc
async def test_insert_tap_remove_over_control_socket(
    pcscd: PrivatePcscd, tmp_path: Path
) -> None:
    server = DeviceServer([LaneConfig(1, "posgw Lane")], pcscd=pcscd)
    control = tmp_path / "sim.sock"
    await server.start(control)
    try:
        answer = await asyncio.to_thread(
            request, control, {"cmd": "insert", "lane": 1, "card": "visa_credit", "pin": "1234"}
        )
        assert answer["ok"], answer
        assert "1234" not in json.dumps(answer)  # the PIN never comes back
        assert answer["interface"] == "contact"
        async with await open_device(f"pcsc://{answer['contact_reader']}") as reader:
            events = reader.events()
            async with asyncio.timeout(10):
                await reader.wait_for_card()
            response = await exchange(reader, SELECT_PSE)
            assert response.sw == 0x9000
            assert response.data[0] == 0x6F  # an FCI template from the virtual EMV card
            removed = await asyncio.to_thread(request, control, {"cmd": "remove", "lane": 1})
            assert removed["card"] is None
            async with asyncio.timeout(10):
                while (await anext(events)).kind is not ReaderEventKind.CARD_REMOVED:
                    pass
            await events.aclose()

        tapped = await asyncio.to_thread(
            request, control, {"cmd": "tap", "lane": 1, "card": "ctls_visa_online"}
        )
        assert tapped["ok"], tapped
        async with await open_device(f"pcsc://{tapped['contactless_reader']}") as reader:
            async with asyncio.timeout(10):
                await reader.wait_for_card()
            assert reader.interface is Interface.CONTACTLESS
            response = await exchange(reader, SELECT_PPSE)
            assert response.sw == 0x9000

        refused = await asyncio.to_thread(request, control, {"cmd": "insert", "lane": 9})
        assert not refused["ok"]
        assert "no lane" in refused["error"]
        unknown = await asyncio.to_thread(
            request, control, {"cmd": "insert", "lane": 1, "card": "no_such_profile"}
        )
        assert not unknown["ok"]
        status = await asyncio.to_thread(request, control, {"cmd": "status"})
        assert status["lanes"][0]["lane"] == 1
    finally:
        await server.stop()
        await asyncio.to_thread(wait_slots_empty, [r.name for r in pcscd.readers], 3.0)


@pytest.mark.pcsc
async def test_serve_and_insert_remove_as_separate_processes(tmp_path: Path) -> None:
    """``posgw-sim serve --config`` in one process, ``posgw-sim insert|remove`` in others,
    and pyscard (through the serve process's own pcscd) sees the card come and go."""
    sim = str(Path(sys.executable).parent / "posgw-sim")
    config = tmp_path / "lanes.json"
    config.write_text(json.dumps({"lanes": [{"id": 4, "reader": "posgw CLI Lane"}]}))
    control = tmp_path / "cli.sock"
    serve = await asyncio.create_subprocess_exec(
        sim, "serve", "--config", str(config), "--control", str(control),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def card(*args: str) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            sim, *args, "--lane", "4", "--control", str(control),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        answer: dict[str, Any] = json.loads(out)
        return answer

    try:
        assert serve.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(30):
            while not lines or not lines[-1].startswith("control socket:"):
                line = (await serve.stdout.readline()).decode()
                assert line, f"serve ended early: {lines}"
                lines.append(line.strip())
        socket_line = next(x for x in lines if x.startswith("export PCSCLITE_CSOCK_NAME="))
        inserted = await card("insert", "--card", "visa_credit", "--pin", "1234")
        assert inserted["ok"]
        assert "1234" not in json.dumps(inserted)
        env = {**os.environ, "PCSCLITE_CSOCK_NAME": socket_line.split("=", 1)[1]}
        reader = inserted["contact_reader"]
        probe = ("import sys, time\n"
                 "from smartcard.System import readers\n"
                 "r = [x for x in readers() if str(x) == sys.argv[1]][0]\n"
                 "for _ in range(200):  # until pcscd has polled the slot\n"
                 "    try:\n"
                 "        c = r.createConnection(); c.connect(); break\n"
                 "    except Exception:\n"
                 "        time.sleep(0.05)\n"
                 "print(bytes(c.getATR()).hex())\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", probe, reader, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        assert out.strip().startswith(b"3b")  # an ATR, from the card the CLI inserted
        removed = await card("remove")
        assert removed["card"] is None
    finally:
        if serve.returncode is None:
            serve.send_signal(signal.SIGTERM)
        await asyncio.wait_for(serve.wait(), 30)
    assert serve.returncode == 0
    assert not control.exists()
