"""``posgw-sim cards``: list the virtual card profiles, optionally self-checked.

``posgw-sim cards [--json] [--check]``: one line per profile (name, interfaces, applications
with their masked PAN, expected outcome, description). ``--check`` also runs each profile
through the real kernel - :func:`terminal.contact.flow.run_contact_transaction` for a contact
card, :func:`simulator.contactless_pay.pay_contactless` (with its second tap) for a contactless
one - with the in-process issuer (:class:`simulator.acquirer_inprocess.InProcessAcquirer`),
the virtual PIN pad typing the profile's PIN, a fixed environment (date
:data:`simulator.cli_pay.FIXED_TIME`, random selection draw 99, so never selected) and the
shipped terminal configuration plus the simulator's CA keys (with the profile's
``expected.config`` applied to every AID). It reports whether each reached the outcome its
``expected`` field states (exit status 1 if one did not).

What ``expected`` may say (all optional but the outcome):

* ``contact`` / ``contactless``: the outcome (``APPROVED``, ``DECLINED``, ``NOT_ACCEPTED``;
  ``END_APPLICATION``, ``TRY_ANOTHER_INTERFACE``);
* ``online``: whether the issuer was asked; ``amount``: the amount (default 12.50);
* ``oda`` and ``oda_ok``: the ODA method and whether it verified (default true);
* ``cvm``: the CVM performed; ``aid``: the application selected;
* ``tvr_bits``: :class:`terminal.bits.TvrBit` names that must be set (contact);
* ``config``: fields set on every supported AID (e.g. ``reader_ctls_floor_limit``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from simulator.card import PROFILES_DIR, VirtualCard, list_profiles, load_profile
from simulator.card.personalise import describe
from simulator.card.profile import ProfileError
from terminal import TransactionRequest
from terminal.bits import Tvr, TvrBit

__all__ = ["check_profile_outcome", "register"]

#: CVM Results (9F34) byte 1, bits 6-1, by the names the profiles use (Book 3, C3).
CVM_CODES = {
    "OFFLINE_PLAINTEXT_PIN": 0x01,
    "ONLINE_PIN": 0x02,
    "OFFLINE_PLAINTEXT_PIN_AND_SIGNATURE": 0x03,
    "OFFLINE_ENCIPHERED_PIN": 0x04,
    "OFFLINE_ENCIPHERED_PIN_AND_SIGNATURE": 0x05,
    "SIGNATURE": 0x1E,
    "NO_CVM": 0x1F,
}


def _amount(expected: dict[str, Any]) -> int:
    text = str(expected.get("amount", "12.50"))
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


async def _pay_profile(name: str | Path, directory: Path) -> dict[str, Any]:
    from simulator.acquirer_inprocess import InProcessAcquirer
    from simulator.cli_pay import fixed_environment, kernel_config, pay_virtual_card
    from simulator.pinpad import VirtualPinPad

    profile = load_profile(name, directory)
    card = VirtualCard.from_profile(name, directory=directory)
    expected = profile.expected
    interface = "contact" if "contact" in profile.interfaces else "contactless"
    acquirer = InProcessAcquirer("approve")
    summary, _trace, approved = await pay_virtual_card(
        card,
        interface=interface,
        config=kernel_config(aid_overrides=expected.get("config")),
        request=TransactionRequest(amount=_amount(expected)),
        env=fixed_environment(99),
        acquirer=acquirer,
        pinpad=VirtualPinPad(profile.pin),
    )
    if interface == "contact":
        outcome = str(summary["decision"]).upper()
        cvm_byte = bytes.fromhex(summary["cvm_results"])[0] & 0x3F
        cvm = next((k for k, v in CVM_CODES.items() if v == cvm_byte), f"{cvm_byte:02X}")
        tvr = summary["tvr"]
    else:
        online = acquirer.requests > 0
        outcome = (
            "APPROVED"
            if approved
            else "DECLINED"
            if online
            else str(summary["outcome"]).replace(" ", "_")
        )
        cvm = str(summary.get("cvm", "")).replace(" ", "_")
        tvr = summary.get("tvr")
    return {
        "interface": interface,
        "outcome": outcome,
        "online": acquirer.requests > 0,
        "oda": summary.get("oda_method"),
        "oda_ok": summary.get("oda_verified"),
        "cvm": cvm,
        "aid": summary.get("aid"),
        "tvr": tvr,
    }


def _mismatches(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    wrong = []
    want = expected.get(got["interface"])
    if got["outcome"] != want:
        wrong.append(f"outcome {got['outcome']}, expected {want}")
    if "online" in expected and got["online"] is not bool(expected["online"]):
        wrong.append(f"online {got['online']}, expected {expected['online']}")
    if "oda" in expected:
        want_ok = expected.get("oda_ok", True)
        if (got["oda"], got["oda_ok"]) != (expected["oda"], want_ok):
            wrong.append(f"ODA {got['oda']}:{got['oda_ok']}, expected {expected['oda']}:{want_ok}")
    if "cvm" in expected and got["cvm"] != expected["cvm"]:
        wrong.append(f"CVM {got['cvm']}, expected {expected['cvm']}")
    if "aid" in expected and got["aid"] != expected["aid"]:
        wrong.append(f"AID {got['aid']}, expected {expected['aid']}")
    tvr = Tvr(bytes.fromhex(got["tvr"])) if got["tvr"] else None
    for bit in expected.get("tvr_bits", []):
        if tvr is None or not tvr.is_set(TvrBit[bit]):
            wrong.append(f"TVR bit {bit} not set")
    return wrong


def check_profile_outcome(
    name: str | Path, directory: Path = PROFILES_DIR
) -> tuple[bool, dict[str, Any]]:
    """Run a profile through the real kernel and compare with its ``expected`` field.

    Args:
        name: A profile name, or a profile file.
        directory: Where names (and ``base`` profiles) are looked up.

    Returns:
        Whether everything matched, and what happened (outcome, online, ODA, CVM, AID, TVR
        and the list of mismatches; no card data).

    Raises:
        ProfileError: the profile is missing or invalid.
    """
    expected = load_profile(name, directory).expected
    got = asyncio.run(_pay_profile(name, directory))
    got["mismatches"] = _mismatches(expected, got)
    return not got["mismatches"], got


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
        ok, got = check_profile_outcome(name)
        row["check"] = {"ok": ok, **got}
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
                check = row["check"]
                line += "  check: " + ("ok" if check["ok"] else "FAILED")
                line += "".join(f"\n    ! {wrong}" for wrong in check["mismatches"])
            print(f"{line}\n    {apps}\n    {row['description']}")
    failed = [row["name"] for row in rows if args.check and not row["check"]["ok"]]
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    """Add ``cards`` to the ``posgw-sim`` subcommands."""
    parser = subparsers.add_parser("cards", help="list the virtual card profiles")
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.add_argument(
        "--check",
        action="store_true",
        help="run each profile through the kernel and compare with its expected outcome",
    )
    parser.set_defaults(func=_cmd_cards)
