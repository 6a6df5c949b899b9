"""posgw gateway: the shop daemon (lanes, till API, journal, acquirer client, sync, status page).

The daemon itself arrives in later issues; today this package holds the ``posgw`` command line.
"""
