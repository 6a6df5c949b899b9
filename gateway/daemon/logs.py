"""The daemon's log lines: how ``posgw run`` configures :mod:`logging`.

One line per record, ``LEVEL logger: message``, on a text stream: under systemd that is stderr,
which the journal stores with the time and the unit (``systemd/posgw.service``). ``info`` is
the default level (``posgw run --log-level``). Benchmarks configure it the same way, so that
they pay for the lines a shop's daemon writes.
"""

from __future__ import annotations

import logging
from typing import TextIO

__all__ = ["LOG_FORMAT", "configure_logging"]

#: No time stamp: the journal (or whatever reads stderr) records when each line came.
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, stream: TextIO) -> None:
    """Send the daemon's records at ``level`` (``debug``, ``info``, ...) and above to ``stream``.

    Raises:
        ValueError: ``level`` is not a level name of :mod:`logging`.
    """
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    logging.basicConfig(level=number, format=LOG_FORMAT, stream=stream)
