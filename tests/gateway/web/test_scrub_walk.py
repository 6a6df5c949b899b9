"""``scrub``'s walk by exact type gives what the rules by ``isinstance`` give, for any input.

:func:`gateway.web.values.scrub` recognises the snapshot's own types (``str``, ``dict``,
``int``, ``list``, the snapshot's dataclasses) by one type test each and sends every other
value through :func:`gateway.web.values._scrub_any`, the same rules in full. The reference
here is those rules applied everywhere (the walk before the fast path): the two must agree,
values and types, on a 16-lane snapshot as the daemon makes it and on the odd inputs the page
must survive (subclasses, other mappings, deep nesting, card numbers in keys, values and
integers, ``*_ms`` times).
"""

from __future__ import annotations

import enum
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import pytest

from gateway.web import values
from gateway.web.values import MAX_DEPTH, scrub, scrub_text

PAN = "4761739001010010"  # Luhn-valid test PAN
MS = 1764963000005  # a 13-digit millisecond time that passes the Luhn check (masked as text)


def _reference(value: Any, depth: int = 0) -> Any:
    """The walk by ``isinstance`` alone (the rules of the module's docstring)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -(10**11) < value < 10**11:
            return value
        text = str(value)
        masked = scrub_text(text)
        return value if masked == text else masked
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= MAX_DEPTH:
        return "…"

    def item(key: str, inner: Any) -> Any:
        return inner if type(inner) is int and key.endswith("_ms") else _reference(inner, depth + 1)

    if isinstance(value, Mapping):
        return {scrub_text(str(k)): item(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reference(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: item(f.name, getattr(value, f.name)) for f in fields(value)}
    return scrub_text(str(value))


class Level(enum.IntEnum):
    HIGH = 3


class Word(enum.StrEnum):
    READY = "ready"


class Text(str):
    pass


@dataclass
class Payment:
    id: str
    amount: int
    masked_pan: str | None
    started_ms: int = MS
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lane:
    id: int
    device: dict[str, Any]
    payment: Payment | None
    for_manager: tuple[str, ...] = ()


def _snapshot() -> dict[str, Any]:
    lanes = [
        Lane(
            id=n,
            device={"state": "ready", "since": "2026-12-06T03:29:48.323697+00:00",
                    "last_error": None if n % 3 else f"card {PAN} refused", "apdus": 526 * n,
                    "device": {"url": f"sim://bench-lanes-{n}?inline=1", "card_present": True}},
            payment=None if n % 4 == 0 else Payment(f"pay_{n:016d}", 1250, "476173******0010"),
            for_manager=("pay_x", PAN) if n == 5 else (),
        )
        for n in range(1, 17)
    ]  # fmt: skip
    return {
        "shop": "Shop 1", "ready": True, "lanes": lanes,
        "journal": {"payments_today": 2905, "closed_ms": MS, "note": str(MS)},
        "money": {"takings": {"EUR": 3_631_250}, "approval_rate": 0.97, "median_auth_ms": 3.5,
                  "last_payments": [{"at": "2026-12-06T03:29:51+00:00", "amount": 500,
                                     "masked_pan": "476173******0010", "state": "COMPLETED"}] * 10},
    }  # fmt: skip


def _deep(levels: int) -> Any:
    value: Any = PAN
    for n in range(levels):
        value = {f"k{n}": value} if n % 2 else [value]
    return value


ODD: list[Any] = [
    None, True, 0, -5, 10**11 - 1, 10**11, int(PAN), -int(PAN), 2**70, 1.5, math.nan, math.inf,
    "", "short", PAN, f"track {PAN}=29121010000000000000",
    f"{PAN[:4]} {PAN[4:8]} {PAN[8:12]} {PAN[12:]}",
    Text(PAN), Text("ok"), Word.READY, Level.HIGH, b"\x00" * 3, bytearray(2), memoryview(b"abc"),
    (1, "two", [PAN]), {1: "int key", 2.5: "float key", None: "none key", PAN: "pan key"},
    {"closed_ms": MS, "started_ms": True, "x_ms": float(MS), "note_ms": str(MS), "other": MS},
    types.MappingProxyType({"a": PAN, "b_ms": MS}), Payment("p", 1, None, extra={"pan": PAN}),
    _deep(MAX_DEPTH - 1), _deep(MAX_DEPTH), _deep(MAX_DEPTH + 3), object(),
]  # fmt: skip


def _same(left: Any, right: Any) -> bool:
    """Equal values of equal types, all the way down (NaN is None in both)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        pairs = zip(left, right, strict=False)
        return len(left) == len(right) and all(_same(a, b) for a, b in pairs)
    if isinstance(left, str) and left.startswith("<object object at"):
        return right.startswith("<object object at")
    return bool(left == right)


@pytest.mark.parametrize("value", ODD, ids=lambda v: type(v).__name__)
def test_odd_values_scrub_as_the_rules_say(value: Any) -> None:
    assert _same(scrub(value), _reference(value))
    assert _same(scrub([value, {"nested": value}]), _reference([value, {"nested": value}]))


def test_a_snapshot_scrubs_as_the_rules_say() -> None:
    snapshot = _snapshot()
    out = scrub(snapshot)
    assert _same(out, _reference(snapshot))
    lanes = out["lanes"]
    assert lanes[2]["device"]["last_error"] == "card 476173******0010 refused"
    assert lanes[4]["for_manager"] == ["pay_x", "476173******0010"]
    assert out["journal"]["closed_ms"] == MS and out["journal"]["note"] != str(MS)


def test_the_fast_path_is_taken_for_the_snapshot_types(monkeypatch: pytest.MonkeyPatch) -> None:
    scrub(Payment("p", 1, None))  # the dataclass is met once through the full rules
    seen: list[type] = []
    full = values._scrub_any

    def spy(value: Any, depth: int) -> Any:
        seen.append(type(value))
        return full(value, depth)

    monkeypatch.setattr(values, "_scrub_any", spy)
    scrub({"lanes": [Payment("p", 1, "476173******0010")], "ok": True, "n": None, "s": PAN})
    assert seen == []
    scrub({"x": 1.5, "t": Text("a")})
    assert seen == [float, Text]
