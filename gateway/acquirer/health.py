"""Whether the acquirer answered lately: one object shared by lanes, reconciler and refunds.

The status page and metrics show it (docs/status-page.md); it holds no card data.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["AcquirerHealth"]


class AcquirerHealth:
    """Whether the acquirer answered lately (for the snapshot; no card data)."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._clock = clock
        self.reachable: bool | None = None
        self.last_error: str | None = None
        self.last_success: float | None = None

    def success(self) -> None:
        """The host answered."""
        self.reachable = True
        self.last_success = self._clock()

    def failure(self, exc: BaseException) -> None:
        """The host could not be reached or did not answer."""
        self.reachable = False
        self.last_error = f"{type(exc).__name__}: {exc}"
