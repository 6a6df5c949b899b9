"""Virtual EMV cards: profiles, personalisation and the card side of every EMV command.

``VirtualCard.from_profile("visa_credit").process(capdu) -> rapdu``; ``CardInField`` adds the
contactless per-APDU latency. One module per command group (see :mod:`.engine`).
"""

from __future__ import annotations

from simulator.card.engine import VirtualCard, default_pki
from simulator.card.field import DEFAULT_LATENCY_S, CardInField
from simulator.card.profile import (
    PROFILES_DIR,
    CardProfile,
    ProfileError,
    list_profiles,
    load_profile,
)

__all__ = [
    "DEFAULT_LATENCY_S",
    "PROFILES_DIR",
    "CardInField",
    "CardProfile",
    "ProfileError",
    "VirtualCard",
    "default_pki",
    "list_profiles",
    "load_profile",
]
