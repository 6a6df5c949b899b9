"""The daemon's log lines as ``posgw run`` configures them (gateway/daemon/logs.py).

Run in a child interpreter: pytest's own handlers on the root logger would make
``logging.basicConfig`` a no-op in this process.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.daemon.logs import configure_logging

_CHILD = """
import logging, sys
from gateway.daemon.logs import configure_logging
configure_logging(sys.argv[1], sys.stderr)
log = logging.getLogger("gateway.payments")
log.debug("debug %s", 1)
log.info("lane[3] payment %s: %s", "pay_x", "COMPLETED")
log.warning("warned")
"""


def _lines(level: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, level], capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    assert done.stdout == ""
    return done.stderr.splitlines()


def test_info_is_one_line_per_record_without_debug() -> None:
    assert _lines("info") == [
        "INFO gateway.payments: lane[3] payment pay_x: COMPLETED",
        "WARNING gateway.payments: warned",
    ]


def test_level_names_are_case_blind_and_filter() -> None:
    assert _lines("WARNING") == ["WARNING gateway.payments: warned"]
    assert _lines("debug")[0] == "DEBUG gateway.payments: debug 1"


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        configure_logging("loud", sys.stderr)
