"""Defensive reading of the daemon snapshot: card-data scrubbing and tolerant coercion.

The status page and the metrics read a JSON-like snapshot produced elsewhere
(``Daemon.snapshot()``). It is meant to be clean, but the page is the last place a mistake
upstream could show a card number to anyone who walks past the back office, so:

* :func:`scrub` walks the whole snapshot once and replaces anything shaped like a full PAN
  (ISO/IEC 7812-1: 12 to 19 digits, optionally grouped by single spaces or dashes, passing the
  Luhn check of Annex B) with its mask (first 6 + last 4 at most, PCI DSS 3.4), and anything
  shaped like a track-2 equivalent (ISO/IEC 7813: digits, ``D`` or ``=``, digits) with a
  masked PAN and hidden remainder. It also makes the result JSON-safe (string keys, finite
  floats, bounded depth), whatever the input types were.
* :func:`as_text`, :func:`as_int`, :func:`as_bool` and :func:`as_time` read one field and give
  ``None`` for a missing or mistyped value, so the page can say "unknown" instead of failing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from gateway.card_data import luhn_ok
from terminal import mask_pan

__all__ = [
    "MAX_DEPTH",
    "as_bool",
    "as_int",
    "as_mapping",
    "as_text",
    "as_time",
    "field",
    "scrub",
    "scrub_text",
    "zone_of",
]

#: Nesting below this depth is replaced by a placeholder (a snapshot is four levels deep).
MAX_DEPTH = 12

# A run of digits, single spaces or dashes allowed between digits (a PAN as printed).
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d)*")
# Twelve digits in one such run: the least that can be a PAN or a track 2 (both masks need it).
_TWELVE_DIGITS = re.compile(r"\d(?:[ -]?\d){11}")
#: Integers below this have fewer than 12 digits: never a PAN.
_SHORTEST_PAN = 10**11
# A track-2 equivalent: PAN, separator, expiry and the rest (discretionary data).
_TRACK2 = re.compile(r"(\d{12,19})[D=]\d{4}[\dF]*", re.IGNORECASE)
# Epoch seconds that make sense for a status page (2001-09-09 .. 2286-11-20).
_EPOCH_MIN, _EPOCH_MAX = 1e9, 1e10


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    digits = run.replace(" ", "").replace("-", "")
    if len(digits) < 12:
        return run
    if len(digits) <= 19:
        return mask_pan(digits) if luhn_ok(digits) else run
    # A PAN with digits glued after it: hide the whole run, it cannot be shown safely.
    if any(luhn_ok(digits[:n]) for n in range(12, 20)):
        return "*" * (len(digits) - 4) + digits[-4:]
    return run


def scrub_text(text: str) -> str:
    """Mask every PAN-shaped or track-2-shaped part of ``text`` (first 6 + last 4 at most).

    ISO/IEC 7812-1 (PAN structure, Luhn check, Annex B); ISO/IEC 7813 (track 2 layout).
    Most texts of a snapshot hold no run of 12 digits: one search says so, and they are
    returned as they are (two thirds of the page's scrubbing time went to them).
    """
    if len(text) < 12 or _TWELVE_DIGITS.search(text) is None:
        return text
    text = _TRACK2.sub(lambda m: mask_pan(m.group(1)) + "=****", text)
    return _DIGIT_RUN.sub(_mask_run, text)


def scrub(value: Any, depth: int = 0) -> Any:
    """A JSON-safe deep copy of ``value`` with card-number-shaped data masked.

    Strings are masked with :func:`scrub_text`; an integer that reads as a PAN becomes its
    masked string; non-finite floats become None; mappings get string keys (scrubbed too);
    tuples and lists become lists; bytes become ``"<N bytes>"``; a dataclass instance (the
    daemon's typed :class:`~gateway.daemon.snapshot.Snapshot`) becomes the mapping of its fields,
    in one walk with the scrubbing (no ``to_json()`` copy first); any other object becomes its
    scrubbed ``str()``; nesting deeper than :data:`MAX_DEPTH` becomes ``"…"``.

    The exact types a snapshot is made of (``str``, ``dict``, ``int``, ``list``, the snapshot's
    dataclasses) are recognised by one type test each, most frequent first (a snapshot of 16
    lanes is about 900 values: the ``isinstance`` chain was most of the walk's time); any other
    type, subclasses included, goes through :func:`_scrub_any`, the same rules in full
    (``tests/gateway/web/test_scrub_walk.py`` checks that both give the same).
    """
    kind = type(value)
    if kind is str:
        return value if len(value) < 12 else scrub_text(value)
    if kind is dict:
        return "…" if depth >= MAX_DEPTH else _scrub_dict(value, depth + 1)
    if value is None or kind is bool:
        return value
    if kind is int:
        return value if -_SHORTEST_PAN < value < _SHORTEST_PAN else _scrub_int(value)
    if kind is list or kind is tuple:
        return "…" if depth >= MAX_DEPTH else [scrub(item, depth + 1) for item in value]
    names = _FIELD_NAMES.get(kind)  # a dataclass met before
    if names is not None:
        if depth >= MAX_DEPTH:
            return "…"
        return {name: _scrub_field(name, getattr(value, name), depth + 1) for name in names}
    return _scrub_any(value, depth)


def _scrub_dict(value: dict[Any, Any], depth: int) -> dict[str, Any]:
    """A plain ``dict``'s items scrubbed at ``depth`` (the rules of :func:`_scrub_any`)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = key if type(key) is str else str(key)
        out[name if len(name) < 12 else scrub_text(name)] = (
            item if type(item) is int and name.endswith("_ms") else scrub(item, depth)
        )
    return out


def _scrub_int(value: int) -> int | str:
    text = str(value)
    masked = scrub_text(text)
    return value if masked == text else masked


def _scrub_any(value: Any, depth: int) -> Any:
    """:func:`scrub` for any value, by ``isinstance`` (subclasses, mappings of any kind)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -_SHORTEST_PAN < value < _SHORTEST_PAN:
            return value
        return _scrub_int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        return {scrub_text(str(key)): _scrub_field(str(key), item, depth + 1)
                for key, item in value.items()}  # fmt: skip
    if isinstance(value, list | tuple):
        return [scrub(item, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    if is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES.get(type(value))
        if names is None:
            names = _FIELD_NAMES[type(value)] = tuple(f.name for f in fields(value))
        return {name: _scrub_field(name, getattr(value, name), depth + 1) for name in names}
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the page
        return "?"
    return scrub_text(text)


def _scrub_field(key: str, value: Any, depth: int) -> Any:
    """:func:`scrub` of a field's value; a ``*_ms`` integer is a time the gateway computed.

    A 13-digit millisecond time passes the Luhn check one time in ten: masked, it would turn
    a day's ``closed_ms`` into a string now and then (docs/status-page.md).
    """
    if type(value) is int and key.endswith("_ms"):
        return value
    return scrub(value, depth)


#: The field names of each dataclass met (identifiers: nothing to mask in them).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def field(mapping: Any, *path: str) -> Any:
    """Follow ``path`` through nested mappings; None where a step is missing or not a mapping."""
    current = mapping
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def as_text(value: Any, *, limit: int = 200) -> str | None:
    """A one-line text of at most ``limit`` characters, or None for missing/empty/containers."""
    if type(value) is str:  # most values: no abstract-class test
        text = " ".join(value.split())
    elif value is None or isinstance(value, Mapping | list | tuple | bool):
        return None
    else:
        text = " ".join(str(value).split())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_int(value: Any) -> int | None:
    """An integer (a bool, float or numeric string is not accepted unless integral)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_bool(value: Any) -> bool | None:
    """True/False from a bool (or 0/1, "true"/"false"); None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def as_time(value: Any, zone: tzinfo = UTC) -> datetime | None:
    """An aware datetime from ISO-8601 text or epoch seconds; None when it is neither.

    Args:
        value: ``"2025-11-22T10:42:00+01:00"``, ``"...Z"``, or epoch seconds (the drivers'
            diagnostics use ``time.time()`` values).
        zone: The zone assumed for a naive ISO text, and the zone epoch values are shown in.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or not _EPOCH_MIN <= value < _EPOCH_MAX:
            return None
        return datetime.fromtimestamp(value, tz=UTC).astimezone(zone)
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(zone)
    except (OverflowError, ValueError):
        return None


def zone_of(value: Any) -> tzinfo:
    """The zone of an ISO-8601 ``now`` (so times show in the shop's zone); UTC otherwise."""
    if not isinstance(value, str) or len(value) > 64:
        return UTC
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return UTC
    return parsed.tzinfo or UTC
