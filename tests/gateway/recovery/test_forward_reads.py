"""A forward reads its payment and its sealed request in one request to the journal's worker
(:meth:`gateway.journal.Journal.get_for_forwarding`), and the forwarder's own read still says
what keeps a request from being opened. A real journal file, a real acquirer host over HTTP;
the reads are counted by a thin wrapper (``tests/gateway/recovery_support.py``)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from gateway.journal import PaymentState
from gateway.recovery.reconciler import FORWARDING, RESOLVING
from tests.gateway.journal_support import drive_to
from tests.gateway.recovery.test_wal_truncation import _forwarder, _stored

S = PaymentState


async def test_a_forward_takes_one_worker_request_to_read_and_one_to_journal_the_answer(
    tmp_path: Path,
) -> None:
    async with _forwarder(tmp_path) as (journal, counting, reconciler):
        payment_id, _ = await _stored(journal, tmp_path / "journal.db", 1)
        reconciler.add(payment_id)
        _, requests_before = journal.commit_counts()
        await reconciler.pass_once(FORWARDING)
        _, requests_after = journal.commit_counts()
        assert (await journal.get(payment_id)).state in (S.FORWARDED, S.FORWARD_DECLINED)
        assert counting.reads[payment_id] == 1 and counting.request_reads[payment_id] == 0
        assert counting.with_request[payment_id] == 1
        assert requests_after - requests_before == 2  # the reads, then the answer


async def test_the_resolver_reads_no_sealed_request(tmp_path: Path) -> None:
    async with _forwarder(tmp_path) as (journal, counting, reconciler):
        payment_id, _ = await _stored(journal, tmp_path / "journal.db", 1)
        reconciler.add(payment_id)
        await reconciler.pass_once(RESOLVING)
        assert counting.reads[payment_id] == 1 and reconciler.pending == 1
        assert counting.with_request[payment_id] == 0  # a plain get: nothing decrypted
        assert (await journal.get(payment_id)).state is S.STORED_FOR_FORWARDING


async def test_a_request_that_cannot_be_opened_is_read_again_and_the_payment_waits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with _forwarder(tmp_path) as (journal, counting, reconciler):
        path = tmp_path / "journal.db"
        payment_id, _ = await _stored(journal, path, 1)
        other = sqlite3.connect(path)  # the sealed row altered on disk
        with other:
            other.execute(
                "UPDATE vault SET ciphertext = zeroblob(length(ciphertext)) WHERE payment_id = ?",
                (payment_id,),
            )
        other.close()
        reconciler.add(payment_id)
        with caplog.at_level(logging.ERROR, logger="gateway.reconcile"):
            await reconciler.pass_once(FORWARDING)
        assert counting.reads[payment_id] == 1 and counting.request_reads[payment_id] == 1
        assert reconciler.pending == 1
        assert (await journal.get(payment_id)).state is S.STORED_FOR_FORWARDING
        assert "cannot resolve" in caplog.text and "authentication" in caplog.text


async def test_a_payment_that_does_not_await_forwarding_comes_back_without_a_request(
    tmp_path: Path,
) -> None:
    async with _forwarder(tmp_path) as (journal, _, _):
        created = await drive_to(journal, S.CARD_READ)
        payment, sealed = await journal.get_for_forwarding(created.id)
        assert payment.state is S.CARD_READ and sealed is None
