"""Opening a PC/SC reader without pcscd says "pcscd is not running", not "no reader matches"."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from drivers import ReaderRemoved
from drivers.pcsc import NativePcscReader
from drivers.pcsc.common import no_reader_error
from drivers.pcsc.errors import PcscdNotRunning
from simulator.pcscd import PrivatePcscd


def _reader(path: Path | str, pattern: str = "posgw Lane*") -> NativePcscReader:
    return NativePcscReader(socket=str(path), url=f"pcsc://{pattern}", pattern=pattern,
                            share="exclusive", protocol="any", timeout=5.0)  # fmt: skip


async def test_no_socket_means_pcscd_is_not_running(tmp_path: Path) -> None:
    missing = tmp_path / "pcscd.comm"
    reader = _reader(missing)
    with pytest.raises(PcscdNotRunning, match="pcscd is not running") as caught:
        await reader.open()
    assert str(missing) in str(caught.value)
    assert "no reader matches" not in str(caught.value)
    await reader.close()


def test_a_dead_socket_means_pcscd_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "dead.comm"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))  # the file stays; nothing listens once closed
    error = no_reader_error("posgw Lane*", str(path))
    assert isinstance(error, PcscdNotRunning)
    assert "pcscd is not running (nothing answers" in str(error)


@pytest.mark.pcsc
async def test_a_running_pcscd_without_that_reader_says_so(pcscd: PrivatePcscd) -> None:
    reader = _reader(pcscd.socket_path, "No Such Reader*")
    with pytest.raises(ReaderRemoved, match="no reader matches the pattern"):
        await reader.open()
    await reader.close()
