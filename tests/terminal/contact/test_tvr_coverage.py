"""Every TVR bit the contact kernel can set has a test that sets it (issue 3, "Must show")."""

from __future__ import annotations

import re
from pathlib import Path

from terminal.bits import TvrBit

ROOT = Path(__file__).resolve().parents[3]
KERNEL = ROOT / "terminal" / "contact"
TESTS = Path(__file__).resolve().parent

#: Set through terminal.oda.results.tvr_byte1_bits (CDA_FAILED and ICC_DATA_MISSING are also
#: set by name in the kernel).
VIA_ODA = {"SDA_FAILED", "DDA_FAILED", "CDA_FAILED", "ICC_DATA_MISSING"}


def kernel_bits() -> set[str]:
    found: set[str] = set(VIA_ODA)
    for path in KERNEL.glob("*.py"):
        found.update(re.findall(r"TvrBit\.([A-Z_0-9]+)", path.read_text()))
    return found


def test_every_tvr_bit_the_kernel_sets_is_asserted_by_a_test() -> None:
    tested: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        if path.name == Path(__file__).name:
            continue
        tested.update(re.findall(r"TvrBit\.([A-Z_0-9]+)", path.read_text()))
    bits = kernel_bits()
    assert bits <= {b.name for b in TvrBit}
    assert len(bits) >= 25
    assert bits - tested == set()
