"""``posgw-sim decode`` through the installed console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "posgw-sim"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    exe = str(BIN) if BIN.exists() else shutil.which("posgw-sim")
    assert exe, "posgw-sim console script not installed"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60, check=False)


def test_decode_prints_tree_with_tag_names() -> None:
    out = _run("decode", "6F1A840E325041592E5359532E4444463031A5088801025F2D02656E")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("6F File Control Information")
    assert any(line.startswith("  84 Dedicated File (DF) Name") for line in lines)
    assert any("5F2D Language Preference" in line and '"en"' in line for line in lines)


def test_decode_masks_pan() -> None:
    out = _run("decode", "5A084761739001010010")
    assert out.returncode == 0
    assert "4761739001010010" not in out.stdout and "476173******0010" in out.stdout


def test_decode_bad_input_prints_typed_error_and_exits_2() -> None:
    out = _run("decode", "9F0205AABB")
    assert out.returncode == 2
    assert (
        "runs past the end" in out.stderr and "tag 9F02" in out.stderr and "offset 0" in out.stderr
    )
    assert _run("decode", "XYZ").returncode == 2
