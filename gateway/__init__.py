"""posgw gateway: the shop daemon, one folder per part (docs/architecture.md).

* :mod:`gateway.daemon`: the process: configuration, wiring, the TaskGroup, sd_notify, the CLI,
  the typed status snapshot.
* :mod:`gateway.payments`: the lanes and the one payment session (card readers driven by our
  kernel, smart terminals that run EMV themselves), settlement, PIN pad.
* :mod:`gateway.recovery`: what a lane or a previous run left unfinished: reconciler, refunds,
  retry queue.
* :mod:`gateway.acquirer`: the online payment API client.
* :mod:`gateway.journal`: the crash-safe SQLite journal, outbox and card-data vault.
* :mod:`gateway.till`: every till-facing HTTP route and the lane event hub.
* :mod:`gateway.sync`: head-office MQTT: outbox publisher, stock store and stock sync.
* :mod:`gateway.web`: the status page and metrics, reading only the typed snapshot.
"""
