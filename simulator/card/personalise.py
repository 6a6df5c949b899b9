"""Personalisation: from a profile and the test PKI to the data a virtual card answers with.

What is built per application (EMV 4.4 Book 3, 10.2 and 10.3; Book 2, 5-7):

* the data objects: profile ``tags`` over scheme defaults (5A, 57, 5F20, 5F24, 5F25, 5F28,
  5F34, 9F07, 9F08, 9F42, 8C, 8D, 8E, 9F0D-9F0F, 9F49, 9F4A, 9F14, 9F23...);
* the records, laid out in three files - SFI 1 record 1: track 2 and name (57, 5F20, 9F1F);
  SFI 2 record 1: the data that take part in ODA; SFI 3: CA index and issuer certificate,
  SSAD, ICC certificate, ICC PIN encipherment certificate, one per record - and the AFL that
  names them, SFI 2 record 1 counted for ODA; with ``padded_records`` every record carries
  ``00`` padding between its objects and after its template (Book 3, Annex B);
* the AIP (profile value, or from the ODA methods, the CVM list and the issuer authentication
  mode) and, when 9F4A lists it, the AIP in the static data;
* the certificates: issuer (from issuers.json), ICC (binding PAN and static data), ICC PIN key,
  and the Signed Static Application Data with its DAC (9F45 source);
* the FCI of the ADF and the entries of the PSE/PPSE directories;
* the ICC master keys for AC, SMI and SMC (Book 2, A1.4) from the issuer master keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from simulator.card.profile import AppProfile, CardProfile, ProfileError, cryptogram_spec
from simulator.cryptogram import IssuerMasterKeys, derive_icc_master_key
from simulator.keys import (
    RsaKeyPair,
    TestPki,
    icc_certificate,
    pin_certificate,
    sign_static_data,
)
from terminal import DolError, encode, encode_tlvs
from terminal.dol import DolEntry, parse_dol

__all__ = [
    "MASTER_KEYS_FILE",
    "Application",
    "MasterKeyEntry",
    "load_master_keys",
    "personalise",
    "pse_directory_entry",
]

#: The shipped issuers file (``simulator/data/issuers.toml``): the card reads its master keys
#: from the issuer it names, so the card and the issuer host share one key list.
MASTER_KEYS_FILE = Path(__file__).resolve().parent.parent / "data" / "issuers.toml"
VISA, MASTERCARD = bytes.fromhex("A000000003"), bytes.fromhex("A000000004")

#: Application Version Number (9F08) per RID, the same values as the terminal's 9F09 in
#: ``terminal/data/terminal_config.json`` so that no profile sets TVR "ICC and terminal have
#: different application versions" (Book 3, 10.4.1) by accident: Visa VIS 1.5 (0096),
#: Mastercard M/Chip (0002), American Express (0001), CB (0002). A profile may override it
#: through ``tags``.
APPLICATION_VERSIONS = {
    VISA: bytes.fromhex("0096"),
    MASTERCARD: bytes.fromhex("0002"),
    bytes.fromhex("A000000025"): bytes.fromhex("0001"),
    bytes.fromhex("A000000042"): bytes.fromhex("0002"),
}

#: CDOL1 asking for the data the AC covers plus CVM results, DAC and IDN (Book 3, 5.4).
DEFAULT_CDOL1 = "9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F3403"
DEFAULT_CDOL2_VISA = "8A029F02069F03069F1A0295055F2A029A039C019F3704"
DEFAULT_CDOL2_MC = "910A8A0295059F37049F4C08"
DEFAULT_CVM_LIST = "00000000000000004403410342031E031F00"


@dataclass(frozen=True, slots=True)
class MasterKeyEntry:
    """One test issuer's master keys and what it serves (AID prefix, PAN prefixes)."""

    name: str
    aid_prefix: bytes
    pan_prefixes: tuple[str, ...]
    keys: IssuerMasterKeys


@cache
def _master_keys_cached(path: Path) -> dict[str, MasterKeyEntry]:
    from simulator.issuer_profiles import IssuerFileError, load_issuers

    try:
        book = load_issuers(path)
    except IssuerFileError as exc:
        raise ProfileError(f"{path.name}: unreadable master key file: {exc}") from exc
    return {
        issuer.name: MasterKeyEntry(
            issuer.name, bytes.fromhex(issuer.aid_prefix),
            tuple(r.low for r in issuer.pan_ranges), issuer.master_keys,
        )
        for issuer in book.issuers
    }


def load_master_keys(path: Path = MASTER_KEYS_FILE) -> dict[str, MasterKeyEntry]:
    """The test issuers' master keys by name (cached), from the shipped issuers file."""
    return _master_keys_cached(path)


@dataclass(frozen=True, slots=True)
class Application:
    """A personalised application: everything the card engine answers from.

    Attributes:
        profile: The application's profile.
        data: Every card-resident data object (tag → value), records and FCI included.
        records: Record templates (``70 ...``) by (SFI, record number).
        aip: Application Interchange Profile (82).
        afl: Application File Locator (94).
        fci: The FCI (``6F`` template) answered to SELECT.
        pdol, cdol1, cdol2, ddol: Parsed DOLs.
        icc_key: The ICC private key (DDA, CDA, fDDA, enciphered PIN fallback).
        pin_key: The ICC PIN encipherment private key.
        mk_ac, mk_smi, mk_smc: ICC master keys (Book 2, A1.4).
    """

    profile: AppProfile
    data: dict[int, bytes]
    records: dict[tuple[int, int], bytes]
    aip: bytes
    afl: bytes
    fci: bytes
    pdol: list[DolEntry]
    cdol1: list[DolEntry]
    cdol2: list[DolEntry]
    ddol: list[DolEntry]
    icc_key: RsaKeyPair | None
    pin_key: RsaKeyPair | None
    mk_ac: bytes
    mk_smi: bytes
    mk_smc: bytes

    def __repr__(self) -> str:
        return f"Application({self.profile.aid.hex().upper()}, {self.profile.label!r})"


def _bcd_date(yymmdd: str) -> bytes:
    return bytes.fromhex(yymmdd)


def _track2(pan: str, expiry: str) -> bytes:
    digits = f"{pan}D{expiry[:4]}201" + "0" * 13
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


def _pan_bytes(pan: str) -> bytes:
    return bytes.fromhex(pan + ("F" if len(pan) % 2 else ""))


def _defaults(app: AppProfile) -> dict[int, bytes]:
    mastercard = app.rid == MASTERCARD
    data: dict[int, bytes] = {
        0x5A: _pan_bytes(app.pan),
        0x57: _track2(app.pan, app.expiry),
        0x5F20: b"POSGW/TEST CARD",
        0x5F24: _bcd_date(app.expiry),
        0x5F25: _bcd_date(app.effective),
        0x5F28: bytes.fromhex("0250"),
        0x9F07: bytes.fromhex("FF00"),
        0x9F08: APPLICATION_VERSIONS.get(app.rid, bytes.fromhex("0096")),
        0x9F42: bytes.fromhex("0978"),
        0x9F0D: bytes.fromhex("F040048800" if mastercard else "F040008800"),
        0x9F0E: bytes.fromhex("0010000000"),
        0x9F0F: bytes.fromhex("F040048800" if mastercard else "F040008800"),
        0x9F14: b"\x03",
        0x9F23: b"\x05",
    }
    if app.psn is not None:
        data[0x5F34] = bytes.fromhex(app.psn)
    return data


def _parse(dol: bytes, name: str) -> list[DolEntry]:
    try:
        return parse_dol(dol)
    except DolError as exc:
        raise ProfileError(f"{name}: invalid DOL: {exc}") from exc


#: ``00`` bytes a padded profile puts between the objects of a record and after its template
#: (EMV 4.4 Book 3, Annex B allows both).
PADDING_BETWEEN = 2
PADDING_AFTER = 3


def _record(tags: list[int], data: dict[int, bytes], *, padded: bool = False) -> bytes:
    """A ``70`` record template; ``padded``: ``00`` bytes between the objects and after it."""
    objects = [encode_tlvs([(t, data[t])]) for t in tags if t in data]
    if not padded:
        return encode(0x70, b"".join(objects))
    between = bytes(PADDING_BETWEEN)
    return encode(0x70, between.join(objects) + between) + bytes(PADDING_AFTER)


def _template_value(record: bytes) -> bytes:
    """The value of a record built by :func:`_record` (what the issuer signs, Book 3, 10.3)."""
    if record[1] < 0x80:
        header, length = 2, record[1]
    else:
        header = 2 + (record[1] & 0x7F)
        length = int.from_bytes(record[2:header], "big")
    return record[header : header + length]


def _aip(app: AppProfile, has_cvm: bool, issuer_auth: bool) -> bytes:
    if app.aip is not None:
        return app.aip
    b1 = 0x40 if "SDA" in app.oda else 0
    b1 |= 0x20 if {"DDA", "fDDA"} & set(app.oda) else 0
    b1 |= 0x01 if "CDA" in app.oda else 0
    if app.mode != "qvsdc":
        b1 |= (0x10 if has_cvm else 0) | 0x08 | (0x04 if issuer_auth else 0)
    b2 = 0x80 if app.mode == "mchip" else 0
    return bytes((b1, b2))


def personalise(
    app: AppProfile, pki: TestPki, master_keys: dict[str, MasterKeyEntry]
) -> Application:
    """Build an :class:`Application` from its profile (see the module docstring).

    Raises:
        ProfileError: an unknown issuer, key index or master key name, a DOL that does not
            parse, or an ODA method without the key it needs.
    """
    where = f"application {app.aid.hex().upper()}"
    mastercard = app.rid == MASTERCARD
    data = _defaults(app)
    contact_like = app.mode != "qvsdc"
    if contact_like:
        data[0x8C] = app.cdol1 if app.cdol1 is not None else bytes.fromhex(DEFAULT_CDOL1)
        default_cdol2 = DEFAULT_CDOL2_MC if mastercard else DEFAULT_CDOL2_VISA
        data[0x8D] = app.cdol2 if app.cdol2 is not None else bytes.fromhex(default_cdol2)
        data[0x8E] = app.cvm_list if app.cvm_list is not None else bytes.fromhex(
            DEFAULT_CVM_LIST
        )
    elif app.cvm_list is not None:
        data[0x8E] = app.cvm_list
    if "DDA" in app.oda:
        data[0x9F49] = app.ddol if app.ddol is not None else bytes.fromhex("9F3704")
    if set(app.oda) & {"DDA", "CDA", "fDDA"}:
        data[0x9F4A] = b"\x82"
    data.update(app.tags)
    issuer_auth = contact_like and 0x91 not in {t for t, _ in _parse(data.get(0x8D, b""), where)}
    aip = _aip(app, 0x8E in data, issuer_auth)

    try:
        keys = master_keys[app.master_keys].keys
    except KeyError as exc:
        raise ProfileError(f"{where}: no master keys named {app.master_keys!r}") from exc
    psn = app.psn or "00"
    mk_ac = cryptogram_spec(app).icc_master_key(keys.ac, app.pan, psn)
    mk_smi = derive_icc_master_key(keys.smi, app.pan, psn) if keys.smi else b""
    mk_smc = derive_icc_master_key(keys.smc, app.pan, psn) if keys.smc else b""

    icc_key = pin_key = None
    if app.icc_key is not None:
        if app.icc_key >= len(pki.icc_keys):
            raise ProfileError(f"{where}: icc_key {app.icc_key} not in the key pool")
        icc_key = pki.icc_keys[app.icc_key]
    if app.pin_key is not None:
        if app.pin_key >= len(pki.pin_keys):
            raise ProfileError(f"{where}: pin_key {app.pin_key} not in the key pool")
        pin_key = pki.pin_keys[app.pin_key]

    padded = app.padded_records
    sfi1 = _record([0x57, 0x5F20, 0x9F1F], data, padded=padded)
    oda_tags = [
        0x5A, 0x5F24, 0x5F25, 0x5F28, 0x5F34, 0x9F07, 0x9F08, 0x9F42, 0x8C, 0x8D, 0x8E,
        0x9F0D, 0x9F0E, 0x9F0F, 0x9F49, 0x9F4A, 0x9F14, 0x9F23, 0x9F69,
    ]
    oda_tags += [t for t in app.tags if t not in oda_tags and t not in (0x57, 0x5F20, 0x9F1F)]
    sfi2 = _record(oda_tags, data, padded=padded)
    static = _template_value(sfi2)
    if data.get(0x9F4A) == b"\x82":
        static += aip

    cert_records: list[bytes] = []
    needs_pki = bool(app.oda) or pin_key is not None
    if needs_pki:
        if app.issuer not in pki.issuers:
            raise ProfileError(f"{where}: issuer {app.issuer!r} not in issuers.json")
        issuer = pki.issuers[str(app.issuer)]
        data[0x8F] = bytes((issuer.ca.index,))
        data[0x90] = issuer.certificate.certificate
        if issuer.certificate.remainder:
            data[0x92] = issuer.certificate.remainder
        data[0x9F32] = issuer.certificate.exponent
        cert_records.append(_record([0x8F, 0x90, 0x92, 0x9F32], data, padded=padded))
        cert_expiry = bytes.fromhex(app.expiry[2:4] + app.expiry[0:2])
        if "SDA" in app.oda:
            dac = data.get(0x9F45, b"\xda\xc1")
            data[0x93] = sign_static_data(issuer.key, dac, static)
            cert_records.append(_record([0x93], data, padded=padded))
        if set(app.oda) & {"DDA", "CDA", "fDDA"}:
            if icc_key is None:
                raise ProfileError(f"{where}: DDA/CDA/fDDA need an icc_key")
            cert = icc_certificate(
                issuer.key, icc_key.public(), app.pan, cert_expiry, b"\x00\x00\x01", static
            )
            data[0x9F46] = cert.certificate
            data[0x9F47] = cert.exponent
            if cert.remainder:
                data[0x9F48] = cert.remainder
            cert_records.append(_record([0x9F46, 0x9F47, 0x9F48], data, padded=padded))
        if pin_key is not None:
            cert = pin_certificate(issuer.key, pin_key.public(), app.pan, cert_expiry,
                                   b"\x00\x00\x02")
            data[0x9F2D] = cert.certificate
            data[0x9F2E] = cert.exponent
            if cert.remainder:
                data[0x9F2F] = cert.remainder
            cert_records.append(_record([0x9F2D, 0x9F2E, 0x9F2F], data, padded=padded))

    records = {(1, 1): sfi1, (2, 1): sfi2}
    for number, rec in enumerate(cert_records, start=1):
        records[(3, number)] = rec
    afl = bytes((1 << 3, 1, 1, 0, 2 << 3, 1, 1, 1))
    if cert_records:
        afl += bytes((3 << 3, 1, len(cert_records), 0))
    return Application(
        profile=app,
        data=data,
        records=records,
        aip=aip,
        afl=afl,
        fci=_fci(app),
        pdol=_parse(app.pdol, where),
        cdol1=_parse(data.get(0x8C, b""), where),
        cdol2=_parse(data.get(0x8D, b""), where),
        ddol=_parse(data.get(0x9F49, b""), where),
        icc_key=icc_key,
        pin_key=pin_key,
        mk_ac=mk_ac,
        mk_smi=mk_smi,
        mk_smc=mk_smc,
    )


def _fci(app: AppProfile) -> bytes:
    """The FCI of the ADF (EMV 4.4 Book 1, 11.3.4 Table 45)."""
    prop: list[tuple[int, bytes]] = [(0x50, app.label.encode("ascii", "replace"))]
    if app.priority is not None:
        prop.append((0x87, bytes((app.priority,))))
    if app.pdol:
        prop.append((0x9F38, app.pdol))
    prop.append((0x5F2D, b"enfr"))
    prop.append((0x9F11, b"\x01"))
    if app.preferred_name:
        prop.append((0x9F12, app.preferred_name.encode("ascii", "replace")[:16]))
    extra = dict(app.fci)
    discretionary = encode_tlvs([(0x9F4D, b"\x0b\x0a")] + [
        (t, v) for t, v in extra.items() if t not in (0x50, 0x87, 0x9F38, 0x5F2D, 0x9F11)
    ])
    prop.append((0xBF0C, discretionary))
    return encode(0x6F, encode(0x84, app.aid) + encode(0xA5, encode_tlvs(prop)))


def pse_directory_entry(app: AppProfile, *, contactless: bool) -> bytes:
    """One Application Template (61) of the PSE or PPSE directory (Book 1, 12.2.3; Book B)."""
    items: list[tuple[int, bytes]] = [(0x4F, app.aid), (0x50, app.label.encode("ascii", "replace"))]
    if app.priority is not None:
        items.append((0x87, bytes((app.priority,))))
    if contactless and app.kernel_id is not None:
        items.append((0x9F2A, app.kernel_id))
    if not contactless and app.preferred_name:
        items.append((0x9F12, app.preferred_name.encode("ascii", "replace")[:16]))
    return encode(0x61, encode_tlvs(items))


def check_profile(profile: CardProfile, pki: TestPki) -> list[Application]:
    """Personalise every application of a profile (used by tests and the CLI)."""
    keys = load_master_keys()
    return [personalise(app, pki, keys) for app in profile.applications]


def describe(app: Application) -> dict[str, Any]:
    """A printable summary (no card data beyond the masked PAN)."""
    pan = app.profile.pan
    return {
        "aid": app.profile.aid.hex().upper(),
        "label": app.profile.label,
        "mode": app.profile.mode,
        "pan": pan[:6] + "*" * (len(pan) - 10) + pan[-4:],
        "oda": list(app.profile.oda),
        "cvn": app.profile.cvn.value,
        "aip": app.aip.hex().upper(),
    }
