"""Finishing what a lane or a previous run left: reconciler, refunds, retry queue.

:class:`gateway.recovery.reconciler.Reconciler` resolves payments in doubt (status query,
reversal) and forwards stored payments; :class:`gateway.recovery.refunds.RefundService` sends
refunds and resends those in doubt; both retry through one
:class:`gateway.recovery.retry_queue.RetryQueue` (docs/daemon.md, docs/refunds.md).
"""
