"""The README's demo: shows, with no hardware, what posgw can do today.

It grows with the project: each stage prints a heading and runs real code, nothing canned.
"""

from __future__ import annotations

import importlib.util
import sys

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


def _stage(title: str) -> None:
    print(f"\n=== {title}")


def main() -> int:
    """Run every demo stage that the installed code supports."""
    _stage("1. posgw-sim decode: a card's PPSE answer, tags named")
    status = cli.main(["decode", SAMPLE_PPSE])
    _stage("2. posgw-sim decode: a GPO response; the PAN and track 2 are masked")
    status |= cli.main(["decode", SAMPLE_GPO])
    if importlib.util.find_spec("simulator.cli_pay") is not None:
        _stage("3. posgw-sim pay: a contact payment with a virtual Visa card")
        status |= cli.main(
            ["pay", "--card", "visa-credit", "--amount", "12.50", "--currency", "EUR"]
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
