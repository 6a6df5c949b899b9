"""Terminal configuration: the terminal's own data and its supported applications (EMV 4.4 Book 4).

Loaded from JSON and validated with pydantic v2; a bad file raises :class:`ConfigError` whose
message names the field (``aids.0.tac_denial: ...``). Hex fields are strings of hex digits of
a fixed byte length; amounts are integers in minor units.

* :class:`TerminalConfig`: the terminal-resident data of Book 4, Annex A (9F1A, 9F35, 9F33,
  9F40, 9F1E, 9F15, 9F16, 9F4E, 9F1C, 9F01), the CA key files (Book 2, 11.2), the exception
  file (Book 3, 10.6.1: stored as SHA-256 hashes, never clear PANs), the co-badged brand
  priority (EU Interchange Fee Regulation 2015/751 art. 8: cardholder choice, else this order)
  and the velocity limits.
* :class:`AidConfig`: one supported application (Book 1, 12.3.1): AID and partial selection
  (ASI), application version (9F09), TACs (Book 3, 10.7), floor limit and random selection
  parameters (10.6), default DDOL/TDOL, and for contactless the Entry Point pre-processing
  data (Book B, 3.1.1), the kernel identifier and, for kernel 2, its Book C-2 Annex A data
  (:class:`Kernel2Config`).

:meth:`TerminalConfig.terminal_data` gives every terminal-sourced data object of a transaction
for DOL building (Book 3, 5.4).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from terminal.application import AidConfig, Kernel2Config, hex_field, hexer
from terminal.capk import CapkStore
from terminal.environment import Environment, TransactionRequest
from terminal.errors import EmvError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "AidConfig",
    "ConfigError",
    "Kernel2Config",
    "TerminalConfig",
    "bcd",
    "exception_file_entry",
]

DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent / "data" / "terminal_config.json"


class ConfigError(EmvError):
    """The terminal configuration is invalid; the message names the field."""


def bcd(value: int, length: int) -> bytes:
    """Encode a non-negative integer as ``n`` (BCD, right-justified) of ``length`` bytes."""
    digits = f"{value:0{length * 2}d}"
    if len(digits) > length * 2:
        raise ValueError(f"{value} does not fit n {length * 2}")
    return bytes.fromhex(digits)


def exception_file_entry(pan: str, sequence_number: int | None = None) -> str:
    """The stored form of an exception-file entry: SHA-256 hex of ``PAN`` or ``PAN|PSN``.

    The terminal exception file (Book 3, 10.6.1) lists PANs, optionally with their PAN
    Sequence Number (5F34). Only hashes are kept, so the file holds no card data.
    """
    digits = pan.upper().rstrip("F")
    text = digits if sequence_number is None else f"{digits}|{sequence_number:02d}"
    return hashlib.sha256(text.encode()).hexdigest()


class TerminalConfig(BaseModel):
    """The terminal's configuration (EMV 4.4 Book 4, Annex A; Book 3, 10.6)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terminal_country_code: Annotated[int, Field(ge=0, le=999)] = 250
    terminal_type: str = "22"
    terminal_capabilities: str = "E0F8C8"
    additional_terminal_capabilities: str = "7000F0A001"
    ifd_serial: Annotated[str, Field(min_length=1, max_length=8)] = "POSGW001"
    merchant_category_code: Annotated[int, Field(ge=0, le=9999)] = 5411
    merchant_identifier: Annotated[str, Field(max_length=15)] = "POSGW MERCHANT"
    merchant_name_location: str = "posgw test shop"
    terminal_id: Annotated[str, Field(min_length=8, max_length=8)] = "POSGW001"
    acquirer_id: Annotated[str, Field(pattern=r"^[0-9]{6,11}$")] = "000001"
    pos_entry_mode: str = "05"
    aids: list[AidConfig] = []
    ca_keys: list[str] | None = None
    exception_file: list[str] = []
    cobadge_brand_priority: list[str] = []
    pin_pad_present: bool = True
    online_capable: bool = True

    _type = hexer(1, "terminal_type", "pos_entry_mode")
    _caps = hexer(3, "terminal_capabilities")
    _add = hexer(5, "additional_terminal_capabilities")

    @field_validator("exception_file")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        for entry in value:
            if len(entry) != 64 or any(c not in "0123456789abcdefABCDEF" for c in entry):
                raise ValueError("exception file entries are SHA-256 hex digests, never PANs")
        return [entry.lower() for entry in value]

    @field_validator("cobadge_brand_priority")
    @classmethod
    def _aids_hex(cls, value: list[str]) -> list[str]:
        return [hex_field(None, "AID", aid) for aid in value]

    @classmethod
    def load(cls, path: str | Path) -> TerminalConfig:
        """Load and validate a JSON configuration file.

        Raises:
            ConfigError: when the file is unreadable, not JSON, or a field is invalid (the
                message names the field).
        """
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{Path(path).name}: cannot read ({type(exc).__name__})") from exc
        return cls.from_dict(document, source=Path(path).name)

    @classmethod
    def from_dict(cls, document: Any, *, source: str = "config") -> TerminalConfig:
        """Validate a decoded JSON document (see :meth:`load`)."""
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(root)"
            raise ConfigError(f"{source}: {where}: {first['msg']}") from None

    @classmethod
    def default(cls) -> TerminalConfig:
        """The shipped default (``terminal/data/terminal_config.json``, public test keys)."""
        return cls.load(DEFAULT_CONFIG_FILE)

    def capk_store(self) -> CapkStore:
        """The CA public keys: the configured files, else the public EMV test keys."""
        if not self.ca_keys:
            return CapkStore.default()
        store = CapkStore()
        for name in self.ca_keys:
            path = Path(name)
            if not path.is_absolute():
                path = DEFAULT_CONFIG_FILE.parent / path
            store.load_file(path)
        return store

    def aid_config(self, aid: bytes) -> AidConfig | None:
        """The configured application an AID was selected under: exact, else partial match."""
        best: AidConfig | None = None
        for entry in self.aids:
            mine = entry.aid_bytes
            if aid == mine:
                return entry
            if entry.partial_selection and aid.startswith(mine) and best is None:
                best = entry
        return best

    def on_exception_file(self, pan: str, sequence_number: int | None) -> bool:
        """True when the PAN (with or without its sequence number) is listed (Book 3, 10.6.1)."""
        listed = set(self.exception_file)
        if exception_file_entry(pan) in listed:
            return True
        return sequence_number is not None and exception_file_entry(pan, sequence_number) in listed

    def terminal_data(
        self,
        request: TransactionRequest,
        env: Environment,
        aid: AidConfig | None = None,
    ) -> dict[int, bytes]:
        """Every terminal-sourced data object of a transaction (Book 3, Annex A; Book 4, A).

        Reads the clock once (9A, 9F21) and the unpredictable number once (9F37). TVR (95) and
        TSI (9B) start at zero; the kernel overwrites them as it goes.

        Args:
            request: The till's request (amounts, currency, type).
            env: The injected clock and randomness.
            aid: The selected application's configuration, for 9F09, 9F1B and 9F66.
        """
        when = env.clock()
        un = env.unpredictable_number()
        data: dict[int, bytes] = {
            0x9F02: bcd(request.amount, 6),
            0x9F03: bcd(request.amount_other, 6),
            0x81: request.amount.to_bytes(4, "big") if request.amount < 2**32 else b"\xff" * 4,
            0x9F04: request.amount_other.to_bytes(4, "big")
            if request.amount_other < 2**32
            else b"\xff" * 4,
            0x5F2A: bcd(request.currency_code, 2),
            0x5F36: bcd(request.currency_exponent, 1),
            0x9F1A: bcd(self.terminal_country_code, 2),
            0x9A: bytes.fromhex(when.strftime("%y%m%d")),
            0x9F21: bytes.fromhex(when.strftime("%H%M%S")),
            0x9C: bytes((int(request.transaction_type),)),
            0x9F37: un,
            0x95: bytes(5),
            0x9B: bytes(2),
            0x9F35: bytes.fromhex(self.terminal_type),
            0x9F33: bytes.fromhex(self.terminal_capabilities),
            0x9F40: bytes.fromhex(self.additional_terminal_capabilities),
            0x9F1E: self.ifd_serial.encode("ascii", "replace").ljust(8, b" ")[:8],
            0x9F15: bcd(self.merchant_category_code, 2),
            0x9F16: self.merchant_identifier.encode("ascii", "replace").ljust(15, b" "),
            0x9F4E: self.merchant_name_location.encode("ascii", "replace"),
            0x9F1C: self.terminal_id.encode("ascii", "replace"),
            0x9F01: bcd(int(self.acquirer_id), 6),
            0x9F39: bytes.fromhex(self.pos_entry_mode),
            0x9F41: bcd(request.transaction_sequence_counter, 4),
            0x9F34: bytes(3),
        }
        if aid is not None:
            data.update(aid.terminal_data())
        return data
