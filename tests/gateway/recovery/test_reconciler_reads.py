"""The reconciler's two tasks share one queue, and each reads only its own payments again.

A shop that went offline queues many forwards, and every new one wakes both tasks: the resolver
used to read every queued forward through the journal's worker on each wake-up, only to pass
over it (docs/performance.md). A real journal on a real file; the journal's ``get`` is counted
by a thin wrapper around it (``tests/gateway/recovery_support.py``: the reads themselves are
the journal's).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from gateway.acquirer import AcquirerClient
from gateway.journal import PaymentState
from gateway.recovery.reconciler import FORWARDING, RESOLVING
from tests.gateway.journal_support import drive_to, open_journal
from tests.gateway.recovery_support import counted_reconciler

S = PaymentState


async def test_the_resolver_reads_the_forwards_once_and_its_own_payments_every_pass(
    tmp_path: Path,
) -> None:
    async with (
        open_journal(tmp_path) as journal,
        AcquirerClient(base_url="http://127.0.0.1:9") as client,
    ):
        counting, reconciler = counted_reconciler(journal, client)
        forwards = [(await drive_to(journal, S.STORED_FOR_FORWARDING)).id for _ in range(3)]
        for payment_id in forwards:
            reconciler.add(payment_id)

        await reconciler.pass_once(RESOLVING)
        assert counting.reads == Counter(forwards)  # read once, to learn they are forwards
        await reconciler.pass_once(RESOLVING)
        await reconciler.pass_once(RESOLVING)
        assert counting.reads == Counter(forwards)  # not again: the forwarder's business
        assert reconciler.pending == 3

        # the resolver's own payment (nothing sent yet: cancelled) is read and resolved
        abandoned = (await drive_to(journal, S.CARD_READ)).id
        reconciler.add(abandoned)
        await reconciler.pass_once(RESOLVING)
        assert counting.reads[abandoned] == 1
        assert (await journal.get(abandoned)).state is S.CANCELLED
        assert reconciler.pending == 3
        assert counting.reads == Counter(forwards) + Counter([abandoned])

        # queued again: read again, whatever it showed before
        reconciler.add(forwards[0])
        await reconciler.pass_once(RESOLVING)
        assert counting.reads[forwards[0]] == 2
        assert counting.reads[forwards[1]] == 1


async def test_the_forwarder_passes_over_the_resolvers_payments_in_the_same_way(
    tmp_path: Path,
) -> None:
    async with (
        open_journal(tmp_path) as journal,
        AcquirerClient(base_url="http://127.0.0.1:9") as client,
    ):
        counting, reconciler = counted_reconciler(journal, client)
        payment = await drive_to(journal, S.CARD_READ)
        reconciler.add(payment.id)
        await reconciler.pass_once(FORWARDING)  # read: a cancel, the resolver's
        await reconciler.pass_once(FORWARDING)
        assert counting.reads[payment.id] == 1
        assert (await journal.get(payment.id)).state is S.CARD_READ
        await reconciler.pass_once(RESOLVING)  # the resolver reads it and cancels it
        assert counting.reads[payment.id] == 2
        assert (await journal.get(payment.id)).state is S.CANCELLED
        assert reconciler.pending == 0
