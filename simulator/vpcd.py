"""The virtual ICC side of vsmartcard's vpcd: put a virtual card in a real PC/SC reader.

vpcd (the pcscd driver ``libifdvpcd.so``) listens on TCP for one virtual ICC per slot; the ICC
connects and from then on answers what vpcd sends. Every message, both ways, is a 2-byte
big-endian length and a payload (vsmartcard, "Creating a virtual smart card"):

* payload of length 1 is a control byte: ``00`` power off, ``01`` power on, ``02`` reset
  (no answer), ``04`` get ATR (answer: the ATR);
* any other payload is a C-APDU; the answer is the R-APDU (data + SW1 SW2).

vpcd asks for the ATR at each presence poll (every 400 ms in pcscd) and treats a closed
connection (or an empty answer) as "card removed"; so :meth:`VirtualIcc.disconnect` is a card
removal and :meth:`VirtualIcc.connect` an insertion.

In ``T=0`` mode the ICC answers like a T=0 card at the APDU level (EMV 4.4 Book 1, 9.3.1.3 and
9.2.2.3.1): response data of a case-3/4 command is announced with ``61xx`` and fetched with
GET RESPONSE; a case-2 command with the wrong Le gets ``6Cxx``.

TCP_NODELAY is set on the socket and each message leaves in one write. vpcd (3.3) itself sends
the length and the payload in two writes without TCP_NODELAY, so its payload waits for our ACK
of the length: TCP_QUICKACK is re-armed before each read, or every round trip costs a delayed
ACK (~40 ms measured, against ~0.2 ms with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import struct
from collections.abc import Awaitable
from typing import Protocol

__all__ = [
    "ATR_T0",
    "ATR_T1",
    "CTRL_ATR",
    "CTRL_OFF",
    "CTRL_ON",
    "CTRL_RESET",
    "DEFAULT_PORT",
    "T0Adapter",
    "VirtualCard",
    "VirtualIcc",
    "atr_tck",
    "contactless_atr",
]

log = logging.getLogger("posgw.simulator.vpcd")

DEFAULT_PORT = 0x8C7B  # 35963, vpcd's default
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04



def atr_tck(atr_without_tck: bytes) -> int:
    """The check byte TCK of an ATR (ISO/IEC 7816-3:2006, 8.2.5; EMV 4.4 Book 1, 8.3.4).

    TCK makes the XOR of every byte from T0 to TCK inclusive zero, so it is the XOR of T0 to
    the last historical byte. It is present whenever an interface byte indicates a protocol
    other than T=0.

    Args:
        atr_without_tck: TS, T0, the interface bytes and the historical bytes.
    """
    tck = 0
    for byte in atr_without_tck[1:]:  # TS is not covered
        tck ^= byte
    return tck


def _with_tck(atr_without_tck: bytes) -> bytes:
    return atr_without_tck + bytes((atr_tck(atr_without_tck),))


#: T=1 contact card: TS=3B, T0=E0 (TB1..TD1, no historical bytes), TB1=00, TC1=00,
#: TD1=81 (T=1 follows), TD2=31 (TA3, TB3), TA3=FE (IFSC 254), TB3=45, TCK=EB (EMV 4.4
#: Book 1, 8.3; TCK is required because TD1 indicates T=1, ISO/IEC 7816-3, 8.2.5).
ATR_T1 = _with_tck(bytes.fromhex("3BE000008131FE45"))
#: T=0 contact card: TS=3B, T0=60 (TB1, TC1), TB1=00, TC1=00; no TD1, so T=0 only (no TCK).
ATR_T0 = bytes.fromhex("3B600000")


def contactless_atr(historical: bytes = b"") -> bytes:
    """The ATR a PC/SC reader synthesises for an ISO 14443-4 card (PC/SC Part 3, 3.1.3.2.3).

    ``3B | 8n | 80 | 01 | historical bytes (n) | TCK``, TCK = XOR of T0 .. last historical.

    Raises:
        ValueError: more than 15 historical bytes.
    """
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    return _with_tck(b"\x3b" + bytes((0x80 | len(historical), 0x80, 0x01)) + historical)


class VirtualCard(Protocol):
    """What the ICC needs from a card: ``process`` may also return an awaitable."""

    def process(self, capdu: bytes) -> bytes | Awaitable[bytes]:
        """Answer one C-APDU with the R-APDU (data + SW1 SW2)."""
        ...


class T0Adapter:
    """Turns an APDU-level card answer into what a T=0 card sends (61xx / 6Cxx)."""

    def __init__(self) -> None:
        """Start with nothing pending."""
        self._pending = b""
        self._final_sw = b"\x90\x00"

    def reset(self) -> None:
        """Forget pending response data (power off / reset)."""
        self._pending = b""

    def get_response(self, capdu: bytes) -> bytes | None:
        """Serve GET RESPONSE from pending data; None when ``capdu`` is not for us."""
        if not self._pending or len(capdu) not in (4, 5) or capdu[1] != 0xC0:
            self._pending = b""
            return None
        le = (capdu[4] if len(capdu) == 5 else 0) or 256
        if le > len(self._pending):
            return bytes((0x6C, len(self._pending) & 0xFF))
        chunk, self._pending = self._pending[:le], self._pending[le:]
        if self._pending:
            return chunk + bytes((0x61, min(len(self._pending), 256) & 0xFF))
        return chunk + self._final_sw

    def answer(self, capdu: bytes, rapdu: bytes) -> bytes:
        """What a T=0 card returns for ``capdu`` whose full answer is ``rapdu``."""
        data, sw = rapdu[:-2], rapdu[-2:]
        if not data:
            return sw
        if len(capdu) == 5:  # case 2: P3 is Le
            le = capdu[4] or 256
            if le != len(data) and len(data) <= 256:
                return bytes((0x6C, len(data) & 0xFF))
            return data[:le] + sw
        self._pending, self._final_sw = data, sw  # case 3/4: announce the data
        return bytes((0x61, min(len(data), 256) & 0xFF))


class VirtualIcc:
    """A virtual ICC attached to one vpcd slot over TCP."""

    def __init__(
        self,
        card: VirtualCard,
        *,
        atr: bytes | None = None,
        protocol: str = "T=1",
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
    ) -> None:
        """Describe the ICC (nothing connects until :meth:`connect`).

        Args:
            card: The card; ``process(capdu)`` returns the R-APDU (or an awaitable of it).
            atr: ATR to present (default: a T=1 or T=0 contact ATR matching ``protocol``).
            protocol: ``"T=1"`` (APDUs pass through) or ``"T=0"`` (61xx / 6Cxx behaviour).
            host: vpcd host.
            port: vpcd port of the slot.
        """
        if protocol not in ("T=0", "T=1"):
            raise ValueError("protocol must be 'T=0' or 'T=1'")
        self.card = card
        self.protocol = protocol
        self.atr = atr if atr is not None else (ATR_T0 if protocol == "T=0" else ATR_T1)
        self.host, self.port = host, port
        self.powered = False
        self.apdus = 0
        self._t0 = T0Adapter() if protocol == "T=0" else None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._atr_asked = asyncio.Event()

    @property
    def connected(self) -> bool:
        """True while the TCP connection to vpcd is up."""
        return self._task is not None and not self._task.done()

    async def connect(self, *, retry_for: float = 5.0) -> None:
        """Connect to vpcd (= insert the card), retrying while the reader is not listening.

        Raises:
            ConnectionError: vpcd did not accept within ``retry_for`` seconds.
        """
        if self.connected:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                break
            except OSError as exc:
                if loop.time() >= deadline:
                    raise ConnectionError(f"vpcd not listening on port {self.port}") from exc
                await asyncio.sleep(0.02)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writer = writer
        self._atr_asked.clear()
        self._task = asyncio.create_task(self._serve(reader, writer), name=f"vicc:{self.port}")

    async def wait_seen(self) -> None:
        """Wait until vpcd asked for the ATR on this connection (the reader saw the card)."""
        await self._atr_asked.wait()

    async def wait_disconnected(self) -> None:
        """Wait until vpcd closed the connection (or :meth:`disconnect` was called)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def disconnect(self) -> None:
        """Close the connection (= remove the card); idempotent."""
        task, self._task = self._task, None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.powered = False

    async def __aenter__(self) -> VirtualIcc:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        quickack = getattr(socket, "TCP_QUICKACK", None)
        try:
            while True:
                if quickack is not None and sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
                header = await reader.readexactly(2)
                (length,) = struct.unpack(">H", header)
                payload = await reader.readexactly(length) if length else b""
                answer = await self._handle(payload)
                if answer is not None:
                    writer.write(struct.pack(">H", len(answer)) + answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            log.debug("vpcd closed the connection on port %d", self.port)
        finally:
            self.powered = False
            writer.close()

    async def _handle(self, payload: bytes) -> bytes | None:
        if len(payload) == 1:
            ctrl = payload[0]
            if ctrl == CTRL_ATR:
                self._atr_asked.set()
                return self.atr
            if ctrl in (CTRL_ON, CTRL_RESET):
                self.powered = True
            elif ctrl == CTRL_OFF:
                self.powered = False
            if self._t0 is not None:
                self._t0.reset()
            reset = getattr(self.card, "reset", None)
            if ctrl in (CTRL_ON, CTRL_RESET, CTRL_OFF) and callable(reset):
                reset()  # a new card session: the card forgets the previous one
            return None
        if len(payload) < 4:
            return b"\x67\x00"  # wrong length: not even a command header
        self.apdus += 1
        if self._t0 is not None:
            served = self._t0.get_response(payload)
            if served is not None:
                return served
        result = self.card.process(payload)
        rapdu = await result if inspect.isawaitable(result) else result
        if len(rapdu) < 2:
            rapdu = b"\x6f\x00"
        if self._t0 is not None:
            return self._t0.answer(payload, rapdu)
        return rapdu


class _StaticCard:
    """Answers every command with the same R-APDU (benchmarks)."""

    def __init__(self, rapdu: bytes) -> None:
        self.rapdu = rapdu

    def process(self, capdu: bytes) -> bytes:
        return self.rapdu


def main(argv: list[str] | None = None) -> None:
    """``python -m simulator.vpcd --port P (--profile NAME | --static HEX)``: one ICC, until killed.

    Runs the virtual ICC in its own process, as a real card is outside the process under test.
    """
    import argparse

    parser = argparse.ArgumentParser(description="attach one virtual ICC to a vpcd slot")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--protocol", default="T=1", choices=("T=0", "T=1"))
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--profile", help="virtual EMV card profile (simulator.card)")
    group.add_argument("--static", help="hex R-APDU answered to every command")
    args = parser.parse_args(argv)
    card: VirtualCard
    if args.static is not None:
        card = _StaticCard(bytes.fromhex(args.static))
    else:
        from simulator.card import VirtualCard as EmvCard

        card = EmvCard.from_profile(args.profile)

    async def run() -> None:
        icc = VirtualIcc(card, protocol=args.protocol, host=args.host, port=args.port)
        await icc.connect(retry_for=30)
        print("attached", flush=True)
        await icc.wait_disconnected()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
