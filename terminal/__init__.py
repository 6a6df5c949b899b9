"""posgw EMV kernel: codecs, transport, card commands and the contact/contactless transaction flow.

This package imports nothing else of posgw (see ARCHITECTURE.md). Readers reach it through the
one-method card channel declared in :mod:`terminal.transport`.

The names below are the kernel's public API, what the gateway and the simulator use (a sorted
``__all__``, checked by ``tests/terminal/test_public_api.py``); the modules behind them are the
kernel's own layering (codecs, transport, commands, the contact steps, the contactless Entry
Point and kernels) and may change. Sub-packages keep their own public names
(:mod:`terminal.contactless`, :mod:`terminal.oda`).

* run a payment: :func:`run_contact_transaction`, :func:`run_contactless_payment` (the whole
  contactless payment, online step included) or :func:`run_contactless_transaction` (up to
  the kernel's outcome), with a :class:`TerminalConfig`, :class:`CapkStore`,
  :class:`TransactionRequest`, :class:`Environment`, an :class:`OnlineAuthoriser` and a
  :class:`PinPad`; the result is a :class:`TransactionResult` (:class:`Decision`);
* the online step's types: :class:`OnlineRequest`, :class:`OnlineResponse`,
  :class:`OnlinePinBlock`;
* codecs: :func:`decode`, :func:`encode`, :func:`encode_tlvs`, :func:`flatten`,
  :func:`mask_pan`;
* errors: :class:`EmvError` and its leaves.
"""

from __future__ import annotations

from terminal.application import AidConfig, Candidate
from terminal.capk import CapkStore
from terminal.config import DEFAULT_CONFIG_FILE, TerminalConfig
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineAuthoriser, OnlineRequest, OnlineResponse
from terminal.contactless.entry_point import run_contactless_transaction
from terminal.contactless.payment import run_contactless_payment
from terminal.contactless.result import ContactlessResult
from terminal.environment import Environment, TransactionRequest, TransactionType
from terminal.errors import (
    ApduError,
    CardDataError,
    DolError,
    EmvError,
    TlvError,
    TransportError,
)
from terminal.masking import mask_pan
from terminal.oda.results import RsaPublicKey
from terminal.pinpad import OnlinePinBlock, PinEntry, PinPad
from terminal.result import Decision, TraceEntry, TransactionResult
from terminal.tlv import decode, encode, encode_tlvs, flatten
from terminal.transport import CardChannel

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "AidConfig",
    "ApduError",
    "Candidate",
    "CapkStore",
    "CardChannel",
    "CardDataError",
    "ContactlessResult",
    "Decision",
    "DolError",
    "EmvError",
    "Environment",
    "OnlineAuthoriser",
    "OnlinePinBlock",
    "OnlineRequest",
    "OnlineResponse",
    "PinEntry",
    "PinPad",
    "RsaPublicKey",
    "TerminalConfig",
    "TlvError",
    "TraceEntry",
    "TransactionRequest",
    "TransactionResult",
    "TransactionType",
    "TransportError",
    "decode",
    "encode",
    "encode_tlvs",
    "flatten",
    "mask_pan",
    "run_contact_transaction",
    "run_contactless_payment",
    "run_contactless_transaction",
]
