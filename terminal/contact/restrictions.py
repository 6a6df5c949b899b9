"""Processing restrictions (EMV 4.4 Book 3, 10.4).

* 10.4.1 Application Version Number: the card's 9F08, when present, differs from the
  terminal's 9F09 → TVR "ICC and terminal have different application versions".
* 10.4.2 Application Usage Control (9F07), when present: valid at ATMs / at terminals other
  than ATMs (by 9F35); and, when the Issuer Country Code (5F28) is present, domestic or
  international cash, goods or services and cashback according to the transaction. A failing
  check → TVR "Requested service not allowed for card product".
* 10.4.3 Dates: Application Effective Date (5F25) after today → "Application not yet
  effective"; Application Expiration Date (5F24) before today → "Expired application". YY
  below 50 is 20YY, otherwise 19YY (Book 3, Annex A, note on dates). A date that is not a
  valid YYMMDD counts as failing its check.

Data read: 9F08, 9F07, 5F28, 5F25, 5F24, 9F09, 9F1A, 9F35, 9C, 9F03, 9A.
Data written: 95.
"""

from __future__ import annotations

import datetime

from terminal.bits import Auc, AucBit, TvrBit
from terminal.contact.state import Transaction
from terminal.environment import TransactionType

__all__ = ["check_processing_restrictions", "parse_yymmdd"]

_ATM_TYPES = {0x14, 0x15, 0x16}


def parse_yymmdd(value: bytes) -> datetime.date | None:
    """Decode an ``n 6`` YYMMDD date (Book 3, Annex A); ``None`` when invalid."""
    if len(value) != 3:
        return None
    text = value.hex()
    if not text.isdigit():
        return None
    yy, mm, dd = int(text[0:2]), int(text[2:4]), int(text[4:6])
    year = 2000 + yy if yy < 50 else 1900 + yy
    try:
        return datetime.date(year, mm, dd)
    except ValueError:
        return None


def _auc_allows(txn: Transaction, auc: Auc) -> bool:
    """Book 3, 10.4.2: the usage control checks for this terminal and transaction."""
    terminal_type = bytes.fromhex(txn.config.terminal_type)[0]
    if terminal_type in _ATM_TYPES:
        if not auc.atm:
            return False
    elif not auc.non_atm:
        return False
    issuer_country = txn.card.get(0x5F28)
    if issuer_country is None:
        return True
    domestic = issuer_country == txn.terminal.get(0x9F1A)
    kind = txn.request.transaction_type
    if kind is TransactionType.CASH:
        return auc.is_set(AucBit.DOMESTIC_CASH if domestic else AucBit.INTERNATIONAL_CASH)
    if kind in (TransactionType.PURCHASE, TransactionType.CASHBACK):
        goods = AucBit.DOMESTIC_GOODS if domestic else AucBit.INTERNATIONAL_GOODS
        services = AucBit.DOMESTIC_SERVICES if domestic else AucBit.INTERNATIONAL_SERVICES
        if not (auc.is_set(goods) or auc.is_set(services)):
            return False
        if txn.request.is_cashback:
            cashback = AucBit.DOMESTIC_CASHBACK if domestic else AucBit.INTERNATIONAL_CASHBACK
            return auc.is_set(cashback)
    return True


def check_processing_restrictions(txn: Transaction) -> None:
    """Apply the processing restrictions of Book 3, 10.4 (TVR byte 2)."""
    card_version = txn.card.get(0x9F08)
    terminal_version = txn.terminal.get(0x9F09)
    if None not in (card_version, terminal_version) and card_version != terminal_version:
        txn.set_tvr(TvrBit.DIFFERENT_APPLICATION_VERSIONS)
    auc_raw = txn.card.get(0x9F07)
    if auc_raw is not None and (len(auc_raw) != 2 or not _auc_allows(txn, Auc(auc_raw))):
        txn.set_tvr(TvrBit.SERVICE_NOT_ALLOWED)
    today = txn.env.clock().date()
    effective_raw = txn.card.get(0x5F25)
    if effective_raw is not None:
        effective = parse_yymmdd(effective_raw)
        if effective is None or effective > today:
            txn.set_tvr(TvrBit.APPLICATION_NOT_YET_EFFECTIVE)
    expiry = parse_yymmdd(txn.card.get(0x5F24, b""))
    if expiry is None or expiry < today:
        txn.set_tvr(TvrBit.EXPIRED_APPLICATION)
