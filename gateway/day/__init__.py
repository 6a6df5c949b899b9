"""The shop's day: store-and-forward limits, day close and reconciliation (docs/day.md)."""

from __future__ import annotations
