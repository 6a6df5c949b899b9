"""The store manager's status page, its JSON and the Prometheus metrics (docs/status-page.md).

:func:`add_status_routes` mounts ``/``, ``/status.json`` and ``/metrics`` on an aiohttp
application, reading the daemon snapshot on every request; :func:`render_metrics` and
:class:`SnapshotCollector` give the Prometheus exposition of one snapshot; :func:`scrub` masks
anything shaped like a PAN or track 2 before anything is rendered.
"""

from __future__ import annotations

from gateway.web.metrics import SnapshotCollector, render_metrics
from gateway.web.status import SnapshotSource, add_status_routes
from gateway.web.values import scrub

__all__ = ["SnapshotCollector", "SnapshotSource", "add_status_routes", "render_metrics", "scrub"]
