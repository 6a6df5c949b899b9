"""Issuer profiles in a file: which cards an issuer serves, its keys, its cryptogram, its PIN check.

``posgw-sim acquirer --issuers FILE`` (TOML or JSON) teaches the simulated issuer new test
cards without Python. The format is defined by the pydantic models below; its JSON Schema is
shipped as ``simulator/data/issuers.schema.json`` (``posgw-sim acquirer --print-issuers-schema``
prints it; a test keeps it equal to the models). The simulator's own test issuers are a file
of the same format, ``simulator/data/issuers.toml``, loaded when no ``--issuers`` is given
(and read by the virtual cards for their master keys). Example::

    [[issuers]]
    name = "acme"
    aid_prefix = "A000000003"                     # optional: the application's RID/AID prefix
    pan_ranges = [{low = "499999", high = "499999"}]   # BIN or PAN ranges, by prefix
    keys = {ac = "00112233445566778899AABBCCDDEEFF"}   # issuer master keys (TDES, 16 bytes)
    [issuers.cryptogram]
    version = "emv-csk"            # or a scheme CVN: visa-10/18/22, mastercard-16/17; "auto"
    arpc_method = 2                # EMV common session key, ARPC method 2 (Book 2, 8.2.2)
    covers = ["9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36"]
    card_data = "iad"
    [issuers.pin]                  # the online PIN check (wired by simulator.pin_check)
    bdk = "0123456789ABCDEFFEDCBA9876543210"
    expected_pin = "1234"

A PAN belongs to a range when its first ``len(low)`` digits, as a number, lie between ``low``
and ``high`` (same length). The first issuer whose AID prefix and range match serves the card.
``version = "auto"`` takes the scheme CVN the card announces in 9F10 (the shipped issuers);
``emv-csk`` is the EMV generic derivation (Book 2, A1.3 common session key, R = ATC || 00*6)
with the options of :class:`simulator.cryptogram_spec.CryptogramSpec`. Every problem is an
:class:`IssuerFileError` naming the file and the field.
"""

from __future__ import annotations

import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.cryptogram import Cvn, IssuerMasterKeys
from simulator.cryptogram_spec import CARD_DATA, DEFAULT_AC_TAGS, CryptogramSpec, spec_for_cvn

__all__ = [
    "DEFAULT_ISSUERS_FILE",
    "ISSUERS_SCHEMA_FILE",
    "CryptogramModel",
    "IssuerBook",
    "IssuerFileError",
    "IssuerProfile",
    "PinCheckModel",
    "default_issuers",
    "issuers_schema",
    "load_issuers",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ISSUERS_FILE = DATA_DIR / "issuers.toml"
ISSUERS_SCHEMA_FILE = DATA_DIR / "issuers.schema.json"

Hex16 = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{32}$", description="16 bytes as hex")]
Digits = Annotated[str, Field(pattern=r"^[0-9]{1,19}$")]
TagHex = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2,6}$", description="a tag, as hex")]
Version = Literal[
    "auto", "visa-10", "visa-18", "visa-22", "mastercard-16", "mastercard-17", "emv-csk"
]


class IssuerFileError(ValueError):
    """The issuers file is unreadable or invalid (the message names the file and field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PanRange(_Strict):
    """A BIN or PAN range: PANs whose first ``len(low)`` digits lie in ``[low, high]``."""

    low: Digits
    high: Digits

    @model_validator(mode="after")
    def _same_length(self) -> PanRange:
        if len(self.low) != len(self.high) or int(self.low) > int(self.high):
            raise ValueError("low and high have the same number of digits and low <= high")
        return self

    def contains(self, pan: str) -> bool:
        """Whether ``pan`` falls in the range."""
        head = pan[: len(self.low)]
        return len(head) == len(self.low) and int(self.low) <= int(head) <= int(self.high)


class KeysModel(_Strict):
    """Issuer master keys (double-length TDES, EMV 4.4 Book 2, A1.4): AC, SMI, SMC."""

    ac: Hex16
    smi: Hex16 | None = None
    smc: Hex16 | None = None


class CryptogramModel(_Strict):
    """The cryptogram version and its derivation (see :mod:`simulator.cryptogram_spec`).

    Scheme versions fix every option; ``emv-csk`` takes the options given (defaults: option A,
    common session key R = ATC || 00*6, padding 2, ARPC method 1 with the session key, the
    Table 26 data and the whole IAD).
    """

    version: Version = "auto"
    master_key_option: Literal["A", "B"] | None = None
    session_key: Literal["none", "atc", "atc-un"] | None = None
    padding: Literal[1, 2] | None = None
    arpc_method: Literal[1, 2] | None = None
    arpc_key: Literal["master", "session"] | None = None
    covers: list[TagHex] | None = None
    card_data: Literal["none", "iad", "visa-cvr", "mchip-cvr", "mchip-cvr-counters"] | None = None

    @model_validator(mode="after")
    def _options_only_for_emv_csk(self) -> CryptogramModel:
        options = (self.master_key_option, self.session_key, self.padding, self.arpc_method,
                   self.arpc_key, self.covers, self.card_data)  # fmt: skip
        if self.version != "emv-csk" and any(option is not None for option in options):
            raise ValueError(f"version {self.version!r} fixes its options: give them only "
                             "with version 'emv-csk'")  # fmt: skip
        return self

    def spec(self) -> CryptogramSpec | None:
        """The spec; None for ``auto`` (the CVN in 9F10 decides)."""
        if self.version == "auto":
            return None
        if self.version != "emv-csk":
            return spec_for_cvn(Cvn(self.version))
        assert self.card_data is None or self.card_data in CARD_DATA
        tags = DEFAULT_AC_TAGS if self.covers is None else tuple(int(t, 16) for t in self.covers)
        return CryptogramSpec(
            version="emv-csk",
            master_key_option=self.master_key_option or "A",
            session_key=self.session_key or "atc",
            padding=self.padding or 2,
            arpc_method=self.arpc_method or 1,
            arpc_key=self.arpc_key or "session",
            terminal_tags=tags,
            card_data=self.card_data or "iad",
        )


class PinCheckModel(_Strict):
    """The online PIN check of this issuer: the hook :mod:`simulator.pin_check` fills in.

    Attributes:
        bdk: DUKPT base derivation key the PIN pad's PIN blocks are encrypted under.
        pvk: PIN verification key (IBM 3624 offset or Visa PVV), when the check uses one.
        method: How the PIN is checked: the clear ``expected_pin`` of a test card, or an
            IBM 3624 ``offset`` with ``pvk`` and the decimalisation table.
        expected_pin: The test card's PIN (test material only).
        pin_offset: The IBM 3624 PIN offset.
        decimalisation_table: 16 digits (IBM 3624).
    """

    bdk: Hex16 | None = None
    pvk: Hex16 | None = None
    method: Literal["expected_pin", "ibm3624_offset"] = "expected_pin"
    expected_pin: Annotated[str, Field(pattern=r"^[0-9]{4,12}$")] | None = None
    pin_offset: Annotated[str, Field(pattern=r"^[0-9]{4,12}$")] | None = None
    decimalisation_table: Annotated[str, Field(pattern=r"^[0-9]{16}$")] = "0123456789012345"

    def __repr__(self) -> str:
        return f"PinCheckModel(method={self.method!r}, <secret>)"


class IssuerProfile(_Strict):
    """One issuer: what it serves, its keys, its cryptogram, its PIN check."""

    name: Annotated[str, Field(min_length=1, max_length=40)]
    aid_prefix: Annotated[str, Field(pattern=r"^([0-9A-Fa-f]{2}){0,16}$")] = ""
    pan_ranges: Annotated[list[PanRange], Field(min_length=1)]
    keys: KeysModel
    cryptogram: CryptogramModel = CryptogramModel()
    pin: PinCheckModel | None = None

    def serves(self, aid: bytes, pan: str) -> bool:
        """Whether this issuer serves the application ``aid`` with this PAN."""
        prefix = bytes.fromhex(self.aid_prefix)
        return aid.startswith(prefix) and any(r.contains(pan) for r in self.pan_ranges)

    @property
    def master_keys(self) -> IssuerMasterKeys:
        """The master keys as bytes (SMI/SMC empty when not given)."""
        k = self.keys
        return IssuerMasterKeys(
            bytes.fromhex(k.ac),
            bytes.fromhex(k.smi) if k.smi else b"",
            bytes.fromhex(k.smc) if k.smc else b"",
        )

    def __repr__(self) -> str:
        return f"IssuerProfile({self.name!r}, <keys>)"

    __str__ = __repr__


class IssuerBook(_Strict):
    """An issuers file: the issuers, tried in order."""

    issuers: Annotated[list[IssuerProfile], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_names(self) -> IssuerBook:
        names = [issuer.name for issuer in self.issuers]
        if len(set(names)) != len(names):
            raise ValueError("issuer names must be unique")
        return self


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "(top)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_issuers(raw: Any, source: str = "issuers") -> IssuerBook:
    """Validate an already-decoded issuers document.

    Raises:
        IssuerFileError: a field is missing or invalid (named in the message).
    """
    try:
        return IssuerBook.model_validate(raw)
    except ValidationError as exc:
        raise IssuerFileError(f"{source}: {_describe(exc)}") from None


def load_issuers(path: str | Path) -> IssuerBook:
    """Read an issuers file (``.toml``, else JSON).

    Raises:
        IssuerFileError: unreadable, not TOML/JSON, or invalid (the field is named).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except OSError as exc:
        raise IssuerFileError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IssuerFileError(f"{path}: not valid TOML/JSON: {exc}") from None
    return parse_issuers(raw, str(path))


@cache
def default_issuers() -> IssuerBook:
    """The simulator's own test issuers (``simulator/data/issuers.toml``)."""
    return load_issuers(DEFAULT_ISSUERS_FILE)


def issuers_schema() -> dict[str, Any]:
    """The JSON Schema of the issuers file (the shipped ``issuers.schema.json``)."""
    schema = IssuerBook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "posgw-sim issuers file"
    return schema
