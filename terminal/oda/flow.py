"""ODA steps as the kernel calls them, from the card's data objects (EMV 4.4 Book 3, 10.3).

These wrap the per-object checks of :mod:`terminal.oda.certificates`, :mod:`terminal.oda.sda`,
:mod:`terminal.oda.dynamic` and :mod:`terminal.oda.cda` around a card-data mapping (tag → value,
as :func:`terminal.tlv.flatten` gives) and a :class:`~terminal.capk.CapkStore`:

* :func:`perform_sda` - CA key, issuer key, SSAD; returns the DAC for 9F45;
* :func:`recover_icc_public_key` - CA key, issuer key, ICC key; then call
  :func:`~terminal.oda.dynamic.verify_dda`, :func:`~terminal.oda.cda.verify_cda_response` or
  :func:`~terminal.oda.dynamic.verify_fdda` with it;
* :func:`recover_pin_public_key` - the key for offline enciphered PIN (Book 2, 7.1), falling
  back to the ICC key when the card has no separate PIN key (Book 3, 10.5.1).

Data read: 8F, 90, 92, 9F32, 93, 9F46, 9F47, 9F48, 9F2D, 9F2E, 9F2F, 5A. Nothing is written;
the kernel stores the results (9F45, 9F4C) and sets the TVR with
:func:`~terminal.oda.results.tvr_byte1_bits`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from terminal.capk import CapkStore, CaPublicKey
from terminal.oda.certificates import recover_icc_key, recover_issuer_key, recover_pin_key
from terminal.oda.results import (
    IccPublicKey,
    IssuerPublicKey,
    OdaCheck,
    OdaFailure,
    OdaStage,
    SdaResult,
)
from terminal.oda.sda import verify_ssad

__all__ = [
    "perform_sda",
    "recover_icc_public_key",
    "recover_issuer_public_key",
    "recover_pin_public_key",
    "select_ca_key",
]


def select_ca_key(
    store: CapkStore, rid: bytes, card: Mapping[int, bytes], today: datetime.date
) -> CaPublicKey | OdaFailure:
    """Retrieve the CA public key named by tag 8F for this RID (EMV 4.4 Book 2, 5.2 / 6.2).

    Returns:
        The key, or a failure: 8F absent or not 1 byte is "ICC data missing"; a key the
        terminal does not hold (or holds expired) is a plain ODA failure.
    """
    index = card.get(0x8F)
    if index is None or len(index) != 1:
        return OdaFailure(OdaStage.CAPK, OdaCheck.DATA_MISSING, "tag 8F absent")
    key = store.get(rid, index[0])
    if key is None:
        return OdaFailure(OdaStage.CAPK, OdaCheck.KEY_UNKNOWN, f"index {index[0]:02X}")
    if key.expired(today):
        return OdaFailure(OdaStage.CAPK, OdaCheck.EXPIRED, f"index {index[0]:02X}")
    return key


def recover_issuer_public_key(
    store: CapkStore, rid: bytes, card: Mapping[int, bytes], today: datetime.date
) -> IssuerPublicKey | OdaFailure:
    """Select the CA key and recover the issuer public key (EMV 4.4 Book 2, 5.2-5.3 / 6.2-6.3)."""
    ca_key = select_ca_key(store, rid, card, today)
    if isinstance(ca_key, OdaFailure):
        return ca_key
    return recover_issuer_key(
        ca_key,
        card.get(0x90),
        card.get(0x92),
        card.get(0x9F32),
        card.get(0x5A),
        today,
        is_revoked=store.is_revoked,
    )


def perform_sda(
    store: CapkStore,
    rid: bytes,
    card: Mapping[int, bytes],
    static_data: bytes | OdaFailure,
    today: datetime.date,
) -> SdaResult | OdaFailure:
    """Static Data Authentication end to end (EMV 4.4 Book 2, 5; Book 3, 10.3).

    Args:
        store: The terminal's CA keys and revocation list.
        rid: The RID of the selected application (first 5 bytes of its AID).
        card: The card's data objects (tag → value).
        static_data: The static data to be authenticated, or the failure building it.
        today: Transaction date (injected clock).

    Returns:
        An :class:`SdaResult` with the Data Authentication Code (9F45), or an
        :class:`OdaFailure` (set "SDA failed", plus "ICC data missing" where it says so).
    """
    if card.get(0x93) is None or card.get(0x90) is None or card.get(0x9F32) is None:
        return OdaFailure(OdaStage.SSAD, OdaCheck.DATA_MISSING, "tag 90, 93 or 9F32 absent")
    issuer = recover_issuer_public_key(store, rid, card, today)
    if isinstance(issuer, OdaFailure):
        return issuer
    if isinstance(static_data, OdaFailure):
        return static_data
    return verify_ssad(issuer, card.get(0x93), static_data)


def recover_icc_public_key(
    store: CapkStore,
    rid: bytes,
    card: Mapping[int, bytes],
    static_data: bytes | OdaFailure,
    today: datetime.date,
) -> IccPublicKey | OdaFailure:
    """CA key → issuer key → ICC key, for DDA, CDA and fDDA (EMV 4.4 Book 2, 6.2-6.4).

    Args:
        store: The terminal's CA keys and revocation list.
        rid: The RID of the selected application.
        card: The card's data objects (tag → value).
        static_data: The static data to be authenticated, or the failure building it.
        today: Transaction date (injected clock).

    Returns:
        The ICC public key, or an :class:`OdaFailure`.
    """
    if card.get(0x9F46) is None or card.get(0x9F47) is None:
        return OdaFailure(OdaStage.ICC_CERT, OdaCheck.DATA_MISSING, "tag 9F46 or 9F47 absent")
    issuer = recover_issuer_public_key(store, rid, card, today)
    if isinstance(issuer, OdaFailure):
        return issuer
    if isinstance(static_data, OdaFailure):
        return static_data
    return recover_icc_key(
        issuer,
        card.get(0x9F46),
        card.get(0x9F48),
        card.get(0x9F47),
        card.get(0x5A),
        static_data,
        today,
    )


def recover_pin_public_key(
    store: CapkStore,
    rid: bytes,
    card: Mapping[int, bytes],
    static_data: bytes | OdaFailure,
    today: datetime.date,
) -> IccPublicKey | OdaFailure:
    """The public key for offline enciphered PIN (EMV 4.4 Book 2, 7.1; Book 3, 10.5.1).

    Uses the ICC PIN Encipherment key (9F2D, 9F2E, 9F2F) when the card has one, else the ICC
    public key (which needs the static data to be authenticated).
    """
    if card.get(0x9F2D) is None:
        return recover_icc_public_key(store, rid, card, static_data, today)
    issuer = recover_issuer_public_key(store, rid, card, today)
    if isinstance(issuer, OdaFailure):
        return issuer
    return recover_pin_key(
        issuer, card.get(0x9F2D), card.get(0x9F2F), card.get(0x9F2E), card.get(0x5A), today
    )
