"""posgw gateway: the shop daemon (lanes, till API, journal, acquirer client, sync, status page).

Entry points: :mod:`gateway.app` (the daemon), :mod:`gateway.lanes` (one payment lane per reader
or terminal), :mod:`gateway.till_api`, :mod:`gateway.journal`, :mod:`gateway.acquirer`,
:mod:`gateway.sync` and :mod:`gateway.web`; ``docs/daemon.md`` describes the whole.
"""
