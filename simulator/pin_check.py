"""The simulated issuer's online PIN check: decipher the PIN block, compare, count the tries.

An authorisation request that carries an online PIN block (EMV 4.4 Book 3, 10.5.2; the block
and its KSN in the request body, docs/acquirer-api.md) is checked here before the issuer
decides on the ARQC:

* the block is deciphered with the PIN encryption key derived from the BDK and the block's KSN
  (AES DUKPT, ANSI X9.24-3-2017; ISO 9564-1 format 4 or 0: :mod:`terminal.online_pin`);
* the PIN is compared with the cardholder's, the one in the card's profile (``pin``);
* a wrong PIN answers ``55`` (incorrect PIN, ISO 8583 response code); the third wrong PIN in a
  row, and every request after it, ``75`` (allowable number of PIN tries exceeded); a right
  PIN below the limit resets the count;
* a block that does not decipher (another key, another PAN, a malformed KSN) counts as a
  wrong PIN. KSN replay is not checked: the virtual PIN pads do not keep their DUKPT counter
  across restarts, so a fresh pad starts at counter 1 again.

The answer is a response code the issuer imposes (:func:`impose`), so the ARPC the card checks
carries it. The PIN, the block and the KSN are never logged, kept or shown: only the verdict and
per-card counts stay.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from dataclasses import replace

from simulator.issuer import IssuerHost
from terminal import OnlinePinBlock
from terminal.dukpt import DukptError
from terminal.online_pin import TEST_BDK, decipher_pin_block
from terminal.pinpad import PinError

__all__ = [
    "ARC_PIN_TRIES_EXCEEDED",
    "ARC_WRONG_PIN",
    "DEFAULT_TRY_LIMIT",
    "IssuerPinVerifier",
    "PinVerdict",
    "block_from_request",
    "impose",
]

ARC_WRONG_PIN = b"55"
ARC_PIN_TRIES_EXCEEDED = b"75"
DEFAULT_TRY_LIMIT = 3


class PinVerdict(enum.Enum):
    """What the issuer made of an online PIN block."""

    VERIFIED = "verified"
    WRONG = "wrong"
    TRIES_EXCEEDED = "tries exceeded"
    NO_REFERENCE = "no reference PIN"

    @property
    def response_code(self) -> bytes | None:
        """The response code to impose (``None``: the issuer decides as without PIN)."""
        if self is PinVerdict.WRONG:
            return ARC_WRONG_PIN
        if self is PinVerdict.TRIES_EXCEEDED:
            return ARC_PIN_TRIES_EXCEEDED
        return None


class IssuerPinVerifier:
    """The issuer's reference PINs and try counters (see the module docstring).

    Args:
        pins: The cardholder's PIN by PAN (digits).
        bdk: The Base Derivation Key of the PIN pads (default: the X9.24-3 test BDK).
        try_limit: Wrong PINs in a row after which every request answers 75.
    """

    def __init__(
        self,
        pins: Mapping[str, str],
        *,
        bdk: bytes = TEST_BDK,
        try_limit: int = DEFAULT_TRY_LIMIT,
    ) -> None:
        self.__pins = dict(pins)
        self.__bdk = bdk
        self.try_limit = try_limit
        self._wrong: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_profiles(cls, **kwargs: object) -> IssuerPinVerifier:
        """Every simulator card profile's PIN, by the PAN of each of its applications."""
        from simulator.card import list_profiles, load_profile

        pins: dict[str, str] = {}
        for name in list_profiles():
            profile = load_profile(name)
            for app in profile.applications:
                pins.setdefault(app.pan, profile.pin)
        return cls(pins, **kwargs)  # type: ignore[arg-type]

    def wrong_count(self, pan: str) -> int:
        """Wrong PINs in a row for this card (for tests and the status of the simulator)."""
        return self._wrong.get(pan.rstrip("Ff"), 0)

    def check(self, block: OnlinePinBlock, pan: str) -> PinVerdict:
        """Decipher and check one online PIN block for the card ``pan``."""
        digits = pan.rstrip("Ff")
        with self._lock:
            reference = self.__pins.get(digits)
            if reference is None:
                return PinVerdict.NO_REFERENCE
            if self._wrong.get(digits, 0) >= self.try_limit:
                return PinVerdict.TRIES_EXCEEDED
            try:
                pin = decipher_pin_block(block, digits, self.__bdk)
            except (PinError, DukptError):
                return self._count_wrong(digits)
            if pin != reference:
                return self._count_wrong(digits)
            self._wrong.pop(digits, None)
            return PinVerdict.VERIFIED

    def _count_wrong(self, digits: str) -> PinVerdict:
        count = self._wrong.get(digits, 0) + 1
        self._wrong[digits] = count
        return PinVerdict.TRIES_EXCEEDED if count >= self.try_limit else PinVerdict.WRONG

    def __repr__(self) -> str:
        return f"IssuerPinVerifier({len(self.__pins)} cards, try limit {self.try_limit})"


def block_from_request(pin: Mapping[str, object]) -> OnlinePinBlock:
    """The PIN block of an acquirer request's ``pin`` object (already checked to be hex).

    Raises:
        PinError: a field of the wrong type (the values are not quoted).
    """
    block, ksn, fmt = pin.get("block"), pin.get("ksn"), pin.get("format")
    if not isinstance(block, str) or not isinstance(ksn, str) or fmt not in (0, 4):
        raise PinError("pin: block and ksn in hexadecimal, format 0 or 4")
    try:
        return OnlinePinBlock(bytes.fromhex(block), bytes.fromhex(ksn), 4 if fmt == 4 else 0)
    except ValueError:
        raise PinError("pin: block and ksn in hexadecimal") from None


def impose(host: IssuerHost, verdict: PinVerdict) -> IssuerHost:
    """The issuer host answering with the verdict's response code (same keys, same ARPC rules).

    A verified PIN, or one the issuer has no reference for, leaves ``host`` as it is. The
    host's own policy hook still applies when the PIN is right.
    """
    code = verdict.response_code
    if code is None:
        return host
    return replace(host, policy=replace(host.policy, hook=lambda _data: code))
