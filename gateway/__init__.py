"""posgw gateway: the shop daemon (lanes, till API, journal, acquirer client, sync, status page).

Present today: the ``posgw`` command line, the online payment API client (:mod:`gateway.acquirer`)
and the crash-safe journal (:mod:`gateway.journal`); the daemon that ties them to the lanes
comes with the gateway issues.
"""
