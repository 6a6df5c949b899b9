"""Pure codecs of the serial/IP payment terminal protocols (no I/O in this package).

* :mod:`~drivers.protocols.link`: Concert link layer (STX/ETX/LRC frames, ENQ/ACK/NAK/EOT
  procedure as sans-I/O state machines).
* :mod:`~drivers.protocols.concert_v2`: Concert V2 ("protocole E+") request and answer.
* :mod:`~drivers.protocols.caisse_ap`: Caisse-AP (Concert V3) tag/length/value messages.

Every parser raises only :class:`~drivers.protocols.errors.ProtocolError` on bad input.
"""

from __future__ import annotations

from drivers.protocols.errors import ProtocolError

__all__ = ["ProtocolError"]
