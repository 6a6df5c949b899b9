"""The gateway's exception tree: drawn once in gateway/errors.py, and that drawing is the code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import gateway
from gateway.errors import GatewayError


def _all_modules() -> list[str]:
    names = [gateway.__name__]
    for info in pkgutil.walk_packages(gateway.__path__, prefix="gateway."):
        names.append(info.name)
    for name in names:
        importlib.import_module(name)
    return names


def _drawn_tree() -> dict[str, str | None]:
    """Class name -> parent name, read from the tree in gateway/errors.py's docstring."""
    doc = importlib.import_module("gateway.errors").__doc__ or ""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*)((?:[│ ]   )*)(?:[├└]── )?([A-Z]\w+)(?:\s|$)", line)
        if match is None or ("──" not in line and match.group(3) != "GatewayError"):
            continue
        depth = len(match.group(2)) // 4 + (1 if "──" in line else 0)
        name = match.group(3)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def _code_tree() -> dict[str, str | None]:
    _all_modules()
    parents: dict[str, str | None] = {"GatewayError": None}
    todo = [GatewayError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("gateway.") and not sub.__name__.startswith("_"):
                parents[sub.__name__] = cls.__name__
                todo.append(sub)
    return parents


def test_the_drawn_tree_is_the_class_tree() -> None:
    drawn = _drawn_tree()
    assert len(drawn) > 30  # the drawing was read at all
    assert drawn == _code_tree()


def test_every_public_gateway_exception_is_a_gateway_error() -> None:
    strays = []
    for name in _all_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not attr.startswith("_")
                and not issubclass(value, GatewayError)
            ):
                strays.append(f"{name}.{attr}")
    assert not strays


def test_invalid_record_names_its_field_as_an_attribute() -> None:
    from gateway.journal import InvalidRecord

    error = InvalidRecord("amount", "expected a positive integer of minor units")
    assert error.field == "amount"
    assert str(error) == "amount: expected a positive integer of minor units"
