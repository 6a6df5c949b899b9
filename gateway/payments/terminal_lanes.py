"""The daemon's smart-terminal (TPE) lanes, picked out of all its lanes by their device URL.

A base for the services that act on a sale at the terminal that took it (refunds, voids): they
handle a payment only when its lane is one of these (:data:`~gateway.payments.smart_terminal.
TERMINAL_SCHEMES`); the acquirer's path handles the rest.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers import parse_url
from gateway.payments.lane import Lane
from gateway.payments.smart_terminal import TERMINAL_SCHEMES

__all__ = ["TerminalLanes"]


class TerminalLanes:
    """The smart-terminal lanes of a daemon, by the lane id the journal stores.

    Args:
        lanes: The daemon's lanes by id.
    """

    def __init__(self, lanes: Mapping[int, Lane]) -> None:
        self._lanes = {str(lane_id): lane for lane_id, lane in lanes.items()
                       if parse_url(lane.config.reader).scheme in TERMINAL_SCHEMES}  # fmt: skip

    def handles(self, lane: str) -> bool:
        """True when ``lane`` is a smart-terminal lane."""
        return lane in self._lanes
