"""The head-office wire format: topics and JSON payloads (docs/sync.md).

Three topic families per shop, all under ``posgw/{shop}/``:

* ``sales`` (shop → head office, QoS 1): one JSON sale record per message, from the journal's
  outbox. At-least-once: head office deduplicates by ``id`` (the payment id).
* ``stock/{sku}`` (head office → shop, QoS 1, retained): the level of one SKU with a version
  that only grows, so an older message never overwrites a newer one, whatever the order in
  which the broker delivers them.
* ``status`` (shop → anyone, QoS 1, retained): ``online`` on connect; ``offline`` on a clean
  stop, and as the MQTT last will when the gateway dies (MQTT 5, 3.1.2.5 Will Flag).
* ``acks`` (head office → shop, QoS 1): the ids of sales head office has stored, so the shop
  knows a sale arrived end to end, not only at the broker. Each carries a Message Expiry
  Interval (MQTT 5, 3.3.2.3.3): an acknowledgement older than the shop's session is stale.

Every payload is described by a JSON Schema in ``gateway/contracts/mqtt/`` (docs/contracts.md).

Everything here is pure (no I/O), so it is tested without a broker.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from gateway.journal.errors import CardDataRejected, InvalidRecord
from gateway.journal.guard import check_masked_pan, check_value, find_card_data
from gateway.journal.records import OutboxItem
from gateway.sync.errors import CardDataRefused, MessageError

__all__ = [
    "MAX_ACK_IDS",
    "SCHEMA",
    "StockUpdate",
    "acks_topic",
    "check_name",
    "days_topic",
    "parse_acks",
    "parse_stock_update",
    "sale_message",
    "sales_topic",
    "status_payload",
    "status_topic",
    "stock_filter",
    "stock_topic",
]

#: Version of the JSON payloads; bumped on an incompatible change.
SCHEMA = 1

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Largest version and level accepted (fits SQLite's signed 64-bit integer).
_MAX_INT = 2**63 - 1


def check_name(kind: str, value: str) -> str:
    """A shop id or SKU usable as one MQTT topic level (no ``/``, ``+``, ``#``; MQTT 4.7.1).

    Raises:
        ValueError: Not 1-64 of ``A-Z a-z 0-9 . _ -``.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{kind}: expected 1-64 of A-Z a-z 0-9 . _ -")
    return value


def sales_topic(shop: str) -> str:
    """``posgw/{shop}/sales``."""
    return f"posgw/{shop}/sales"


def stock_topic(shop: str, sku: str) -> str:
    """``posgw/{shop}/stock/{sku}``."""
    return f"posgw/{shop}/stock/{sku}"


def stock_filter(shop: str) -> str:
    """The subscription filter for every SKU of the shop: ``posgw/{shop}/stock/+``."""
    return f"posgw/{shop}/stock/+"


def status_topic(shop: str) -> str:
    """``posgw/{shop}/status`` (retained)."""
    return f"posgw/{shop}/status"


def days_topic(shop: str) -> str:
    """``posgw/{shop}/days`` (the closed days' records, gateway/sync/days.py)."""
    return f"posgw/{shop}/days"


def acks_topic(shop: str) -> str:
    """``posgw/{shop}/acks`` (head office's acknowledgements of stored sales)."""
    return f"posgw/{shop}/acks"


def status_payload(shop: str, *, online: bool, clean: bool = True) -> bytes:
    """The retained status: ``online``, or ``offline`` with ``clean`` false for the last will."""
    state = "online" if online else "offline"
    body: dict[str, Any] = {"schema": SCHEMA, "shop": shop, "state": state}
    if not online:
        body["clean"] = clean
    return json.dumps(body, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=256)
def _iso_second(seconds: int) -> str:
    """``2026-12-05T22:31:17`` for epoch seconds (a burst of sales shares a few seconds)."""
    t = time.gmtime(seconds)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}")  # fmt: skip


def _iso_ms(ms: int) -> str:
    """``2026-12-05T22:31:17.250Z`` (ISO 8601, UTC, milliseconds) for epoch milliseconds."""
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _card_data_near(snippet: str) -> bool:
    """The guard's verdict on a long digit run and what follows it (the same runs recur from
    sale to sale, an AID for one: each is decided once)."""
    return find_card_data(snippet) is not None


#: Integer fields set by the journal or this module, left out of the card-data re-check.
_GENERATED_NUMBERS = frozenset(("completed_ms", "outbox_id", "amount", "schema"))
#: Where the journal's guard could find card data (gateway.journal.guard): a run of 12 or more
#: digits, spaces and dashes (a PAN, grouped or not, and the digits of a track 2 are in one).
_LONG_RUN = re.compile(r"\d[\d -]{11,}")
#: The same runs in a message that is all ASCII, where ``\d`` is ``[0-9]``: the same matches,
#: found in half the time (sale messages are ASCII but for a basket label's accents).
_LONG_ASCII_RUN = re.compile(r"[0-9][0-9 -]{11,}")


#: Compact, sorted, UTF-8 as is: the sale message's JSON (one encoder, made once).
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)
#: A JSON string literal, UTF-8 as is (the encoder's own quoting, in C).
_quote = json.encoder.encode_basestring
#: The keys the envelope adds to the journal's record (which has none of them).
_ENVELOPE = frozenset(("schema", "shop", "id", "outbox_id", "time"))


def sale_message(item: OutboxItem, *, shop: str) -> bytes:
    """The ``sales`` payload for one outbox record (the journal's sale record plus envelope).

    Adds ``id`` (the payment id, head office's dedup key), ``outbox_id``, ``schema``, ``shop``
    and ``time`` (ISO 8601 UTC of ``completed_ms``) to the record of docs/journal.md. The
    journal's stored JSON of the record (``item.text``) goes in as it is, after the envelope,
    so a drain of thousands of sales does not encode each record again (JSON key order carries
    no meaning; a record that would clash with the envelope's keys is merged and encoded here,
    its keys winning, as before). The whole message passes the journal's card-data guard
    again before it leaves (defence in depth: the journal already refused card data on the way
    in); the masked PAN must be 6 + 4 at most.

    Raises:
        CardDataRefused: Something in the record is shaped like a PAN or a track 2.
    """
    body = item.body  # (read only)
    completed = body.get("completed_ms")
    when = _iso_ms(completed) if isinstance(completed, int) else None
    try:
        check_masked_pan(body.get("masked_pan"))
    except (CardDataRejected, InvalidRecord) as exc:
        raise CardDataRefused("masked_pan") from exc
    stored = item.text
    if stored.startswith("{") and stored.endswith("}") and not _ENVELOPE.intersection(body):
        head = (f'{{"id":{_quote(item.payment_id)},"outbox_id":{int(item.id)},'
                f'"schema":{SCHEMA},"shop":{_quote(shop)},'
                f'"time":{"null" if when is None else _quote(when)}')  # fmt: skip
        text = head + ("}" if stored == "{}" else "," + stored[1:])
    else:
        text = _ENCODER.encode(_with_envelope(item, body, shop, when))
    # The numbers the journal and this module generate (a millisecond timestamp, row ids, the
    # amount in minor units) are not card data: a 13-digit timestamp passes the Luhn check one
    # time in ten, so they are left out, or one sale in ten would be held back for ever. The
    # message is screened in one pass for long digit runs; each that is not one of those numbers
    # goes to the journal's guard with what follows it (a track 2's separator and expiry);
    # only on a hit does the guard walk the message field by field, decide, and name the field.
    generated: set[str] | None = None
    for hit in (_LONG_ASCII_RUN if text.isascii() else _LONG_RUN).finditer(text):
        if generated is None:
            generated = {str(number) for number in (completed, item.id, body.get("amount"))
                         if isinstance(number, int)}  # fmt: skip
        if hit.group() not in generated and _card_data_near(text[hit.start() : hit.end() + 6]):
            message = _with_envelope(item, body, shop, when)
            checked = {k: v for k, v in message.items() if k not in _GENERATED_NUMBERS}
            try:
                check_value("sale", checked)
            except CardDataRejected as exc:
                raise CardDataRefused(exc.field) from exc
            break
    return text.encode()


def _with_envelope(
    item: OutboxItem, body: dict[str, Any], shop: str, when: str | None
) -> dict[str, Any]:
    """The message as a dict: the envelope, then the record (whose keys win, as ever)."""
    return {"schema": SCHEMA, "shop": shop, "id": item.payment_id, "outbox_id": item.id,
            "time": when, **body}  # fmt: skip


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """One snapshot from head office: ``level`` units of ``sku`` as of ``version``.

    ``counted`` is the net quantity of the shop's own sales and refunds head office had
    counted in it (None when head office does not say; docs/sync.md, "Stock").
    """

    sku: str
    level: int
    version: int
    counted: int | None = None


def _int_field(topic: str, body: dict[str, Any], name: str, *, minimum: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(topic, name, "expected an integer")
    if not minimum <= value <= _MAX_INT:
        raise MessageError(topic, name, f"out of range {minimum}..2**63-1")
    return value


def parse_stock_update(topic: str, payload: bytes, *, shop: str) -> StockUpdate:
    """Decode a ``stock/{sku}`` message: ``{"sku": str, "level": int >= 0, "version": int >= 1,
    "counted": int (optional)}`` (gateway/contracts/mqtt/stock.schema.json).

    The SKU in the payload must match the topic's last level, so a message cannot be filed
    under another product by mistake.

    Raises:
        MessageError: Wrong topic, not JSON, a missing or mistyped field, or a SKU mismatch.
    """
    prefix = f"posgw/{shop}/stock/"
    if not topic.startswith(prefix):
        raise MessageError(topic, "topic", f"expected {prefix}<sku>")
    sku = topic[len(prefix) :]
    try:
        check_name("sku", sku)
    except ValueError as exc:
        raise MessageError(topic, "topic", str(exc)) from exc
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(topic, "payload", "not UTF-8 JSON") from exc
    if not isinstance(body, dict):
        raise MessageError(topic, "payload", "expected a JSON object")
    if body.get("sku") != sku:
        raise MessageError(topic, "sku", "does not match the topic")
    level = _int_field(topic, body, "level", minimum=0)
    version = _int_field(topic, body, "version", minimum=1)
    counted = None
    if body.get("counted") is not None:
        counted = _int_field(topic, body, "counted", minimum=-_MAX_INT)
    return StockUpdate(sku=sku, level=level, version=version, counted=counted)


#: Most sale ids in one acknowledgement message.
MAX_ACK_IDS = 1000


def parse_acks(topic: str, payload: bytes, *, shop: str) -> list[str]:
    """Decode an ``acks`` message: ``{"schema": 1, "shop": str, "ids": [str, ...]}``.

    Raises:
        MessageError: Not JSON, another shop, or ``ids`` not a list of 1-1000 sale ids.
    """
    if topic != acks_topic(shop):
        raise MessageError(topic, "topic", f"expected {acks_topic(shop)}")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(topic, "payload", "not UTF-8 JSON") from exc
    if not isinstance(body, dict):
        raise MessageError(topic, "payload", "expected a JSON object")
    if body.get("shop") != shop:
        raise MessageError(topic, "shop", "does not match the topic")
    ids = body.get("ids")
    if not isinstance(ids, list) or not 0 < len(ids) <= MAX_ACK_IDS:
        raise MessageError(topic, "ids", f"expected a list of 1..{MAX_ACK_IDS} sale ids")
    for n, value in enumerate(ids):
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            raise MessageError(topic, f"ids[{n}]", "expected a string of 1-64 characters")
    return list(ids)
