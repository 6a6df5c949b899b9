"""Card profiles: the JSON personalisation files of the virtual cards, read and validated.

A profile (``simulator/profiles/<name>.json``) describes one card: its PIN and PIN try
counter, whether it has a PSE (contact directory, EMV 4.4 Book 1, 12.2) and/or a PPSE
(contactless, EMV Contactless Book B, 3.3), and its applications. Each application names its
AID, the issuer whose test certificate it carries (``simulator/data/keys/issuers.json``), the
ICC and PIN key it uses from the key pool, the cryptogram version, the master keys
(by issuer name, from ``simulator/data/issuers.toml``), the PAN and the data objects of its
records; ``cryptogram`` (optional) spells out a cryptogram version in the issuers-file format
(:mod:`simulator.issuer_profiles`), e.g. the EMV common session key, instead of ``cvn``.
Defaults fill everything a profile leaves out (see :mod:`simulator.card.personalise`).

A profile may start from another one with ``"base": "<name>"``: objects are merged key by
key, lists of objects (``applications``) element by element, anything else replaced.

Every problem gives a :class:`ProfileError` naming the file and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.cryptogram import Cvn
from simulator.cryptogram_spec import CryptogramSpec, spec_for_cvn
from terminal import mask_pan

__all__ = [
    "PROFILES_DIR",
    "AppProfile",
    "CardProfile",
    "CardRisk",
    "ContactlessRules",
    "ProfileError",
    "cryptogram_spec",
    "list_profiles",
    "load_profile",
    "resolve_profile_path",
]

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
_HEX = re.compile(r"^([0-9A-Fa-f]{2})*$")
MODES = ("contact", "qvsdc", "mchip")


class ProfileError(Exception):
    """A profile file is missing, malformed, or names something that does not exist."""


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX.match(value):
        raise ProfileError(f"{where}: expected an even number of hex digits")
    return bytes.fromhex(value)


def _int(value: Any, where: str, low: int = 0, high: int = 1 << 32) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProfileError(f"{where}: expected an integer in [{low}, {high}]")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(f"{where}: expected true or false")
    return value


def _digits(value: Any, where: str, low: int, high: int) -> str:
    if not isinstance(value, str) or not value.isdigit() or not low <= len(value) <= high:
        raise ProfileError(f"{where}: expected {low}-{high} decimal digits")
    return value


def _tag_map(value: Any, where: str) -> dict[int, bytes]:
    if not isinstance(value, Mapping):
        raise ProfileError(f"{where}: expected an object of tag: hex value")
    out: dict[int, bytes] = {}
    for key, val in value.items():
        tag = _hex(key, f"{where}.{key}")
        if not tag or len(tag) > 3:
            raise ProfileError(f"{where}.{key}: not a tag")
        out[int.from_bytes(tag, "big")] = _hex(val, f"{where}.{key}")
    return out


@dataclass(frozen=True, slots=True)
class CardRisk:
    """Card risk management of the first GENERATE AC (an IAC-like rule set, see genac).

    Attributes:
        always_online: Answer a TC request with an ARQC.
        decline_always: Answer every request with an AAC.
        offline_amount_limit: Above this amount (minor units, 9F02) a TC request gets an ARQC.
        consecutive_offline_limit: Offline TCs allowed since the last online transaction.
        denial_mask: TVR bits (95) that make the card decline (AAC).
        online_mask: TVR bits that make the card go online (ARQC).
        issuer_auth_required: A second GENERATE AC asking for a TC after an ARQC gets an AAC
            unless issuer authentication succeeded.
    """

    always_online: bool = False
    decline_always: bool = False
    offline_amount_limit: int | None = None
    consecutive_offline_limit: int | None = None
    denial_mask: bytes = bytes(5)
    online_mask: bytes = bytes(5)
    issuer_auth_required: bool = False


@dataclass(frozen=True, slots=True)
class ContactlessRules:
    """Card decisions of a Visa qVSDC application in GPO (EMV Contactless Book C-3).

    Attributes:
        offline_limit: Highest amount (minor units) the card approves offline.
        online_only: Always answer with an ARQC.
        cdcvm: The card is a phone wallet that performs consumer device CVM.
        cdcvm_ready: The phone has already verified its holder (else the first tap that
            needs a CVM answers ``6986`` "see phone" and the phone becomes ready).
        switch_interface: Refuse the contactless transaction with ``6984`` (try another
            interface).
        online_pin_above_cvm_limit: When the reader says a CVM is required, ask for online
            PIN (CTQ byte 1 bit 8) rather than signature.
    """

    offline_limit: int = 0
    online_only: bool = False
    cdcvm: bool = False
    cdcvm_ready: bool = False
    switch_interface: bool = False
    online_pin_above_cvm_limit: bool = True


@dataclass(frozen=True, slots=True)
class AppProfile:
    """One application of a card (see the module docstring for the JSON keys)."""

    aid: bytes
    label: str
    mode: str
    pan: str
    psn: str | None
    expiry: str
    effective: str
    cvn: Cvn
    master_keys: str
    issuer: str | None
    icc_key: int | None
    pin_key: int | None
    oda: tuple[str, ...]
    priority: int | None = None
    preferred_name: str | None = None
    kernel_id: bytes | None = None
    aip: bytes | None = None
    pdol: bytes = b""
    cdol1: bytes | None = None
    cdol2: bytes | None = None
    ddol: bytes | None = None
    cvm_list: bytes | None = None
    gpo_format: int = 2
    genac_format: int = 2
    blocked: bool = False
    atc: int = 1
    last_online_atc: int = 0
    tags: dict[int, bytes] = field(default_factory=dict)
    fci: dict[int, bytes] = field(default_factory=dict)
    risk: CardRisk = field(default_factory=CardRisk)
    contactless: ContactlessRules = field(default_factory=ContactlessRules)
    put_data_tags: tuple[int, ...] = (0x9F14, 0x9F23, 0x9F53, 0x9F58, 0x9F59)
    cryptogram: CryptogramSpec | None = None
    padded_records: bool = False

    @property
    def rid(self) -> bytes:
        """The RID (first five AID bytes)."""
        return self.aid[:5]

    def __repr__(self) -> str:
        # Never the PAN (nor track 2 through ``tags``): first 6 and last 4 digits at most.
        return f"AppProfile({self.aid.hex().upper()}, {self.label!r}, pan={mask_pan(self.pan)})"


@dataclass(frozen=True, slots=True)
class CardProfile:
    """A card: PIN, directories, applications and the expected outcome."""

    name: str
    description: str
    interfaces: tuple[str, ...]
    expected: dict[str, Any]
    applications: tuple[AppProfile, ...]
    pin: str = "1234"
    pin_try_limit: int = 3
    pin_tries: int = 3
    pse: bool = True
    ppse: bool = False
    card_blocked: bool = False
    source: Path | None = None

    def __repr__(self) -> str:
        return f"CardProfile({self.name!r}, {len(self.applications)} applications)"


def list_profiles(directory: Path = PROFILES_DIR) -> list[str]:
    """Names of the profiles in ``directory``, sorted."""
    return sorted(p.stem for p in directory.glob("*.json") if not p.name.startswith("_"))


def resolve_profile_path(name_or_path: str | Path, directory: Path = PROFILES_DIR) -> Path:
    """The file of a profile given by name (``visa_credit``) or by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        return path
    candidate = directory / f"{name_or_path}.json"
    if candidate.exists():
        return candidate
    raise ProfileError(f"no profile {str(name_or_path)!r} (see `posgw-sim cards`)")


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    if (
        isinstance(base, list) and isinstance(over, list)
        and all(isinstance(x, dict) for x in base + over)
    ):
        merged = [_merge(b, o) for b, o in zip(base, over, strict=False)]
        return merged + base[len(over):] + over[len(base):]
    return over


def _read_raw(path: Path, directory: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ProfileError(f"{path.name}: circular 'base'")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path.name}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path.name}: not a JSON object")
    base = raw.pop("base", None)
    if base is None:
        return raw
    parent = _read_raw(resolve_profile_path(str(base), directory), directory, (*seen, path))
    parent.pop("abstract", None)
    return dict(_merge(parent, raw))


def _risk(raw: Any, where: str) -> CardRisk:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: expected an object")
    limit = raw.get("offline_amount_limit")
    count = raw.get("consecutive_offline_limit")
    return CardRisk(
        always_online=_bool(raw.get("always_online", False), f"{where}.always_online"),
        decline_always=_bool(raw.get("decline_always", False), f"{where}.decline_always"),
        offline_amount_limit=None if limit is None else _int(limit, f"{where}.offline_limit"),
        consecutive_offline_limit=None if count is None else _int(count, f"{where}.count"),
        denial_mask=_mask(raw.get("denial_mask", "0000000000"), f"{where}.denial_mask"),
        online_mask=_mask(raw.get("online_mask", "0000000000"), f"{where}.online_mask"),
        issuer_auth_required=_bool(raw.get("issuer_auth_required", False), f"{where}.iar"),
    )


def _mask(value: Any, where: str) -> bytes:
    mask = _hex(value, where)
    if len(mask) != 5:
        raise ProfileError(f"{where}: a TVR mask is 5 bytes")
    return mask


def _contactless(raw: Any, where: str) -> ContactlessRules:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: expected an object")
    flags = {
        name: _bool(raw.get(name, default), f"{where}.{name}")
        for name, default in (
            ("online_only", False), ("cdcvm", False), ("cdcvm_ready", False),
            ("switch_interface", False), ("online_pin_above_cvm_limit", True),
        )
    }
    return ContactlessRules(
        offline_limit=_int(raw.get("offline_limit", 0), f"{where}.offline_limit"), **flags
    )


def _opt_hex(raw: Mapping[str, Any], key: str, where: str) -> bytes | None:
    value = raw.get(key)
    return None if value is None else _hex(value, f"{where}.{key}")


def _opt_int(raw: Mapping[str, Any], key: str, where: str, high: int) -> int | None:
    value = raw.get(key)
    return None if value is None else _int(value, f"{where}.{key}", 0, high)


def _application(raw: Any, where: str) -> AppProfile:
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{where}: expected an object")
    try:
        cvn = Cvn(raw.get("cvn", "visa-10"))
    except ValueError as exc:
        raise ProfileError(f"{where}.cvn: one of {[c.value for c in Cvn]}") from exc
    mode = raw.get("mode", "contact")
    if mode not in MODES:
        raise ProfileError(f"{where}.mode: one of {MODES}")
    oda = raw.get("oda", [])
    if not isinstance(oda, list) or not set(oda) <= {"SDA", "DDA", "CDA", "fDDA"}:
        raise ProfileError(f"{where}.oda: a list of SDA, DDA, CDA, fDDA")
    aid = _hex(raw.get("aid"), f"{where}.aid")
    if not 5 <= len(aid) <= 16:
        raise ProfileError(f"{where}.aid: 5 to 16 bytes")
    psn = raw.get("psn", "01")
    issuer = raw.get("issuer")
    if issuer is not None and not isinstance(issuer, str):
        raise ProfileError(f"{where}.issuer: a name from issuers.json")
    master = raw.get("master_keys")
    if not isinstance(master, str):
        raise ProfileError(f"{where}.master_keys: an issuer name from simulator/data/issuers.toml")
    kernel_id = _opt_hex(raw, "kernel_id", where)
    return AppProfile(
        aid=aid,
        label=str(raw.get("label", "TEST CARD"))[:16],
        mode=mode,
        pan=_digits(raw.get("pan"), f"{where}.pan", 12, 19),
        psn=None if psn is None else _digits(psn, f"{where}.psn", 2, 2),
        expiry=_digits(raw.get("expiry", "491231"), f"{where}.expiry", 6, 6),
        effective=_digits(raw.get("effective", "200101"), f"{where}.effective", 6, 6),
        cvn=cvn,
        master_keys=master,
        issuer=issuer,
        icc_key=_opt_int(raw, "icc_key", where, 63),
        pin_key=_opt_int(raw, "pin_key", where, 63),
        oda=tuple(oda),
        priority=_opt_int(raw, "priority", where, 15),
        preferred_name=raw.get("preferred_name"),
        kernel_id=kernel_id,
        aip=_opt_hex(raw, "aip", where),
        pdol=_hex(raw.get("pdol", ""), f"{where}.pdol"),
        cdol1=_opt_hex(raw, "cdol1", where),
        cdol2=_opt_hex(raw, "cdol2", where),
        ddol=_opt_hex(raw, "ddol", where),
        cvm_list=_opt_hex(raw, "cvm_list", where),
        gpo_format=_int(raw.get("gpo_format", 2), f"{where}.gpo_format", 1, 2),
        genac_format=_int(raw.get("genac_format", 2), f"{where}.genac_format", 1, 2),
        blocked=_bool(raw.get("blocked", False), f"{where}.blocked"),
        atc=_int(raw.get("atc", 1), f"{where}.atc", 0, 0xFFFF),
        last_online_atc=_int(raw.get("last_online_atc", 0), f"{where}.last_online_atc", 0, 0xFFFF),
        tags=_tag_map(raw.get("tags", {}), f"{where}.tags"),
        fci=_tag_map(raw.get("fci", {}), f"{where}.fci"),
        risk=_risk(raw.get("risk", {}), f"{where}.risk"),
        contactless=_contactless(raw.get("contactless", {}), f"{where}.contactless"),
        cryptogram=_cryptogram(raw.get("cryptogram"), where),
        padded_records=_bool(raw.get("padded_records", False), f"{where}.padded_records"),
    )


def cryptogram_spec(app: AppProfile) -> CryptogramSpec:
    """The application's cryptogram: its ``cryptogram`` object, else the spec of its CVN."""
    return app.cryptogram if app.cryptogram is not None else spec_for_cvn(app.cvn)


def _cryptogram(raw: Any, where: str) -> CryptogramSpec | None:
    """A ``cryptogram`` object, in the issuers-file format (:mod:`simulator.issuer_profiles`)."""
    if raw is None:
        return None
    from pydantic import ValidationError

    from simulator.issuer_profiles import CryptogramModel

    try:
        spec = CryptogramModel.model_validate(raw).spec()
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = ".".join(str(part) for part in first["loc"])
        raise ProfileError(f"{where}.cryptogram.{field_name}: {first['msg']}") from None
    if spec is None:
        raise ProfileError(f"{where}.cryptogram.version: a card needs a version, not 'auto'")
    return spec


def load_profile(name_or_path: str | Path, directory: Path = PROFILES_DIR) -> CardProfile:
    """Read and validate a profile.

    Args:
        name_or_path: A profile name (file stem in ``directory``) or a path to a JSON file.
        directory: Where names are looked up (and ``base`` profiles found).

    Raises:
        ProfileError: the file is missing, not JSON, or a field is invalid.
    """
    path = resolve_profile_path(name_or_path, directory)
    raw = _read_raw(path, directory)
    where = path.name
    if raw.get("abstract"):
        raise ProfileError(f"{where}: an abstract profile is only a base for others")
    apps = raw.get("applications")
    if not isinstance(apps, list) or not apps:
        raise ProfileError(f"{where}.applications: at least one application")
    interfaces = raw.get("interfaces", ["contact"])
    if not isinstance(interfaces, list) or not set(interfaces) <= {"contact", "contactless"}:
        raise ProfileError(f"{where}.interfaces: contact and/or contactless")
    expected = raw.get("expected")
    if not isinstance(expected, dict):
        raise ProfileError(f"{where}.expected: the expected outcome object is required")
    pin = _digits(raw.get("pin", "1234"), f"{where}.pin", 4, 12)
    limit = _int(raw.get("pin_try_limit", 3), f"{where}.pin_try_limit", 1, 15)
    return CardProfile(
        name=path.stem,
        description=str(raw.get("description", "")),
        interfaces=tuple(interfaces),
        expected=expected,
        applications=tuple(
            _application(app, f"{where}.applications[{i}]") for i, app in enumerate(apps)
        ),
        pin=pin,
        pin_try_limit=limit,
        pin_tries=_int(raw.get("pin_tries", limit), f"{where}.pin_tries", 0, limit),
        pse=_bool(raw.get("pse", "contact" in interfaces), f"{where}.pse"),
        ppse=_bool(raw.get("ppse", "contactless" in interfaces), f"{where}.ppse"),
        card_blocked=_bool(raw.get("card_blocked", False), f"{where}.card_blocked"),
        source=path,
    )
