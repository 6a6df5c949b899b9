"""The applications a terminal supports, and a card application that matched one.

The lowest layer of the kernel's configuration: :class:`AidConfig` (one supported application,
EMV 4.4 Book 1, 12.3.1; Book 3, 10.6-10.7; Book B, 3.1.1) with :class:`Kernel2Config`
(Book C-2, Annex A), and :class:`Candidate`, a mutually supported application (Book 1, 12.3)
that the cardholder may choose between (:data:`terminal.environment.ChooseApplication`).
:mod:`terminal.config`, :mod:`terminal.environment` and the selection steps build on these;
this module imports nothing else of the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["AidConfig", "Amount", "Candidate", "Kernel2Config", "Percent", "hex_field", "hexer"]


def hex_field(size: int | None, name: str, value: Any) -> str:
    """``value`` as upper-case hex of ``size`` bytes (any size when None), or ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a hex string")
    text = value.replace(" ", "").upper()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{name} is not hex") from None
    if size is not None and len(raw) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(raw)}")
    return text


def hexer(size: int | None, *names: str) -> Any:
    """A pydantic validator checking ``names`` with :func:`hex_field`."""
    def check(cls: type, value: Any) -> str | None:
        if value is None:
            return None
        return hex_field(size, "value", value)

    return field_validator(*names, mode="before")(check)


Percent = Annotated[int, Field(ge=0, le=99)]
Amount = Annotated[int, Field(ge=0, le=999_999_999_999)]


class Kernel2Config(BaseModel):
    """``aids.N.kernel2``: kernel 2 (M/Chip) data of one AID (EMV Book C-2, Annex A).

    CVM Capability - CVM Required (DF8118) and - No CVM Required (DF8119), the Kernel
    Configuration bits posgw uses (DF811B: mag-stripe mode offered, relay resistance), and the
    relay resistance timings (DF8132-DF8137) in milliseconds. Unset fields keep the kernel's
    defaults (:class:`terminal.contactless.preprocessing.Kernel2Settings`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    magstripe_mode_supported: bool = False
    cvm_capability_cvm_required: Annotated[int, Field(ge=0, le=0xFF)] = 0x60
    cvm_capability_no_cvm_required: Annotated[int, Field(ge=0, le=0xFF)] = 0x08
    rrp_supported: bool = True
    rrp_reported_in_tvr: bool = True
    min_grace_period_ms: Annotated[float, Field(ge=0, le=65535)] = 5.0
    max_grace_period_ms: Annotated[float, Field(ge=0, le=65535)] = 50.0
    transmission_time_cmd_ms: Annotated[float, Field(ge=0, le=65535)] = 1.8
    transmission_time_resp_ms: Annotated[float, Field(ge=0, le=65535)] = 1.8
    rr_accuracy_threshold_ms: Annotated[float, Field(ge=0, le=65535)] = 30.0


class AidConfig(BaseModel):
    """One application the terminal supports (EMV 4.4 Book 1, 12.3.1; Book 3, 10.6-10.7)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    aid: str
    label: str = ""
    partial_selection: bool = True
    priority: Annotated[int, Field(ge=0, le=15)] = 0
    kernel_id: Annotated[int, Field(ge=0, le=255)] = 0
    # 9F09, compared with the card's 9F08 (Book 3, 10.4.1); 0096 is Visa VIS 1.5.
    application_version: str = "0096"
    tac_default: str = "0000000000"
    tac_denial: str = "0000000000"
    tac_online: str = "0000000000"
    floor_limit: Amount = 0
    random_selection_threshold: Amount = 0
    random_selection_target_percent: Percent = 0
    random_selection_max_target_percent: Percent = 0
    default_ddol: str = "9F3704"
    default_tdol: str | None = None
    terminal_risk_management_data: str | None = None
    # Contactless (Book B 3.1.1 pre-processing; Book A 5.7 TTQ; kernels 2 and 3)
    reader_ctls_transaction_limit: Amount | None = None
    reader_ctls_floor_limit: Amount | None = None
    reader_cvm_required_limit: Amount | None = None
    ttq: str = "36000000"
    status_check_supported: bool = False
    zero_amount_allowed: bool = True
    extended_selection_supported: bool = False
    cdcvm_supported: bool = True
    mobile_ctls_transaction_limit: Amount | None = None
    transaction_types: list[Annotated[int, Field(ge=0, le=0xFF)]] = [0x00, 0x09, 0x20]
    kernel2: Kernel2Config | None = None  # Book C-2 data when this AID runs on kernel 2

    _aid = hexer(None, "aid")
    _ver = hexer(2, "application_version")
    _tac = hexer(5, "tac_default", "tac_denial", "tac_online")
    _ttq = hexer(4, "ttq")
    _dol = hexer(None, "default_ddol", "default_tdol", "terminal_risk_management_data")

    @field_validator("aid")
    @classmethod
    def _aid_length(cls, value: str) -> str:
        if not 5 <= len(value) // 2 <= 16:
            raise ValueError("AID must be 5 to 16 bytes")
        return value

    @field_validator("random_selection_max_target_percent")
    @classmethod
    def _max_target(cls, value: int, info: Any) -> int:
        target = info.data.get("random_selection_target_percent", 0)
        if value < target:
            raise ValueError("maximum target percent must not be below the target percent")
        return value

    @property
    def aid_bytes(self) -> bytes:
        """The AID as bytes."""
        return bytes.fromhex(self.aid)

    @property
    def rid(self) -> bytes:
        """The RID: first five bytes of the AID."""
        return self.aid_bytes[:5]

    def terminal_data(self) -> dict[int, bytes]:
        """The per-application terminal data: 9F09, 9F1B, 9F66 (and 9F1D when configured)."""
        data = {
            0x9F09: bytes.fromhex(self.application_version),
            0x9F1B: min(self.floor_limit, 2**32 - 1).to_bytes(4, "big"),
            0x9F66: bytes.fromhex(self.ttq),
        }
        if self.terminal_risk_management_data:
            data[0x9F1D] = bytes.fromhex(self.terminal_risk_management_data)
        return data

    def tac(self, which: str) -> bytes:
        """One TAC as bytes: ``"denial"``, ``"online"`` or ``"default"`` (Book 3, 10.7)."""
        return bytes.fromhex(getattr(self, f"tac_{which}"))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A mutually supported application (Book 1, 12.3).

    Attributes:
        aid: The card's ADF name (may be longer than the terminal AID).
        label: Application label (50).
        preferred_name: Application preferred name (9F12).
        priority: API low nibble, 1 highest; ``None`` when the card gives none.
        confirmation_required: API b8: cardholder confirmation required.
        config: The terminal AID it matched.
    """

    aid: bytes
    label: str | None
    preferred_name: str | None
    priority: int | None
    confirmation_required: bool
    config: AidConfig

    @property
    def display_name(self) -> str:
        """What to show the cardholder: preferred name, else label, else the AID."""
        return self.preferred_name or self.label or self.aid.hex().upper()
