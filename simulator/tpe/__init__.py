"""Virtual payment terminals (TPE): Concert V2 and Caisse-AP on pseudo-terminals and TCP.

* :class:`VirtualSerialTpe`: a terminal on a pty pair, for the ``serial://`` driver.
* :class:`VirtualTcpTpe`: a Caisse-AP terminal on a TCP port, for the ``tcp://`` driver.
* :class:`TerminalBrain`: what they answer (amount rules, or a plugged card hook).
* :class:`Faults`: no ACK, NAK, bad LRC, slow answer, busy, disconnect, duplicate answer, line
  noise, dropped bytes, silent terminal.
"""

from __future__ import annotations

from simulator.tpe.brain import PROTOCOLS, Processed, TerminalBrain
from simulator.tpe.faults import FAULT_NAMES, Faults, parse_faults
from simulator.tpe.rules import TEST_PAN, CardHook, Decision, amount_rules
from simulator.tpe.serial_tpe import VirtualSerialTpe
from simulator.tpe.tcp_tpe import VirtualTcpTpe

__all__ = [
    "FAULT_NAMES",
    "PROTOCOLS",
    "TEST_PAN",
    "CardHook",
    "Decision",
    "Faults",
    "Processed",
    "TerminalBrain",
    "VirtualSerialTpe",
    "VirtualTcpTpe",
    "amount_rules",
    "parse_faults",
]
