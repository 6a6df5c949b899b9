"""posgw simulator: virtual cards, readers, terminals, acquirer and head office, all local."""
