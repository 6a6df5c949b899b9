"""The store manager's status page, its JSON and the Prometheus metrics (docs/status-page.md).

:func:`add_status_routes` mounts ``/``, ``/status.json`` and ``/metrics`` on an aiohttp
application, reading the daemon snapshot on every request; :func:`render_metrics` and
:class:`SnapshotCollector` give the Prometheus exposition of one snapshot; :func:`scrub` masks
anything shaped like a PAN or track 2 before anything is rendered.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gateway.web.status import SnapshotSource, add_status_routes
from gateway.web.values import scrub

if TYPE_CHECKING:
    from gateway.web.metrics import SnapshotCollector, render_metrics

__all__ = ["SnapshotCollector", "SnapshotSource", "add_status_routes", "render_metrics", "scrub"]

#: Loaded on first use: ``prometheus_client`` waits for the first scrape (gateway/web/status.py).
_LAZY = {"SnapshotCollector": "gateway.web.metrics", "render_metrics": "gateway.web.metrics"}


def __getattr__(name: str) -> Any:
    """The metrics names, imported when first asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
