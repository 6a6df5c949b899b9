"""The daemon's event loop: asyncio's own by default, or uvloop (libuv's) when configured.

``event_loop = "asyncio"`` (the default) or ``"uvloop"`` at the top of the configuration file
(docs/daemon.md, "Event loop"). Both run the same code: the daemon uses only the loop calls
both implement (streams, ``start_tls``, ``add_reader``, signal handlers, executors). uvloop is a
declared dependency; a configuration that names it on a machine without it is a
:class:`ConfigError`, never a silent fall-back, so a measured figure always says which loop it
is of (docs/performance.md, "Session 10").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from gateway.errors import ConfigError

__all__ = ["EventLoopName", "loop_factory", "run", "running_loop_name"]

EventLoopName = Literal["uvloop", "asyncio"]
T = TypeVar("T")


def loop_factory(name: EventLoopName) -> Callable[[], asyncio.AbstractEventLoop]:
    """A callable making a new loop of ``name``.

    Raises:
        ConfigError: ``uvloop`` is asked for and cannot be imported.
    """
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError as exc:
        raise ConfigError(
            f'event_loop = "uvloop" but uvloop cannot be imported ({exc}); install it '
            '(a dependency of posgw) or set event_loop = "asyncio"'
        ) from None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], name: EventLoopName) -> T:
    """Run ``main`` to its end on a new loop of ``name`` (as :func:`asyncio.run` does)."""
    try:
        factory = loop_factory(name)
    except ConfigError:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """``uvloop`` or ``asyncio``: the implementation of the running loop (for the logs)."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
