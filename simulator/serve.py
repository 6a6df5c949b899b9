"""``posgw-sim serve``: virtual readers in a real pcscd, virtual cards attached on command.

A small config (JSON or TOML) names the lanes::

    [[lanes]]
    id = 1
    reader = "posgw Lane 1"   # "<reader> 00 00" is the contact slot, "... 00 01" contactless
    card = "visa_credit"       # optional: inserted at start

Each lane gets one vpcd reader entry (with its own copy of the vpcd driver, so lanes never
share slots) in a private pcscd (:mod:`simulator.pcscd`): slot ``00 00``
is the contact slot (``insert``), slot ``00 01`` the contactless one (``tap``, with the ATR a
PC/SC reader synthesises for an ISO 14443-4 card). Cards are the simulator's virtual EMV cards
(``simulator.card``), attached through vpcd (:mod:`simulator.vpcd`). A tap stays in the field
until ``remove`` (or the next tap/insert on the lane).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.control import serve_control
from simulator.pcscd import PrivatePcscd, VirtualReader
from simulator.vpcd import VirtualCard, VirtualIcc, contactless_atr

__all__ = ["DeviceServer", "LaneConfig", "ServeConfigError", "load_config"]

log = logging.getLogger("posgw.simulator.serve")

CardFactory = Callable[[str], VirtualCard]


class ServeConfigError(ValueError):
    """The serve config is malformed (the message names the field)."""


@dataclass(frozen=True, slots=True)
class LaneConfig:
    """One lane of the config."""

    id: int
    reader: str
    card: str | None = None
    protocol: str = "T=1"


def load_config(path: Path) -> list[LaneConfig]:
    """Read lanes from a JSON or TOML file.

    Raises:
        ServeConfigError: unreadable file, or a missing/invalid field (named in the message).
    """
    try:
        text = path.read_text()
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ServeConfigError(f"{path}: {exc}") from exc
    lanes = raw.get("lanes") if isinstance(raw, dict) else None
    if not isinstance(lanes, list) or not lanes:
        raise ServeConfigError(f"{path}: 'lanes' must be a non-empty list")
    result: list[LaneConfig] = []
    for index, lane in enumerate(lanes):
        where = f"{path}: lanes[{index}]"
        if not isinstance(lane, dict):
            raise ServeConfigError(f"{where}: must be a table/object")
        lane_id, reader = lane.get("id"), lane.get("reader", f"posgw Lane {index + 1}")
        if not isinstance(lane_id, int) or isinstance(lane_id, bool):
            raise ServeConfigError(f"{where}.id: an integer is required")
        if not isinstance(reader, str) or not reader or '"' in reader:
            raise ServeConfigError(f"{where}.reader: a name without quotes is required")
        card = lane.get("card")
        if card is not None and not isinstance(card, str):
            raise ServeConfigError(f"{where}.card: a profile name is required")
        protocol = lane.get("protocol", "T=1")
        if protocol not in ("T=0", "T=1"):
            raise ServeConfigError(f"{where}.protocol: 'T=0' or 'T=1'")
        result.append(LaneConfig(lane_id, reader, card, protocol))
    if len({lane.id for lane in result}) != len(result):
        raise ServeConfigError(f"{path}: lane ids must be unique")
    return result


def _profile_card(profile: str) -> VirtualCard:
    from simulator.card import VirtualCard as EmvCard

    card: VirtualCard = EmvCard.from_profile(profile)
    return card


@dataclass
class _Lane:
    config: LaneConfig
    contact: VirtualReader
    contactless: VirtualReader
    icc: VirtualIcc | None = None
    card: str | None = None
    interface: str | None = None
    pinpad: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class DeviceServer:
    """The running simulator devices: lanes, their pcscd, the control socket."""

    def __init__(
        self,
        lanes: list[LaneConfig],
        *,
        pcscd: PrivatePcscd | None = None,
        card_factory: CardFactory = _profile_card,
    ) -> None:
        """Describe the server; ``pcscd`` given = use that daemon (its readers, in lane order)."""
        self._configs = lanes
        self._own_pcscd = pcscd is None
        self.pcscd = pcscd or PrivatePcscd([lane.reader for lane in lanes])
        self._card_factory = card_factory
        self.lanes: dict[int, _Lane] = {}
        self._control: asyncio.Server | None = None

    async def start(self, control_path: Path | None = None) -> None:
        """Start pcscd (when ours), map lanes to slots, insert configured cards, listen."""
        if self._own_pcscd:
            await asyncio.to_thread(self.pcscd.start)
        slots = self.pcscd.readers
        if len(slots) < 2 * len(self._configs):
            raise ServeConfigError("the pcscd has fewer vpcd slots than the lanes need")
        for index, config in enumerate(self._configs):
            self.lanes[config.id] = _Lane(config, slots[2 * index], slots[2 * index + 1])
            if config.card:
                await self.insert(config.id, config.card)
        if control_path is not None:
            self._control = await serve_control(control_path, self.handle)

    async def stop(self) -> None:
        """Detach every card, close the control socket, stop our pcscd (idempotent)."""
        if self._control is not None:
            self._control.close()
            await self._control.wait_closed()
            self._control = None
        for lane in self.lanes.values():
            await self._detach(lane)
        if self._own_pcscd:
            await asyncio.to_thread(self.pcscd.cleanup)

    def _lane(self, lane_id: Any) -> _Lane:
        if not isinstance(lane_id, int) or lane_id not in self.lanes:
            raise LookupError(f"no lane {lane_id!r} (lanes: {sorted(self.lanes)})")
        return self.lanes[lane_id]

    async def _detach(self, lane: _Lane) -> None:
        icc, lane.icc = lane.icc, None
        lane.card = lane.interface = None
        if icc is not None:
            await icc.disconnect()

    async def insert(
        self, lane_id: int, profile: str, *, pin: str | None = None, contactless: bool = False
    ) -> dict[str, Any]:
        """Put a card of ``profile`` in the lane's contact slot (or its field, ``contactless``).

        Raises:
            LookupError: no such lane.
            ProfileError / PinError: unknown profile, malformed PIN (from the card package).
        """
        lane = self._lane(lane_id)
        card = self._card_factory(profile)
        if pin is not None:
            from simulator.pinpad import VirtualPinPad

            lane.pinpad = VirtualPinPad(pin)  # the PIN lives only in there
        await self._detach(lane)
        if contactless:
            icc = VirtualIcc(card, atr=contactless_atr(), port=lane.contactless.port)
        else:
            icc = VirtualIcc(card, protocol=lane.config.protocol, port=lane.contact.port)
        await icc.connect()
        lane.icc, lane.card = icc, profile
        lane.interface = "contactless" if contactless else "contact"
        log.info("lane %d: %s card %s", lane_id, lane.interface, profile)
        return self._lane_status(lane)

    async def remove(self, lane_id: int) -> dict[str, Any]:
        """Take the lane's card out (or out of the field)."""
        lane = self._lane(lane_id)
        await self._detach(lane)
        return self._lane_status(lane)

    def pin_pad(self, lane_id: int) -> Any:
        """The lane's virtual PIN pad (None until a PIN was given), for in-process use."""
        return self._lane(lane_id).pinpad

    def _lane_status(self, lane: _Lane) -> dict[str, Any]:
        return {
            "lane": lane.config.id,
            "contact_reader": lane.contact.name,
            "contactless_reader": lane.contactless.name,
            "card": lane.card,
            "interface": lane.interface,
            "pin_set": lane.pinpad is not None,
        }

    def status(self) -> dict[str, Any]:
        """Every lane, and where the pcscd socket is (``PCSCLITE_CSOCK_NAME``)."""
        return {
            "pcscd_socket": str(self.pcscd.socket_path),
            "lanes": [self._lane_status(lane) for lane in self.lanes.values()],
        }

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Serve one control request (see :mod:`simulator.control`)."""
        cmd, lane = req.get("cmd"), req.get("lane")
        if cmd != "status" and (not isinstance(lane, int) or isinstance(lane, bool)):
            return {"ok": False, "error": "lane must be an integer"}
        try:
            if cmd == "status":
                return {"ok": True, **self.status()}
            if cmd in ("insert", "tap"):
                profile = req.get("card") or "visa_credit"
                pin = req.get("pin")
                if not isinstance(profile, str) or (pin is not None and not isinstance(pin, str)):
                    return {"ok": False, "error": "card and pin must be strings"}
                assert isinstance(lane, int)
                answer = await self.insert(lane, profile, pin=pin, contactless=cmd == "tap")
                return {"ok": True, **answer}
            if cmd == "remove":
                assert isinstance(lane, int)
                return {"ok": True, **await self.remove(lane)}
        except (LookupError, ValueError, ConnectionError) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # noqa: BLE001 - ProfileError, PinError...: refuse, keep serving
            log.warning("control request %r refused: %s", cmd, type(exc).__name__)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": False, "error": f"unknown command {cmd!r}"}
