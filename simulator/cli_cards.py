"""``posgw-sim cards``: list the virtual card profiles, optionally self-checked.

``posgw-sim cards [--json] [--check]``: one line per profile (name, interfaces, applications
with their masked PAN, expected outcome, description); ``--check`` also runs each profile
through the scripted happy path of :mod:`simulator.card.walkthrough` and reports whether it
reached its expected outcome (exit status 1 if one did not).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from simulator.card import VirtualCard, list_profiles, load_profile
from simulator.card.personalise import describe
from simulator.card.profile import ProfileError
from simulator.card.walkthrough import Walk, run_contact, run_contactless

__all__ = ["check_profile_outcome", "register"]


def _amount(expected: dict[str, Any]) -> int:
    text = str(expected.get("amount", "12.50"))
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def check_profile_outcome(name: str) -> tuple[bool, Walk]:
    """Run a profile's happy path and compare with its ``expected`` (interface and online)."""
    profile = load_profile(name)
    card = VirtualCard.from_profile(name)
    expected = profile.expected
    amount = _amount(expected)
    if "contact" in profile.interfaces:
        walk = run_contact(card, amount=amount)
        want = expected.get("contact")
    else:
        floor = int(expected.get("config", {}).get("reader_ctls_floor_limit", 0))
        walk = run_contactless(card, amount=amount, floor_limit=floor)
        if walk.outcome == "TRY_AGAIN" and expected.get("taps", 1) > 1:
            walk = run_contactless(card, amount=amount, floor_limit=floor)
        want = expected.get("contactless")
    ok = walk.outcome == want and walk.online == bool(expected.get("online", False))
    return ok, walk


def _row(name: str, check: bool) -> dict[str, Any]:
    profile = load_profile(name)
    card = VirtualCard.from_profile(name)
    row: dict[str, Any] = {
        "name": name,
        "interfaces": list(profile.interfaces),
        "applications": [describe(app) for app in card.applications],
        "expected": profile.expected,
        "description": profile.description,
    }
    if check:
        ok, walk = check_profile_outcome(name)
        row["check"] = {"ok": ok, "outcome": walk.outcome, "online": walk.online,
                        "oda": walk.oda, "oda_ok": walk.oda_ok, "cvm": walk.cvm}
    return row


def _cmd_cards(args: argparse.Namespace) -> int:
    try:
        rows = [_row(name, args.check) for name in list_profiles()]
    except ProfileError as exc:
        print(f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            apps = ", ".join(f"{a['label']} {a['aid']} {a['pan']}" for a in row["applications"])
            outcome = row["expected"].get("contact") or row["expected"].get("contactless")
            online = " online" if row["expected"].get("online") else ""
            line = f"{row['name']:<24} {'+'.join(row['interfaces']):<12} {outcome}{online}"
            if args.check:
                line += "  check: " + ("ok" if row["check"]["ok"] else "FAILED")
            print(f"{line}\n    {apps}\n    {row['description']}")
    failed = [row["name"] for row in rows if args.check and not row["check"]["ok"]]
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    """Add ``cards`` to the ``posgw-sim`` subcommands."""
    parser = subparsers.add_parser("cards", help="list the virtual card profiles")
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.add_argument("--check", action="store_true",
                        help="run each profile's happy path against its expected outcome")
    parser.set_defaults(func=_cmd_cards)
