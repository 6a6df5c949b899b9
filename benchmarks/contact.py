"""Contact kernel speed: whole in-process transactions with the simulator's virtual CDA card.

Each transaction: PSE selection, GPO, records, CDA key recovery, offline PIN through the
virtual PIN pad, risk management, GENERATE AC with CDA and its verification (offline
scenario: 12.50 approved with a TC), or in the online scenario (200.00) ARQC with CDA, the
simulated issuer host, EXTERNAL AUTHENTICATE and a second GENERATE AC with CDA.

CPU time (``time.process_time``) is measured around the whole transaction and separately
inside the card's ``process`` and the issuer host, so that

* ``kernel`` = whole - card - issuer host (the kernel's own CPU time, the target <= 2 ms;
  the virtual PIN pad's plaintext PIN block is counted in it),
* ``whole`` = everything in process, the card's own RSA and 3DES included (target <= 10 ms).

Prints medians and p99 in ms over >= 1,000 transactions per scenario, and the kernel's share
of the whole as a ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime

from simulator.card import VirtualCard, default_pki
from simulator.issuer import IssuerHost
from simulator.pinpad import VirtualPinPad
from terminal import (
    CapkStore,
    Decision,
    Environment,
    OnlineRequest,
    OnlineResponse,
    TerminalConfig,
    TransactionRequest,
    encode,
    run_contact_transaction,
)

TRANSACTIONS = 1000
WARMUP = 20
WHEN = datetime(2026, 11, 25, 12, 0, 0)


class TimedCard:
    """The virtual card behind the one-method channel, its CPU time accumulated."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.spent = 0.0

    async def transceive(self, capdu: bytes) -> bytes:
        start = time.process_time()
        rapdu = self.card.process(capdu)
        self.spent += time.process_time() - start
        return rapdu


class TimedHost:
    """The simulated issuer host as the kernel's authoriser, its CPU time accumulated."""

    def __init__(self) -> None:
        self.host = IssuerHost()
        self.spent = 0.0

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        start = time.process_time()
        answer = self.host.authorise(
            request.icc_data + encode(0x5A, bytes.fromhex(request.pan or ""))
        )
        self.spent += time.process_time() - start
        if answer is None:
            return None
        return OnlineResponse(
            approved=answer.approved,
            authorisation_response_code=answer.arc,
            issuer_authentication_data=answer.issuer_auth_data or None,
            scripts=answer.scripts or None,
        )


async def one(amount: int, config: TerminalConfig, store: CapkStore, n: int) -> tuple[float, float]:
    card = TimedCard(VirtualCard.from_profile("cda_card", rng=bytes))
    host = TimedHost()
    env = Environment.fixed(WHEN, n.to_bytes(4, "big"))
    pinpad = VirtualPinPad("1234", random_bytes=lambda k: b"\x55" * k)
    start = time.process_time()
    result = await run_contact_transaction(
        card,
        config=config,
        request=TransactionRequest(amount=amount),
        env=env,
        online=host,
        pinpad=pinpad,
        capk=store,
    )
    whole = time.process_time() - start
    if result.decision is not Decision.APPROVED or result.oda_verified is not True:
        raise SystemExit(f"unexpected outcome: {result!r} {result.reason}")
    return whole - card.spent - host.spent, whole


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def scenario(name: str, amount: int) -> None:
    config = TerminalConfig.default()
    store = CapkStore()
    store.load_file(default_pki().capk_file)
    for n in range(WARMUP):
        await one(amount, config, store, n)
    kernel: list[float] = []
    whole: list[float] = []
    for n in range(TRANSACTIONS):
        k, w = await one(amount, config, store, n)
        kernel.append(k * 1e3)
        whole.append(w * 1e3)
    print(f"contact_{name}_kernel_cpu_median: {statistics.median(kernel):.3f} ms")
    print(f"contact_{name}_kernel_cpu_p99: {percentile(kernel, 0.99):.3f} ms")
    print(f"contact_{name}_whole_cpu_median: {statistics.median(whole):.3f} ms")
    print(f"contact_{name}_whole_cpu_p99: {percentile(whole, 0.99):.3f} ms")
    share = statistics.median(kernel) / statistics.median(whole)
    print(f"contact_{name}_kernel_share: {share:.2f} ratio")
    print(f"contact_{name}_transactions: {TRANSACTIONS} count")


def main() -> None:
    asyncio.run(scenario("offline_cda", 1250))
    asyncio.run(scenario("online_cda", 20000))


if __name__ == "__main__":
    main()
