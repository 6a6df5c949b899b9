"""Terminals by stable identity, supervised with keep-alive probes.

``serial://bt/ADDR:CHANNEL``: there is no Bluetooth adapter here, so the kernel's RFCOMM sysfs
entries (``/sys/class/tty/rfcommN/{address,channel}``) are written into a directory of the
test's own, and the ``/dev/rfcommN`` it names is a symlink to a real pseudo-terminal with the
virtual terminal behind it: everything past the lookup is the real line.

Keep-alive: :class:`~drivers.lifecycle.DeviceSupervisor` probes a real virtual terminal (pty and
TCP); a terminal that stops answering goes *not ready*, and *ready* again when it answers.
The supervised pty runs 8N1: this machine's kernel refuses (EINVAL) to set PARENB again on a
pty that was opened 7E1 once, so a second open of the same pty at 7E1 fails here (a real UART
does not do that; see the report of issue 10).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from drivers import Money
from drivers.errors import ConfigurationError
from drivers.lifecycle import Backoff, DeviceSupervisor, SupervisorState
from drivers.serial import TerminalUnavailable, TpeTerminal, resolve_rfcomm
from drivers.serial import create as create_serial
from drivers.tcp_backend import create as create_tcp
from simulator.tpe import Faults
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark

pytestmark = [pytest.mark.serial, pytest.mark.usefixtures("no_leaks")]

FAST = ("ack_timeout=0.1&frame_timeout=0.3&eot_timeout=0.1&answer_timeout=2"
        "&cancel_grace=0.1&keepalive=0&tries=2")
ADDR = "00:1A:7D:DA:71:13"


def bind_rfcomm(root: Path, index: int, address: str, channel: int, target: str) -> None:
    """What ``rfcomm bind`` leaves behind: the sysfs attributes and the device node."""
    entry = root / "sys" / f"rfcomm{index}"
    entry.mkdir(parents=True)
    (entry / "address").write_text(address.lower() + "\n")
    (entry / "channel").write_text(f"{channel}\n")
    (root / "dev").mkdir(exist_ok=True)
    (root / "dev" / f"rfcomm{index}").symlink_to(target)


def test_resolve_rfcomm_by_address_and_channel(tmp_path: Path) -> None:
    bind_rfcomm(tmp_path, 0, "11:22:33:44:55:66", 1, "/dev/null")
    bind_rfcomm(tmp_path, 1, ADDR, 3, "/dev/null")
    bind_rfcomm(tmp_path, 2, ADDR, 1, "/dev/null")
    (tmp_path / "sys" / "rfcomm9").mkdir()  # half-released: no attributes
    found = resolve_rfcomm(ADDR, 1, sysfs=tmp_path / "sys", dev=tmp_path / "dev")
    assert found == str(tmp_path / "dev" / "rfcomm2")
    assert resolve_rfcomm(ADDR, 2, sysfs=tmp_path / "sys", dev=tmp_path / "dev") is None


@pytest.mark.parametrize("bad", [
    "serial://bt/00:1A:7D:DA:71?protocol=caisse-ap",      # address too short, no channel
    "serial://bt/00:1A:7D:DA:71:13?protocol=caisse-ap",   # no channel
    "serial://bt/00:1A:7D:DA:71:13:31?protocol=caisse-ap",  # channel above 30
    "serial://bt/GG:1A:7D:DA:71:13:1",                    # not hex
])
def test_bad_bluetooth_urls(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="ADDR:CHANNEL"):
        create_serial(bad)


async def test_bluetooth_terminal_pays_through_its_rfcomm_tty(tmp_path: Path,
                                                              tpe_factory: Any) -> None:
    tpe = await tpe_factory(protocol="caisse-ap")
    bind_rfcomm(tmp_path, 4, ADDR, 1, tpe.path)
    term = create_serial(f"serial://bt/{ADDR.lower()}:1?protocol=caisse-ap&{FAST}",
                         sysfs=tmp_path / "sys", dev=tmp_path / "dev")
    async with term:
        result = await term.pay(Money(1250, "978"))
        assert term.diagnostics()["device"] == str(tmp_path / "dev" / "rfcomm4")
    assert result.approved
    assert [c.amount for c in tpe.brain.charges] == [1250]
    unbound = create_serial(f"serial://bt/{ADDR}:2?protocol=caisse-ap&{FAST}",
                            sysfs=tmp_path / "sys", dev=tmp_path / "dev")
    with pytest.raises(TerminalUnavailable, match="rfcomm bind"):
        await unbound.open()


async def _supervised(term_factory: Any, go_silent: Any, come_back: Any) -> None:
    states: list[SupervisorState] = []
    changed = asyncio.Event()

    def seen(state: SupervisorState) -> None:
        states.append(state)
        changed.set()

    async def setup() -> TpeTerminal:
        term: TpeTerminal = term_factory()
        await term.open()
        return term

    async def probe(term: TpeTerminal) -> None:
        await term.probe()

    supervisor: DeviceSupervisor[TpeTerminal] = DeviceSupervisor(
        "lane[1].tpe", setup, backoff=Backoff(initial=0.05, maximum=0.1),
        probe=probe, probe_interval=0.05)
    supervisor.on_state_change = seen

    async def reach(state: SupervisorState) -> None:
        async with asyncio.timeout(10):
            while supervisor.state is not state:
                changed.clear()
                await changed.wait()

    task = asyncio.create_task(supervisor.run())
    try:
        await reach(SupervisorState.READY)
        await go_silent()                    # the terminal stops answering
        await reach(SupervisorState.NOT_READY)
        assert supervisor.counters["probe_failures"] >= 1
        assert "keep-alive" in (supervisor.last_error or "")
        await come_back()                    # and comes back
        await reach(SupervisorState.READY)
        device = supervisor.device
        assert device is not None
        assert (await device.pay(Money(800, "978"))).approved
    finally:
        await supervisor.stop()
        await task
    ready_again = states.index(SupervisorState.NOT_READY) + 1
    assert states[0] is SupervisorState.READY
    assert SupervisorState.READY in states[ready_again:]


async def test_silent_pty_terminal_goes_not_ready_then_ready(tpe_factory: Any) -> None:
    faults = Faults()
    tpe = await tpe_factory(protocol="concert-v2", faults=faults, seven_bit=False)

    async def go_silent() -> None:
        faults.silent = True

    async def come_back() -> None:
        faults.silent = False

    await _supervised(lambda: create_serial(f"serial://{tpe.path}?framing=8N1&{FAST}"), go_silent,
                      come_back)


async def test_unreachable_tcp_terminal_goes_not_ready_then_ready(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory()
    url = f"tcp://127.0.0.1:{tpe.port}?keepalive=0&answer_timeout=2&connect_timeout=0.5"

    async def go_silent() -> None:  # over TCP: the terminal no longer accepts connections
        await tpe.stop()

    async def come_back() -> None:
        await tpe.start()  # on the same port

    await _supervised(lambda: create_tcp(url), go_silent, come_back)
