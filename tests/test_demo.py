"""The README's demo keeps working: both parts run to the end with every stage passing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, check=False)  # fmt: skip


def test_kernel_and_reader_stages() -> None:
    out = _run("-m", "simulator.demo")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "=== demo finished: 0 stage(s) failed" in out.stdout
    assert "4761739001010010" not in out.stdout


def test_daemon_stage() -> None:
    out = _run("scripts/demo_daemon.py")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.count('"state": "COMPLETED"') == 2
    assert "status page: ok" in out.stdout
    assert "PRESENT CARD -> PROCESSING -> REMOVE CARD -> IDLE" in out.stdout  # live events
    assert "of the lane 1 sale -> COMPLETED" in out.stdout  # the refund
    # the TPE lane: a virtual Caisse-AP terminal over TCP took the card and charged once
    assert "tpe lane 3: state=COMPLETED outcome=approved card=497010******0014" in out.stdout
    assert "the terminal charged ['23.50', '12.00']" in out.stdout
    assert "on lane 3 is voided -> VOIDED (the terminal cancelled ['12.00'])" in out.stdout
    assert "till (live events of lane 3): PRESENT CARD -> IDLE" in out.stdout
    assert "tpe lane 3 end of day: ok=True transactions=1 debits=2350 refunds=0" in out.stdout
    assert "status page in French: Recette du jour 39,90" in out.stdout  # 12.50+8.90+23.50-5.00
    assert "day close by demo-manager: 201" in out.stdout
    assert "reconciled with the acquirer: True, differences: 0" in out.stdout
    assert "day record sent to head office: yes" in out.stdout
    assert "Traceback" not in out.stderr
    assert "4761739001010010" not in out.stdout + out.stderr
