"""Every till-facing route: payments, refunds, the events stream, and the lane event hub.

:mod:`gateway.till.payments` (``/api/lanes/...``), :mod:`gateway.till.refunds`
(``/api/refunds``), :mod:`gateway.till.events` (Server-Sent Events), the shared JSON body and
JSON error helpers in :mod:`gateway.till.jsonio`, and :mod:`gateway.till.hub` (per-lane event
history the SSE routes replay). The till layer never touches the journal's SQL modules.
"""
