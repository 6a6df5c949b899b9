"""The simulated issuer host: check an ARQC, decide, answer with ARPC, 8A, 91 and scripts.

Pure logic (no HTTP; the acquirer server of a later issue wraps it). From the field-55 data of
an authorisation request (BER-TLV, EMV 4.4 Book 4, Annex C; the TLVs the kernel collects) the
host:

1. finds the application (4F, 84 or 9F06), the PAN (5A, else the track 2 equivalent 57) and
   the PAN sequence number (5F34, default ``00``) - kept in local variables only, never
   logged, stored or put in a message;
2. finds the issuer profile whose AID prefix and PAN range match (the shipped
   ``simulator/data/issuers.toml`` or an issuers file, :mod:`simulator.issuer_profiles`), its
   cryptogram version (fixed by the profile, or for ``auto`` the scheme CVN of 9F10,
   :func:`simulator.card.iad.cvn_from_iad`), derives the ICC master key (Book 2, A1.4) and
   recomputes the ARQC over the data the version covers (:mod:`simulator.cryptogram_spec`:
   by default 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 and the card data of 9F10);
3. decides: unknown card ``14``, a cryptogram that does not verify or an AAC ``05`` (no
   ARPC); a verified TC (an offline approval forwarded later) is booked as a completion
   ``00`` without ARPC; for an ARQC: amount above the policy's ``decline_above`` ``51``,
   the policy hook's answer if it gives one, else approve ``00`` (ARC 8A, two characters);
4. answers the issuer authentication data (91, Book 2, 8.2): method 1 ``ARPC (8) | ARC`` (CVN
   10/16/17, or an ``emv-csk`` version with ``arpc_method = 1``), method 2 ``ARPC (4) | CSU (4)``
   (Visa CVN 18/22, ``arpc_method = 2``; CSU ``00800000`` when approved, ``00000000`` when
   declined: the "approved" bit, simplified); and the issuer
   scripts the policy asks for, MACed for the card (:mod:`simulator.card.scripts`), in
   templates 71 (before the second GENERATE AC) or 72 (after), each command in tag 86.

Policy ``availability``: ``"online"`` answers; ``"none"`` returns ``None`` (no answer, as a
time-out); ``"raise"`` raises :class:`IssuerUnavailable`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from simulator.card.iad import cvn_from_iad
from simulator.card.personalise import MasterKeyEntry
from simulator.card.scripts import script_mac
from simulator.cryptogram import Cvn, common_session_key, derive_icc_master_key
from simulator.cryptogram_spec import issuer_auth_data, spec_for_cvn
from simulator.issuer_profiles import IssuerProfile, default_issuers
from terminal import EmvError, TlvError, decode, encode, encode_tlvs, flatten
from terminal.pinpad import plaintext_pin_block

__all__ = [
    "AuthorisationResponse",
    "IssuerError",
    "IssuerHost",
    "IssuerPolicy",
    "IssuerUnavailable",
    "ScriptCommand",
]

ARC_APPROVED = b"00"
ARC_DECLINED = b"05"
ARC_UNKNOWN_CARD = b"14"
ARC_INSUFFICIENT_FUNDS = b"51"


class IssuerError(EmvError):
    """The authorisation data cannot be used (malformed field 55, missing tag)."""


class IssuerUnavailable(IssuerError):
    """The issuer is configured as unreachable (policy availability ``"raise"``)."""


@dataclass(frozen=True, slots=True)
class ScriptCommand:
    """One issuer script command to send (Book 3, 10.10).

    Attributes:
        kind: ``application_block``, ``application_unblock``, ``card_block``,
            ``pin_unblock``, ``pin_change`` or ``put_data``.
        tag: For ``put_data``: the tag to update.
        value: For ``put_data``: the new value; for ``pin_change``: the new PIN digits
            (test material, enciphered for the card, never shown).
        after: Send after the second GENERATE AC (template 72) rather than before (71).
    """

    kind: str
    tag: int = 0
    value: bytes = b""
    after: bool = False

    def __repr__(self) -> str:
        return f"ScriptCommand({self.kind!r}, after={self.after})"


@dataclass(frozen=True, slots=True)
class IssuerPolicy:
    """How the host decides.

    Attributes:
        availability: ``online``, ``none`` (no answer) or ``raise``.
        decline_above: Decline (``51``) above this amount in minor units.
        hook: Called with the decoded request data (tag → value; do not keep it); may return an
            ARC to impose (e.g. ``b"05"``), or None to let the host decide.
        scripts: Script commands to add to an approval.
    """

    availability: Literal["online", "none", "raise"] = "online"
    decline_above: int | None = None
    hook: Callable[[Mapping[int, bytes]], bytes | None] | None = None
    scripts: tuple[ScriptCommand, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthorisationResponse:
    """The host's answer.

    Attributes:
        approved: ARC ``00``.
        arc: Authorisation Response Code (8A, 2 characters).
        reason: Why, in words (no card data).
        arqc_valid: Whether the ARQC verified.
        cvn: The scheme cryptogram version found (None for another version).
        issuer_auth_data: Tag 91 value (empty when none).
        scripts: Encoded templates 71/72.
    """

    approved: bool
    arc: bytes
    reason: str
    arqc_valid: bool
    cvn: Cvn | None = None
    issuer_auth_data: bytes = b""
    scripts: bytes = b""
    version: str | None = None

    def field55(self) -> bytes:
        """The response field 55: 91, 8A and the script templates."""
        out = encode(0x8A, self.arc)
        if self.issuer_auth_data:
            out += encode(0x91, self.issuer_auth_data)
        return out + self.scripts


def _shipped_issuers() -> tuple[IssuerProfile, ...]:
    return tuple(default_issuers().issuers)


@dataclass(slots=True)
class IssuerHost:
    """The simulated issuer (see the module docstring).

    Attributes:
        issuers: The issuer profiles, tried in order (default: the shipped test issuers).
        policy: How the host decides.
    """

    issuers: Sequence[IssuerProfile] = field(default_factory=_shipped_issuers)
    policy: IssuerPolicy = field(default_factory=IssuerPolicy)

    @property
    def keys(self) -> dict[str, MasterKeyEntry]:
        """The issuers' master keys by name (what a virtual card is personalised with)."""
        return {
            p.name: MasterKeyEntry(p.name, bytes.fromhex(p.aid_prefix),
                                   tuple(r.low for r in p.pan_ranges), p.master_keys)
            for p in self.issuers
        }  # fmt: skip

    def find(self, aid: bytes, pan: str) -> IssuerProfile | None:
        """The first issuer profile serving this application and PAN."""
        for profile in self.issuers:
            if profile.serves(aid, pan):
                return profile
        return None

    def authorise(self, icc_data: bytes | Mapping[int, bytes]) -> AuthorisationResponse | None:
        """Answer an authorisation request from its field-55 data (see the module docstring).

        Raises:
            IssuerError: malformed TLV data or a mandatory tag missing.
            IssuerUnavailable: the policy says the issuer is unreachable and must raise.
        """
        if self.policy.availability == "none":
            return None
        if self.policy.availability == "raise":
            raise IssuerUnavailable("issuer unavailable (simulated)")
        data = _flatten(icc_data)
        aid = data.get(0x4F) or data.get(0x84) or data.get(0x9F06) or b""
        pan, psn = _pan_psn(data)
        profile = self.find(aid, pan)
        iad = data.get(0x9F10, b"")
        spec = profile.cryptogram.spec() if profile is not None else None
        cvn = cvn_from_iad(iad, aid)
        if spec is None and cvn is not None:
            spec = spec_for_cvn(cvn)
        if profile is None or spec is None:
            return AuthorisationResponse(False, ARC_UNKNOWN_CARD, "unknown card or CVN", False)
        cvn = Cvn(spec.version) if spec.version != "emv-csk" else None
        arqc = _need(data, 0x9F26, 8)
        atc = _need(data, 0x9F36, 2)
        for tag, size in _REQUIRED:
            _need(data, tag, size)
        un = data[0x9F37]
        icc_mk = spec.icc_master_key(profile.master_keys.ac, pan, psn)
        valid = hmac.compare_digest(spec.cryptogram(icc_mk, data, iad), arqc)
        cid = data.get(0x9F27, b"\x80")
        kind = cid[0] & 0xC0 if cid else 0x80
        if not valid or kind not in (0x80, 0x40):
            reason = "cryptogram is an AAC"
            if not valid:
                reason = "TC does not verify" if kind == 0x40 else "ARQC does not verify"
            return AuthorisationResponse(False, ARC_DECLINED, reason, valid, cvn,
                                         version=spec.version)  # fmt: skip
        if kind == 0x40:
            return self._completion(data, valid, cvn, spec.version)
        arc, reason = ARC_APPROVED, "approved"
        raw_amount = data[0x9F02].hex()
        amount = int(raw_amount) if raw_amount.isdigit() else 0
        if self.policy.decline_above is not None and amount > self.policy.decline_above:
            arc, reason = ARC_INSUFFICIENT_FUNDS, "amount above the policy limit"
        if self.policy.hook is not None:
            imposed = self.policy.hook(data)
            if imposed is not None:
                arc, reason = imposed, "policy hook"
        approved = arc == ARC_APPROVED
        auth = issuer_auth_data(spec, icc_mk, arqc, atc, un, arc)
        scripts = b""
        if approved and self.policy.scripts and profile.master_keys.smi:
            scripts = self._scripts(profile, pan, psn, arqc, atc)
        return AuthorisationResponse(approved, arc, reason, True, cvn, auth, scripts,
                                     spec.version)  # fmt: skip

    def _completion(
        self, data: Mapping[int, bytes], valid: bool, cvn: Cvn | None, version: str
    ) -> AuthorisationResponse:
        """A verified TC: an offline approval sent on later, taken as a completion advice.

        The card approved offline (EMV 4.4 Book 3, 10.8: TC at the first GENERATE AC), so the
        issuer books it: ``00``, no ARPC (there is no second GENERATE AC to authenticate) and
        no scripts. The policy hook may still impose a code (a planted declined forward).
        """
        arc, reason = ARC_APPROVED, "offline approval (TC) taken as a completion"
        if self.policy.hook is not None:
            imposed = self.policy.hook(data)
            if imposed is not None:
                arc, reason = imposed, "policy hook"
        return AuthorisationResponse(arc == ARC_APPROVED, arc, reason, valid, cvn,
                                     version=version)  # fmt: skip

    def _scripts(
        self, profile: IssuerProfile, pan: str, psn: str, arqc: bytes, atc: bytes
    ) -> bytes:
        keys = profile.master_keys
        smi = common_session_key(derive_icc_master_key(keys.smi, pan, psn), arqc)
        smc = common_session_key(derive_icc_master_key(keys.smc, pan, psn), arqc)
        before: list[bytes] = []
        after: list[bytes] = []
        for script in self.policy.scripts:
            (after if script.after else before).append(
                encode(0x86, _script_apdu(script, smi, smc, arqc, atc))
            )
        out = b""
        for template, commands in ((0x71, before), (0x72, after)):
            if commands:
                out += encode(template, encode(0x9F18, b"\x00\x00\x00\x01") + b"".join(commands))
        return out

    def __repr__(self) -> str:
        return f"IssuerHost({len(self.issuers)} issuers, policy={self.policy.availability})"


#: Data every authorisation must carry (Book 2, 8.1.1 Table 26), with their sizes.
_REQUIRED = ((0x9F02, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9F37, 4), (0x82, 2))


_SCRIPT_HEADERS = {
    "application_block": (0x84, 0x1E, 0, 0),
    "application_unblock": (0x84, 0x18, 0, 0),
    "card_block": (0x84, 0x16, 0, 0),
    "pin_unblock": (0x84, 0x24, 0, 0),
    "pin_change": (0x84, 0x24, 0, 2),
}


def _script_apdu(script: ScriptCommand, smi: bytes, smc: bytes, arqc: bytes, atc: bytes) -> bytes:
    """A MACed script command for the card (Book 2, 9.2; see simulator.card.scripts)."""
    if script.kind == "put_data":
        header = (0x04, 0xDA, script.tag >> 8, script.tag & 0xFF)
        data = script.value
    elif script.kind == "pin_change":
        header = _SCRIPT_HEADERS["pin_change"]
        block = plaintext_pin_block(script.value.decode("ascii"))
        enc = Cipher(TripleDES(smc + smc[:8]), modes.ECB()).encryptor()  # noqa: S305 - EMV
        data = enc.update(block) + enc.finalize()
    elif script.kind in _SCRIPT_HEADERS:
        header, data = _SCRIPT_HEADERS[script.kind], b""
    else:
        raise IssuerError(f"unknown script command {script.kind!r}")
    lc = len(data) + 8
    head = bytes((*header, lc))
    return head + data + script_mac(smi, head, atc, arqc, data)


def _flatten(icc_data: bytes | Mapping[int, bytes]) -> dict[int, bytes]:
    if isinstance(icc_data, Mapping):
        return dict(icc_data)
    try:
        return flatten(decode(bytes(icc_data)))
    except TlvError as exc:
        message = f"field 55 is not valid BER-TLV: {exc.message}"
        raise IssuerError(message, offset=exc.offset) from exc


def _need(data: Mapping[int, bytes], tag: int, size: int) -> bytes:
    value = data.get(tag)
    if value is None or len(value) != size:
        raise IssuerError(f"missing or {size}-byte value expected", tag=tag)
    return value


def _pan_psn(data: Mapping[int, bytes]) -> tuple[str, str]:
    pan = data.get(0x5A, b"").hex().upper().rstrip("F")
    if not pan and 0x57 in data:
        pan = data[0x57].hex().upper().partition("D")[0]
    if not pan.isdigit() or not 12 <= len(pan) <= 19:
        raise IssuerError("no usable PAN (5A or 57)", tag=0x5A)
    raw_psn = data.get(0x5F34, b"\x00").hex()
    psn = raw_psn[-2:] if raw_psn.isdigit() else "00"
    return pan, psn


def encode_request(values: Mapping[int, bytes]) -> bytes:
    """Encode a tag → value mapping as field 55 (a convenience for tests and the CLI)."""
    return encode_tlvs(values.items())
