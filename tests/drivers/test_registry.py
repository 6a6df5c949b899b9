"""Device URL parsing, the backend registry and the sim:// backend (a real backend)."""

from __future__ import annotations

import asyncio
import sys

import pytest

import drivers
from drivers import (
    CardRemoved,
    ConfigurationError,
    DeviceClosed,
    Interface,
    NoCard,
    ProtocolError,
    ReaderEventKind,
    Timeout,
    classify_interface,
    create_device,
    open_device,
    parse_url,
    register_backend,
)
from drivers.base import CardReader
from drivers.sim import slot


class Echo:
    """Tiny applet: answers the command data with 9000; INS 0xEE sleeps."""

    def process(self, capdu: bytes) -> bytes:
        if capdu[1] == 0xEE:
            import time

            time.sleep(0.5)
        return capdu[5:] + b"\x90\x00"


def test_all_is_sorted() -> None:
    assert drivers.__all__ == sorted(drivers.__all__)


def test_parse_url_keeps_glob_question_mark_and_reads_query() -> None:
    url = parse_url("pcsc://Virtual PCD 00 0?")
    assert (url.scheme, url.target, url.params) == ("pcsc", "Virtual PCD 00 0?", {})
    url = parse_url("serial:///dev/ttyACM0?protocol=concert_v2&baud=9600")
    assert url.target == "/dev/ttyACM0"
    assert url.params == {"protocol": "concert_v2", "baud": "9600"}
    assert parse_url("pcsc://Reader%20A").target == "Reader A"


@pytest.mark.parametrize("bad", ["pcsc", "pcsc:/x", "://x", "pcsc://"])
def test_parse_url_rejects_malformed(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_url(bad)


def test_unknown_scheme_is_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown device scheme 'usb'"):
        create_device("usb://x")


def test_missing_library_is_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # a backend whose third-party library is absent: a fake module importing a missing package
    module = type(sys)("tests_fake_backend")
    monkeypatch.setitem(sys.modules, "tests_fake_backend", None)  # import -> ImportError
    register_backend("fake", "tests_fake_backend", requires="fakelib")
    try:
        with pytest.raises(ConfigurationError, match="not available"):
            create_device("fake://x")
        register_backend("fake2", "json.nonexistent_submodule_xyz", requires="fakelib")
        with pytest.raises(ConfigurationError):
            create_device("fake2://x")
    finally:
        drivers.registry.BACKENDS.pop("fake", None)
        drivers.registry.BACKENDS.pop("fake2", None)
    assert module is not None


def test_pcsc_backend_missing_pyscard_message(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "smartcard" or m.startswith("smartcard.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m.startswith("drivers.pcsc")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "smartcard", None)
    with pytest.raises(ConfigurationError, match="pip install pyscard"):
        create_device("pcsc://Any")


def test_classify_interface() -> None:
    contactless_atr = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
    assert classify_interface("Generic Reader", contactless_atr) is Interface.CONTACTLESS
    assert classify_interface("ACS ACR1252 PICC 00 01", None) is Interface.CONTACTLESS
    assert classify_interface("Generic Reader", bytes.fromhex("3BE000008131FE45")) is (
        Interface.CONTACT
    )
    assert classify_interface("Generic Reader", None) is Interface.UNKNOWN


async def test_sim_backend_round_trip_and_errors() -> None:
    lane = slot("reg-lane")
    device = create_device("sim://reg-lane?timeout=0.2")
    assert isinstance(device, CardReader)
    with pytest.raises(DeviceClosed):
        await device.transceive(b"\x00\xa4\x04\x00")
    async with device as reader:
        with pytest.raises(NoCard):
            await reader.power_on()
        events = reader.events()
        next_event = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        lane.insert(Echo())
        event = await asyncio.wait_for(next_event, 5)
        assert event.kind is ReaderEventKind.CARD_INSERTED
        assert event.interface is Interface.CONTACT
        atr = await reader.wait_for_card()
        assert atr == bytes.fromhex("3BE000008131FE45")
        assert await reader.transceive(bytes.fromhex("0001000002CAFE")) == b"\xca\xfe\x90\x00"
        with pytest.raises(ProtocolError):
            await reader.transceive(b"\x00\x01")
        with pytest.raises(Timeout):
            await reader.transceive(bytes.fromhex("00EE0000"))
        assert reader.diagnostics()["timeouts"] == 1
        await reader.power_on()
        lane.remove()
        with pytest.raises(CardRemoved):
            await reader.transceive(bytes.fromhex("00010000"))
        await events.aclose()
    await device.close()  # twice is fine
    with pytest.raises(DeviceClosed):
        await device.open()


class ThreadOf:
    """Tiny applet recording which thread answered each command."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def process(self, capdu: bytes) -> bytes:
        import threading

        self.threads.append(threading.get_ident())
        return b"\x90\x00"


@pytest.mark.parametrize(("query", "inline"), [("?inline=1", True), ("", False)])
async def test_sim_inline_cards_answer_on_the_loop_thread(query: str, inline: bool) -> None:
    import threading

    card = ThreadOf()
    name = f"inline-lane-{int(inline)}"
    slot(name).insert(card)
    async with create_device(f"sim://{name}{query}") as reader:
        assert isinstance(reader, CardReader)
        await reader.wait_for_card()
        await reader.power_on()
        assert await reader.transceive(bytes.fromhex("00A40400")) == b"\x90\x00"
        assert await reader.transceive(bytes.fromhex("00B20100")) == b"\x90\x00"
    loop_thread = threading.get_ident()
    assert (card.threads == [loop_thread] * 2) is inline
    with pytest.raises(ConfigurationError, match="inline"):
        create_device("sim://x?inline=maybe")


async def test_open_device_options_checked() -> None:
    with pytest.raises(ConfigurationError, match="unknown sim options"):
        await open_device("sim://x", bogus=1)
    with pytest.raises(ConfigurationError, match="timeout"):
        await open_device("sim://x?timeout=abc")
