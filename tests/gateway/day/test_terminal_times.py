"""A day record citing a terminal's totals is not refused as card data for its time.

The clean-clone CI run of 2026-12-05 saw ``POST /api/days/close`` answer 503 "journal
unavailable": the record held ``terminals[0].at_ms``, a 13-digit millisecond time, and the
card-data guard refused it as a PAN whenever that time passed the Luhn check (one close in ten).
Here the clock is set on such a time, so the failure is not left to chance.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.day.terminals import terminal_reconciliation
from gateway.day.totals import AcquirerLine
from gateway.journal import InvalidRecord, Journal
from gateway.journal.guard import find_card_data

#: 1 764 979 200 003 ms: a 13-digit time that passes the Luhn check (the guard calls it a PAN).
LUHN_MS = next(ms for ms in range(1_764_979_200_000, 1_764_979_200_100)
               if find_card_data(str(ms)) == "PAN")  # fmt: skip


async def test_a_luhn_valid_totals_time_is_journaled_with_the_day(tmp_path: Path) -> None:
    assert find_card_data(str(LUHN_MS)) == "PAN"  # the guard would refuse it bare
    async with Journal.open(tmp_path / "j.db", clock=lambda: LUHN_MS / 1000) as journal:
        totals = await journal.add_terminal_totals(
            lane="1", actor="manager:alice", ok=True, transactions=1, debits=5000, refunds=0,
            currency="EUR")
        assert totals.at_ms == LUHN_MS
        entry, count = terminal_reconciliation(
            "1", [AcquirerLine("EUR", "sales_net", 1, 5000)], totals)
        day = await journal.record_day_close(
            opened_ms=0, closed_ms=LUHN_MS, actor="manager:alice", differences=count,
            record={"day": 1, "terminals": [entry]})
    assert day.record["terminals"][0]["at_ms"] == LUHN_MS and count == 0


async def test_a_number_that_is_not_the_cited_totals_time_is_still_guarded(
        tmp_path: Path) -> None:
    async with Journal.open(tmp_path / "j.db", clock=lambda: 1_764_979_200.0) as journal:
        totals = await journal.add_terminal_totals(lane="1", actor="manager:alice", ok=False)
        forged = {"lane": "1", "reconciled": True, "totals_id": totals.id, "at_ms": LUHN_MS}
        with pytest.raises(InvalidRecord) as caught:
            await journal.record_day_close(
                opened_ms=0, closed_ms=1, actor="manager:alice", differences=0,
                record={"day": 1, "terminals": [forged]})
        assert caught.value.field == "day.terminals[0].at_ms"
        assert await journal.last_day_close() is None
