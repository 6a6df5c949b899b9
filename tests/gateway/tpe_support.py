"""Helpers of the TPE lane tests: a virtual terminal per protocol and transport, its lane URL.

Ptys run 8N1: a lane that is set up again reopens its pty, which this machine's kernel refuses
at 7E1 (docs/tpe.md, known limits).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.tpe import Faults, TerminalBrain, VirtualSerialTpe, VirtualTcpTpe
from tests.fixtures.serial import FAST_LINK

__all__ = ["KINDS", "LINK", "Rig", "start_rig"]

LINK = "ack_timeout=0.3&frame_timeout=0.3&eot_timeout=0.1&framing=8N1"
#: pty Concert V2, pty Caisse-AP (Concert frames), TCP Caisse-AP (over IP).
KINDS = ["pty-concert-v2", "pty-caisse-ap", "tcp-caisse-ap"]


@dataclass
class Rig:
    """A virtual terminal and the lane URL that reaches it."""

    kind: str
    tpe: VirtualSerialTpe | VirtualTcpTpe
    url: str

    @property
    def brain(self) -> TerminalBrain:
        return self.tpe.brain

    @property
    def faults(self) -> Faults:
        return self.tpe.faults


async def start_rig(kind: str, *, answer_timeout: float = 3.0, cancel_grace: float = 0.3,
                    ) -> Rig:
    """Start the virtual terminal of ``kind`` (see :data:`KINDS`)."""
    common = f"answer_timeout={answer_timeout}&cancel_grace={cancel_grace}&keepalive=0"
    if kind == "tcp-caisse-ap":
        tcp = VirtualTcpTpe()
        await tcp.start()
        return Rig(kind, tcp, f"tcp://127.0.0.1:{tcp.port}?protocol=caisse-ap&{common}")
    protocol = kind.removeprefix("pty-")
    pty = VirtualSerialTpe(TerminalBrain(protocol=protocol), timeouts=FAST_LINK,
                           seven_bit=False)
    path = await pty.start()
    return Rig(kind, pty, f"serial://{path}?protocol={protocol}&{LINK}&{common}")
