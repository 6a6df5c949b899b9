"""Serial terminal benchmark: codec cost, and a full Concert V2 payment over a real pty.

Prints ``name: value unit`` lines: codec medians, frame-reader throughput, the median and p99
of a whole payment (ENQ/ACK/frame/ACK/EOT both ways) against the virtual terminal, and its
ratio to a bare pty round trip measured in the same process. (Not named ``serial.py``: run as
a script, that name would shadow pyserial's ``serial`` module.)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import tty
from collections.abc import Callable

from drivers import Money
from drivers.protocols import concert_v2 as cv2
from drivers.protocols.link import FrameReader, encode_frame
from drivers.serial import create
from simulator.tpe import VirtualSerialTpe

ANSWER = cv2.PaymentAnswer(pos_number=1, status=0, amount=1250, mode="1", currency="978",
                           private="0000000042", card_report="4970100000000014 2812")


def _median_us(fn: Callable[[], object], n: int = 20000) -> float:
    samples = []
    for _ in range(n // 100):
        t0 = time.perf_counter()
        for _ in range(100):
            fn()
        samples.append((time.perf_counter() - t0) / 100)
    return statistics.median(samples) * 1e6


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def _pty_round_trip(n: int = 200) -> list[float]:
    master, slave = os.openpty()
    tty.setraw(slave)
    loop = asyncio.get_running_loop()
    times = []
    try:
        for _ in range(n):
            ready = loop.create_future()
            loop.add_reader(master, _wake, ready)
            t0 = time.perf_counter()
            os.write(slave, b"\x06")
            await ready
            loop.remove_reader(master)
            os.read(master, 16)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(master)
        os.close(slave)
    return times


async def _payments(n: int = 50) -> list[float]:
    tpe = VirtualSerialTpe(seven_bit=False)
    path = await tpe.start()
    times = []
    try:
        async with create(f"serial://{path}?framing=8N1&keepalive=0") as term:
            for i in range(n):
                t0 = time.perf_counter()
                result = await term.pay(Money(1000 + 100 * i, "978"))
                times.append(time.perf_counter() - t0)
                assert result.approved
    finally:
        await tpe.stop()
    return times


def main() -> None:
    body = cv2.encode_answer(ANSWER)
    frame = encode_frame(body)
    enc = _median_us(lambda: cv2.encode_answer(ANSWER))
    dec = _median_us(lambda: cv2.decode_answer(body))
    print(f"concert_v2_encode_answer_median: {enc:.2f} us")
    print(f"concert_v2_decode_answer_median: {dec:.2f} us")
    stream = frame * 2000
    t0 = time.perf_counter()
    FrameReader().feed(stream)
    mb_s = len(stream) / (time.perf_counter() - t0) / 1e6
    print(f"frame_reader_throughput: {mb_s:.2f} MB/s")
    rtt = asyncio.run(_pty_round_trip())
    pay = asyncio.run(_payments())
    rtt_med = statistics.median(rtt)
    pay_med = statistics.median(pay)
    p99 = statistics.quantiles(pay, n=100)[98]
    print(f"pty_round_trip_median: {rtt_med * 1e3:.3f} ms")
    print(f"payment_over_pty_median: {pay_med * 1e3:.2f} ms")
    print(f"payment_over_pty_p99: {p99 * 1e3:.2f} ms")
    print(f"payment_vs_pty_round_trip_ratio: {pay_med / rtt_med:.1f} x")


if __name__ == "__main__":
    main()
