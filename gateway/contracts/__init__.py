"""The published contracts of posgw, as data: JSON Schemas of the MQTT messages (docs/contracts.md).

``gateway/contracts/mqtt/*.schema.json`` describe every message on ``posgw/{shop}/...``
(JSON Schema 2020-12). Head office can validate what it receives with any validator; the
tests validate live messages from a real broker against them, so a message that changes
without its schema fails a test.

:func:`mqtt_validator` returns a ``jsonschema`` validator for a topic family, with the
schemas' relative ``$ref`` (``line.schema.json``) resolved among themselves, never fetched.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

__all__ = ["MQTT_SCHEMAS", "mqtt_schema", "mqtt_validator", "schema_name_for_topic"]

#: Topic family -> schema file name (``gateway/contracts/mqtt/``).
MQTT_SCHEMAS: dict[str, str] = {
    "sales": "sale.schema.json",
    "status": "status.schema.json",
    "stock": "stock.schema.json",
    "acks": "acks.schema.json",
    "days": "day.schema.json",
}
_BASE = "https://posgw.example/contracts/mqtt/"
_TOPIC = re.compile(
    r"posgw/[A-Za-z0-9._-]{1,64}/(sales|status|acks|days|stock/[A-Za-z0-9._-]{1,64})"
)


def _files() -> list[str]:
    folder = resources.files("gateway.contracts").joinpath("mqtt")
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".schema.json"))


@functools.cache
def mqtt_schema(name: str) -> dict[str, Any]:
    """The parsed schema file ``name`` (``"sale.schema.json"``).

    Raises:
        FileNotFoundError: No such schema.
    """
    text = resources.files("gateway.contracts").joinpath("mqtt", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_name_for_topic(topic: str) -> str:
    """The schema of the messages on ``topic``.

    Raises:
        ValueError: Not a posgw topic.
    """
    match = _TOPIC.fullmatch(topic)
    if match is None:
        raise ValueError(f"{topic}: not a posgw topic")
    family = match.group(1).split("/")[0]
    return MQTT_SCHEMAS[family]


def mqtt_validator(name: str) -> Any:
    """A Draft 2020-12 validator for schema ``name``, its ``$ref`` resolved locally.

    Raises:
        ModuleNotFoundError: ``jsonschema`` is not installed.
    """
    import jsonschema
    import referencing

    resources_ = [(_BASE + file, referencing.Resource.from_contents(mqtt_schema(file)))
                  for file in _files()]  # fmt: skip
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(resources_)
    return jsonschema.Draft202012Validator(mqtt_schema(name), registry=registry)
