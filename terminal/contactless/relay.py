"""Relay resistance protocol of kernel 2 (EMV Contactless Book C-2, 5.x; S3.60-S3.80).

When the card's AIP (byte 2 bit 1) and the reader both support it, the kernel sends EXCHANGE
RELAY RESISTANCE DATA (``80 EA 00 00 04`` + Terminal Relay Resistance Entropy, the UN) and
times the exchange. The card answers template ``80`` with Device Relay Resistance Entropy (4),
Min and Max Time For Processing Relay Resistance APDU (2 + 2, units of 100 µs) and Device
Estimated Transmission Time For Relay Resistance R-APDU (2). Then:

* measured processing time = elapsed - terminal expected transmission times (never below 0);
* below min - min grace period: END APPLICATION (CARD DATA ERROR);
* above max + max grace period: "relay resistance time limits exceeded" (TVR byte 5 bit 3);
* a device estimate above the terminal expectation by more than the accuracy threshold:
  "relay resistance threshold exceeded" (TVR byte 5 bit 4);
* TVR "relay resistance performed" = performed.

The elapsed time is measured with a monotonic clock around the one exchange; tests never
assert on it.
"""

from __future__ import annotations

import time

from terminal import tlv
from terminal.apdu import CommandApdu
from terminal.bits import RrpStatus, TvrBit
from terminal.contact.state import Transaction
from terminal.contactless.outcome import L2Error, OutcomeParameters, end_application
from terminal.contactless.preprocessing import Kernel2Settings
from terminal.contactless.session import CardSession

__all__ = ["exchange_relay_resistance_data", "relay_resistance"]


def exchange_relay_resistance_data(entropy: bytes) -> CommandApdu:
    """EXCHANGE RELAY RESISTANCE DATA (Book C-2, 5.x): ``80 EA 00 00 04 entropy 00``."""
    return CommandApdu(0x80, 0xEA, 0x00, 0x00, entropy, 256)


async def relay_resistance(
    session: CardSession, txn: Transaction, settings: Kernel2Settings
) -> OutcomeParameters | None:
    """Run the relay resistance protocol (Book C-2, S3.60-S3.80).

    Returns:
        An END APPLICATION outcome when the card's answer is unusable or too fast, else
        ``None`` (the TVR records the result).
    """
    entropy = txn.terminal[0x9F37]
    started = time.perf_counter()
    response = await session.send(exchange_relay_resistance_data(entropy))
    elapsed_ms = (time.perf_counter() - started) * 1e3
    if not response.ok:
        return end_application(
            L2Error.STATUS_BYTES, "EXCHANGE RELAY RESISTANCE DATA", sw=response.sw
        )
    objects = tlv.decode(response.data)
    if len(objects) != 1 or objects[0].tag != 0x80 or len(objects[0].value) != 10:
        return end_application(L2Error.PARSING_ERROR, "relay resistance response")
    value = objects[0].value
    txn.card[0xDF8302] = value[0:4]
    min_ms = int.from_bytes(value[4:6], "big") / 10
    max_ms = int.from_bytes(value[6:8], "big") / 10
    device_ms = int.from_bytes(value[8:10], "big") / 10
    expected = settings.transmission_time_cmd_ms + settings.transmission_time_resp_ms
    measured = max(0.0, elapsed_ms - expected)
    if measured < max(0.0, min_ms - settings.min_grace_period_ms):
        return end_application(L2Error.CARD_DATA_ERROR, "relay resistance time below minimum")
    if measured > max_ms + settings.max_grace_period_ms:
        txn.set_tvr(TvrBit.RR_TIME_LIMITS_EXCEEDED)
    if device_ms - settings.transmission_time_resp_ms > settings.rr_accuracy_threshold_ms:
        txn.set_tvr(TvrBit.RR_THRESHOLD_EXCEEDED)
    txn.tvr.rrp = RrpStatus.PERFORMED
    txn.terminal[0x95] = txn.tvr.bytes()
    return None
