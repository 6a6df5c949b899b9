"""``posgw-sim pay --card-module module:factory``: plug a card object of one's own into the kernel.

``module`` is an importable module name (``mycards.visa``) or a path to a Python file
(``./mycard.py``); ``factory`` names a callable in it taking no argument and returning the
card. Two shapes of card are accepted:

* a *channel*: anything with ``async transceive(capdu: bytes) -> bytes`` (the one-method card
  channel of ``terminal.transport``; a real reader backend has this shape too);
* a *card*: anything with ``process(capdu: bytes) -> bytes`` (the simulator's card interface,
  :class:`simulator.card.VirtualCard` and :class:`simulator.vpcd.VirtualCard`); ``process`` may
  also return an awaitable.

The interface (contact or contactless) is ``--interface`` when given, else the first one the
object's ``profile.interfaces`` lists (a :class:`~simulator.card.VirtualCard` has one), else
contact.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CardModuleError", "ProcessChannel", "as_channel", "card_interface", "load_card"]


class CardModuleError(ValueError):
    """``--card-module`` names nothing usable (the message says what and why)."""


class ProcessChannel:
    """A card with ``process`` seen as an async channel (``transceive``)."""

    def __init__(self, card: Any) -> None:
        """Wrap ``card`` (its ``process`` may return bytes or an awaitable of bytes)."""
        self.card = card

    async def transceive(self, capdu: bytes) -> bytes:
        """Ask the card."""
        answer = self.card.process(capdu)
        if inspect.isawaitable(answer):
            answer = await answer
        return bytes(answer)

    def __repr__(self) -> str:
        return f"ProcessChannel({type(self.card).__name__})"


def _import(module: str) -> Any:
    if module.endswith(".py") or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise CardModuleError(f"--card-module: no file {module}")
        spec = importlib.util.spec_from_file_location(f"posgw_card_module_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise CardModuleError(f"--card-module: cannot load {module}")
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        message = f"--card-module: no module {module!r} ({exc.name} not found)"
        raise CardModuleError(message) from exc


def load_card(target: str) -> Any:
    """Import ``module:factory`` and call the factory.

    Raises:
        CardModuleError: malformed target, missing module or factory, or an object that is
            neither a channel nor a card.
    """
    module, sep, name = target.rpartition(":")
    if not sep or not module or not name.isidentifier():
        raise CardModuleError("--card-module: expected module:factory (or path.py:factory)")
    factory: Callable[[], Any] | None = getattr(_import(module), name, None)
    if not callable(factory):
        raise CardModuleError(f"--card-module: {module} has no callable {name!r}")
    card = factory()
    if not callable(getattr(card, "transceive", None)) and not callable(
        getattr(card, "process", None)
    ):
        raise CardModuleError(
            f"--card-module: {name}() returned a {type(card).__name__}, which has neither "
            "async transceive(capdu) nor process(capdu)"
        )
    return card


def as_channel(card: Any) -> Any:
    """The kernel's channel for ``card``: itself when it has ``transceive``, else a wrapper."""
    if callable(getattr(card, "transceive", None)):
        return card
    return ProcessChannel(card)


def card_interface(card: Any, requested: str | None) -> str:
    """``requested``, else the first of the card profile's interfaces, else ``contact``."""
    if requested is not None:
        return requested
    interfaces = getattr(getattr(card, "profile", None), "interfaces", None)
    if isinstance(interfaces, (tuple, list)) and interfaces and interfaces[0] in (
        "contact", "contactless"
    ):
        return str(interfaces[0])
    return "contact"
