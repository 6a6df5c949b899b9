"""Payment ids and idempotency keys start with the time, so later ones sort after earlier ones.

A new row then lands on the last page of every index keyed on an id (docs/journal.md,
"Identifiers"); the random part keeps them unguessable and unique; no id ever looks like card
data to the journal's guard.
"""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

from gateway.journal import PaymentState
from gateway.journal.guard import find_card_data
from gateway.journal.store import time_letters
from tests.gateway.journal_support import Clock, drive_to, open_journal

S = PaymentState
PAYMENT_ID = re.compile(r"pay_[a-z]{10}[a-z2-7]{13}")
IDEMPOTENCY_KEY = re.compile(r"idem_[a-z]{10}[a-z2-7]{16}")


def test_time_letters_keep_the_order_of_the_times() -> None:
    rng = random.Random(5)
    times = [rng.randrange(0, 26**10) for _ in range(2000)] + [0, 1, 25, 26, 26**10 - 1]
    encoded = [time_letters(ms) for ms in times]
    assert all(len(text) == 10 and text.isalpha() and text.islower() for text in encoded)
    assert sorted(encoded) == [time_letters(ms) for ms in sorted(times)]
    assert len(set(encoded)) == len(set(times))  # no two times share their letters


def test_time_letters_clamp_out_of_range_clocks() -> None:
    assert time_letters(-5) == time_letters(0) == "a" * 10
    assert time_letters(26**10 + 7) == time_letters(26**10 - 1) == "z" * 10


async def test_ids_made_later_sort_after_every_id_before_them(tmp_path: Path) -> None:
    clock = Clock()
    made: list[str] = []
    keys: list[str] = []
    async with open_journal(tmp_path, clock=clock) as journal:
        for index in range(40):
            clock.now += 0.0005 if index % 2 else 0.003  # some in the same millisecond
            payment = await drive_to(journal, S.AUTH_REQUESTED)
            made.append(payment.id)
            assert payment.idempotency_key is not None
            keys.append(payment.idempotency_key)
    assert all(PAYMENT_ID.fullmatch(payment_id) for payment_id in made)
    assert all(IDEMPOTENCY_KEY.fullmatch(key) for key in keys)
    assert len(set(made)) == len(made) and len(set(keys)) == len(keys)
    # each new id is past every earlier one unless both came in the same millisecond
    millis = [payment_id[4:14] for payment_id in made]
    for index in range(1, len(made)):
        if millis[index] != millis[index - 1]:
            assert made[index] > max(made[:index])
            assert keys[index] > max(keys[:index])
    assert all(find_card_data(text) is None for text in made + keys)
    with sqlite3.connect(tmp_path / "journal.db") as conn:
        (last,) = conn.execute("SELECT max(id) FROM payments").fetchone()
    assert last == made[-1]


async def test_the_same_seed_and_clock_give_the_same_ids(tmp_path: Path) -> None:
    runs = []
    for name in ("one.db", "two.db"):
        async with open_journal(tmp_path, clock=Clock(), seed=11, name=name) as journal:
            runs.append([(await drive_to(journal, S.AUTH_REQUESTED)) for _ in range(5)])
    assert [(p.id, p.idempotency_key) for p in runs[0]] == [
        (p.id, p.idempotency_key) for p in runs[1]
    ]
