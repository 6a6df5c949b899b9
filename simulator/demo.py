"""The README's demo: shows, with no hardware, what posgw can do today.

It grows with the project: each stage prints a heading and runs real code, nothing canned.
Stages that need something this machine lacks (pcscd with vpcd, the conformance data) say so
and are skipped; every other stage failing makes the demo exit non-zero.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from simulator import cli

# A real contactless answer: the PPSE FCI of a Visa card, then its GPO response (qVSDC).
SAMPLE_PPSE = (
    "6F2D840E325041592E5359532E4444463031A51BBF0C1861164F07A0000000031010"
    "500B5649534120435245444954"
)
SAMPLE_GPO = (
    "7757820220005F34010157114761739001010010D221220111438444895F201656495341204352454449542F43"
    "415244484F4C4445529F100706010A03A000009F260848325309BE82CBA29F2701809F360200779F6C029000"
)
#: The public transcripts vendored with their sources in tests/data/conformance/SOURCES.md.
TRACES = Path(__file__).resolve().parents[1] / "tests/data/conformance/emv/contactless_traces"


def _stage(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def _pay_through_vpcd() -> int:
    """Attach a virtual card to vpcd in a private pcscd and pay through the real PC/SC stack."""
    from simulator.card import VirtualCard
    from simulator.pcscd import PcscdError, PrivatePcscd
    from simulator.vpcd import VirtualIcc

    try:
        PrivatePcscd.check_installed()
    except PcscdError as exc:
        print(f"(skipped: {exc})")
        return 0
    with PrivatePcscd(["posgw demo reader"]) as daemon:
        reader = daemon.readers[0]

        async def run() -> int:
            icc = VirtualIcc(VirtualCard.from_profile("mastercard_debit"), port=reader.port)
            await icc.connect()
            try:
                await icc.wait_seen()
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "simulator.cli", "pay", "--reader",
                    f"pcsc://{reader.name}", "--amount", "42.00", "--currency", "EUR",
                    env={**os.environ, "PCSCLITE_CSOCK_NAME": str(daemon.socket_path)},
                )  # fmt: skip
                return await proc.wait()
            finally:
                await icc.disconnect()

        return asyncio.run(run())


def main() -> int:
    """Run every demo stage that this machine supports."""
    failures = 0
    _stage("1. posgw-sim decode: a card's PPSE answer, tags named")
    failures += cli.main(["decode", SAMPLE_PPSE]) != 0
    _stage("2. posgw-sim decode: a GPO response; the PAN and track 2 are masked")
    failures += cli.main(["decode", SAMPLE_GPO]) != 0
    _stage("3. posgw-sim pay: a contact payment, virtual Visa card, kernel, simulated issuer")
    failures += cli.main(["pay", "--card", "visa_credit", "--amount", "12.50"]) != 0
    _stage("4. posgw-sim pay: a contactless tap, Mastercard CDA, online approval")
    failures += cli.main(["pay", "--interface", "contactless", "--card", "ctls_mc_cda_online",
                          "--amount", "8.90"]) != 0
    _stage("5. posgw-sim replay: a recorded Visa fDDA tap from a real test card")
    trace = TRACES / "mock-visa-offline.json"
    if trace.exists():
        failures += cli.main(["replay", str(trace)]) != 0
    else:
        print(f"(skipped: {trace} not found)")
    _stage("6. posgw-sim pay --reader: the same kernel through pcscd and vpcd")
    try:
        failures += _pay_through_vpcd() != 0
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        print(f"(failed: {exc})")
        failures += 1
    print(f"\n=== demo finished: {failures} stage(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
