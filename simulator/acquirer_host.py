"""The simulated acquirer host: the online payment API of docs/acquirer-api.md over HTTP.

An aiohttp server in front of :class:`simulator.issuer.IssuerHost` (which verifies the ARQC of
the field-55 data and builds the ARPC, EMV 4.4 Book 2, 8.1-8.2). It keeps, in memory:

* every authorisation, by id and by the ``Idempotency-Key`` that created it (status query);
* the stored answer of every ``POST`` by its idempotency key, with an HMAC fingerprint of the
  method, path and body: the same request again is a replay (``200``,
  ``Idempotent-Replayed: true``), never a second charge; another request with the key is a
  ``409``; concurrent requests with one key are serialised; ``5xx`` answers are not stored;
* the status query by key, which waits for a request with that key still being processed (so
  "not found" means never received or refused, never "not finished yet");
* a :attr:`AcquirerHost.ledger` of what moved money (``charge``, ``decline``, ``reversal``,
  ``refund``), for tests to count charges, served as ``GET /sim/ledger``
  (:mod:`simulator.sim_ledger`).

Fault injection (:class:`HostFaults`, applied to ``POST /v1/authorisations`` only, mutable while
the host runs): ``server_errors`` answers the next N with ``503`` before processing;
``drop_after_processing`` processes the next N then closes the connection without an answer
(the "answer never came" case); ``delay_s`` waits before answering, ``issuer_delay_s`` before
deciding (a slow issuer, the key's request in flight); ``decline_all`` has the
issuer decline (``05``) with a valid ARPC; ``response_code`` imposes 05/51/55/91; and the
amount/PAN outcome table of :mod:`simulator.sandbox_rules` (docs/sandbox.md) scripts the same
outcomes per request unless ``test_rules`` is off.

The PAN arrives in ``card.pan``; it goes to the issuer in memory (as tag 5A) and nowhere else:
not in a log, the ledger, a stored answer or an error message. An online PIN block (``pin``:
block, KSN, format) is deciphered and checked by :mod:`simulator.pin_check` (AES DUKPT from the
test BDK, the card profiles' PINs): a wrong PIN is answered ``55``, the third wrong one in a row
``75``; the block is dropped with the request. A ``pin_verifier`` hook, when given, is the
PIN check instead: called for an issuer profile with a ``pin`` section (a failed check is
``55``), other issuers accept the block unchecked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from aiohttp import web

from simulator.acquirer_totals import add_totals_routes
from simulator.issuer import IssuerError, IssuerHost, IssuerUnavailable
from simulator.issuer_profiles import PinCheckModel
from simulator.pin_check import IssuerPinVerifier, block_from_request
from simulator.sandbox_rules import ISSUER_CODES, Outcome, outcome_for
from simulator.sim_ledger import ledger_report
from terminal import TlvError, decode, encode, flatten, mask_pan

__all__ = ["AcquirerHost", "HostFaults", "LedgerEntry", "PinVerifier"]

_log = logging.getLogger("simulator.acquirer_host")

_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEX = frozenset("0123456789abcdefABCDEF")
_ID_RE = re.compile(r"^[\x21-\x7e]{1,16}$")

Json = dict[str, Any]
#: The online PIN check hook: (issuer's ``pin`` section, the request's ``pin``, PAN) -> valid.
PinVerifier = Callable[[PinCheckModel, Json, str], bool]
Operation = Callable[[str, Json], Awaitable[tuple[int, Callable[[], Json]]]]


@dataclass(slots=True)
class HostFaults:
    """Faults for tests (see the module docstring); counters decrement as they fire.

    Attributes:
        delay_s: Wait before sending each answer (after processing).
        issuer_delay_s: Wait before the issuer decides (the request in flight).
        drop_after_processing: Process the next N, then close without answering.
        server_errors: Answer the next N with ``503`` before processing.
        always_server_error: Answer every authorisation with ``503``.
        decline_all: The issuer declines everything (``05``, valid ARPC).
        response_code: The issuer answers every authorisation with this code (``05``, ``51``,
            ``55``: with a valid ARPC; ``91``: issuer unavailable, no issuer data).
        test_rules: Apply the amount/PAN outcome table (:mod:`simulator.sandbox_rules`).
        slow_s: How long the issuer takes in the ``timeout`` outcome.
    """

    delay_s: float = 0.0
    issuer_delay_s: float = 0.0
    drop_after_processing: int = 0
    server_errors: int = 0
    always_server_error: bool = False
    decline_all: bool = False
    response_code: str | None = None
    test_rules: bool = True
    slow_s: float = 30.0


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of money (no card data)."""

    kind: Literal["charge", "decline", "reversal", "refund"]
    id: str
    amount: int
    currency: int
    idempotency_key: str
    authorisation_id: str = ""
    forwarded: bool = False


@dataclass(slots=True)
class _Authorisation:
    id: str
    idempotency_key: str
    approved: bool
    response_code: str
    authorisation_code: str | None
    issuer_response: bytes
    amount: int
    currency: int
    reversed: bool = False
    refunded_amount: int = 0
    forwarded: bool = False
    terminal_id: str = ""
    stan: int = 0

    def to_json(self) -> Json:
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "status": "approved" if self.approved else "declined",
            "response_code": self.response_code,
            "authorisation_code": self.authorisation_code,
            "issuer_response": self.issuer_response.hex().upper(),
            "amount": self.amount,
            "currency": self.currency,
            "reversed": self.reversed,
            "refunded_amount": self.refunded_amount,
        }


@dataclass(slots=True)
class _Stored:
    fingerprint: bytes
    render: Callable[[], Json]
    status: int = 200


class _HttpError(Exception):
    """An error answer: ``{"error": code, "field": ..., "message": ...}`` (no card data)."""

    def __init__(self, status: int, code: str, field: str | None = None, message: str = "") -> None:
        super().__init__(code)
        self.status, self.code, self.field, self.message = status, code, field, message

    def to_json(self) -> Json:
        body: Json = {"error": self.code}
        if self.field:
            body["field"] = self.field
        if self.message:
            body["message"] = self.message
        return body

    def response(self) -> web.Response:
        return web.json_response(self.to_json(), status=self.status)


class AcquirerHost:
    """The simulated acquirer (see the module docstring).

    Args:
        issuer: The issuer deciding authorisations (default: the simulator's test issuers).
        faults: Fault injection, mutable while running.
        fingerprint_key: HMAC key of the request fingerprints (default: random).
        pin_verifier: The online PIN check (the hook simulator/pin_check.py fills): called
            with the serving issuer profile's ``pin`` section, the request's ``pin`` object
            (``block``, ``ksn``, ``format``) and the PAN, for a request carrying a PIN block
            to an issuer with a ``pin`` section; False answers ``55`` (incorrect PIN); other
            issuers accept the block unchecked. None: ``pins`` checks every PIN block.
        pins: The built-in online PIN check of :mod:`simulator.pin_check`, used without a
            ``pin_verifier`` (default: the card profiles' PINs, test BDK; 55, then 75).
    """

    def __init__(
        self,
        *,
        issuer: IssuerHost | None = None,
        faults: HostFaults | None = None,
        fingerprint_key: bytes | None = None,
        pin_verifier: PinVerifier | None = None,
        pins: IssuerPinVerifier | None = None,
    ) -> None:
        self.issuer = issuer if issuer is not None else IssuerHost()
        self.pin_verifier = pin_verifier
        self.pins = pins if pins is not None else IssuerPinVerifier.from_profiles()
        self.faults = faults if faults is not None else HostFaults()
        self.ledger: list[LedgerEntry] = []
        self.issuer_calls = 0
        self._fp_key = fingerprint_key if fingerprint_key is not None else os.urandom(32)
        self._auths: dict[str, _Authorisation] = {}
        self._auth_by_key: dict[str, _Authorisation] = {}
        self._stored: dict[str, _Stored] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refunds = 0
        self._reversals = 0
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        self.app = web.Application()
        self.app.router.add_post("/v1/authorisations", self._route_authorise)
        self.app.router.add_get("/v1/authorisations", self._route_status)
        self.app.router.add_post("/v1/authorisations/{id}/reversal", self._route_reverse)
        self.app.router.add_post("/v1/refunds", self._route_refund)
        self.app.router.add_get("/sim/ledger", self._route_ledger)
        self._failed_once: set[str] = set()
        self._dropped_once: set[str] = set()
        #: Batch totals (``POST /v1/batches/close``, simulator/acquirer_totals.py).
        self.batches = add_totals_routes(self)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: a free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("acquirer host already started")
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """Stop listening and close the connections (may be called twice)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> AcquirerHost:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def stans(self) -> list[int]:
        """The STAN of each authorisation request answered, in order (tests)."""
        return [auth.stan for auth in self._auths.values()]

    @property
    def charges(self) -> list[LedgerEntry]:
        """The ``charge`` entries of the ledger (approved authorisations)."""
        return [entry for entry in self.ledger if entry.kind == "charge"]

    def __repr__(self) -> str:
        return f"AcquirerHost({self.url}, {len(self._auths)} authorisations)"

    # --- routes ------------------------------------------------------------------------------

    async def _route_authorise(self, request: web.Request) -> web.StreamResponse:
        faults = self.faults
        key = request.headers.get("Idempotency-Key", "")
        outcome = await self._scripted_outcome(request)
        once = outcome is Outcome.SERVER_ERROR_ONCE and key not in self._failed_once
        if faults.server_errors > 0 or faults.always_server_error or once or (
            outcome is Outcome.SERVER_ERROR
        ):
            if faults.server_errors > 0:
                faults.server_errors -= 1
            if once:
                self._failed_once.add(key)
            return _HttpError(503, "unavailable", message="simulated server error").response()
        response = await self._idempotent(request, self._authorise)
        if faults.delay_s > 0:
            await asyncio.sleep(faults.delay_s)
        lose = outcome is Outcome.ANSWER_LOST and key not in self._dropped_once
        if (faults.drop_after_processing > 0 or lose) and response.status < 500:
            if lose:
                self._dropped_once.add(key)
            else:
                faults.drop_after_processing -= 1
            if request.transport is not None:
                request.transport.abort()
        return response

    async def _scripted_outcome(self, request: web.Request) -> Outcome:
        """The amount/PAN rule matching this request (APPROVE when off or unreadable)."""
        if not self.faults.test_rules:
            return Outcome.APPROVE
        try:
            body = json.loads(await request.read() or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return Outcome.APPROVE
        if not isinstance(body, dict):
            return Outcome.APPROVE
        amount, card = body.get("amount"), body.get("card")
        pan = card.get("pan") if isinstance(card, dict) else None
        if not isinstance(amount, int) or not isinstance(pan, str):
            return Outcome.APPROVE
        return outcome_for(amount, pan)

    async def _route_ledger(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(ledger_report(self.ledger, list(self._auths.values())))

    async def _route_reverse(self, request: web.Request) -> web.StreamResponse:
        auth_id = request.match_info["id"]

        async def operation(key: str, body: Json) -> tuple[int, Callable[[], Json]]:
            return await self._reverse(auth_id, key, body)

        return await self._idempotent(request, operation)

    async def _route_refund(self, request: web.Request) -> web.StreamResponse:
        return await self._idempotent(request, self._refund)

    async def _route_status(self, request: web.Request) -> web.StreamResponse:
        key = request.query.get("idempotency_key", "")
        if not _KEY_RE.match(key):
            return _HttpError(400, "invalid_request", "idempotency_key").response()
        in_flight = self._locks.get(key)
        if in_flight is not None:
            async with in_flight:  # a request with this key is being processed: wait for it
                pass
        auth = self._auth_by_key.get(key)
        if auth is None:
            return _HttpError(404, "not_found").response()
        return web.json_response(auth.to_json())

    # --- idempotency -------------------------------------------------------------------------

    async def _idempotent(self, request: web.Request, operation: Operation) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        if not _KEY_RE.match(key):
            return _HttpError(400, "invalid_request", "Idempotency-Key").response()
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict):
            message = "body is not a JSON object"
            return _HttpError(400, "invalid_request", message=message).response()
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        signed = f"{request.method} {request.path}\n".encode() + canonical
        fingerprint = hmac.new(self._fp_key, signed, hashlib.sha256).digest()
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            stored = self._stored.get(key)
            if stored is not None:
                if not hmac.compare_digest(stored.fingerprint, fingerprint):
                    return _HttpError(
                        409, "idempotency_conflict", "Idempotency-Key",
                        "key already used with another request",
                    ).response()
                return web.json_response(
                    stored.render(), status=stored.status, headers={"Idempotent-Replayed": "true"}
                )
            try:
                status, render = await operation(key, body)
            except _HttpError as exc:
                if exc.status < 500:
                    self._stored[key] = _Stored(fingerprint, exc.to_json, exc.status)
                return exc.response()
            self._stored[key] = _Stored(fingerprint, render)
            return web.json_response(render(), status=status)

    # --- operations --------------------------------------------------------------------------

    async def _authorise(self, key: str, body: Json) -> tuple[int, Callable[[], Json]]:
        amount = _int(body, "amount", 1, 999_999_999_999)
        currency = _int(body, "currency", 1, 999)
        _hex_str(body, "transaction_type", 2)
        icc = bytes.fromhex(_hex_str(body, "icc_data", None))
        _int(body, "stan", 1, 999_999)
        for name in ("terminal_id", "merchant_id"):
            if not isinstance(body.get(name), str) or not _ID_RE.match(body[name]):
                raise _HttpError(400, "invalid_request", name, "1-16 printable characters")
        if not isinstance(body.get("local_datetime"), str):
            raise _HttpError(400, "invalid_request", "local_datetime", "ISO 8601 expected")
        card = body.get("card")
        pan = card.get("pan") if isinstance(card, dict) else None
        if not isinstance(pan, str) or not pan.isdigit() or not 12 <= len(pan) <= 19:
            raise _HttpError(400, "invalid_request", "card.pan", "12 to 19 digits expected")
        if body.get("pin") is not None:
            _check_pin(body["pin"])
        try:
            data = flatten(decode(icc))
        except TlvError as exc:
            raise _HttpError(400, "invalid_request", "icc_data", exc.message) from None
        if 0x9F02 in data and data[0x9F02].hex() != f"{amount:012d}":
            raise _HttpError(400, "invalid_request", "amount", "differs from 9F02 in icc_data")
        data[0x5A] = bytes.fromhex(pan + ("F" if len(pan) % 2 else ""))
        forwarded = data.get(0x9F27, b"\x80")[:1] == b"\x40"  # an offline TC sent on later
        issuer = self.issuer
        outcome = outcome_for(amount, pan) if self.faults.test_rules else Outcome.APPROVE
        code = self.faults.response_code or ISSUER_CODES.get(outcome)
        if code is None and body.get("pin") is not None:
            code = self._pin_code(body["pin"], data, pan)
        if code is None and self.faults.decline_all:
            code = "05"
        if code == "91":
            issuer = replace(issuer, policy=replace(issuer.policy, availability="none"))
        elif code is not None:
            imposed = code.encode("ascii")
            issuer = replace(issuer, policy=replace(issuer.policy, hook=lambda _data: imposed))
        if self.faults.issuer_delay_s > 0:
            await asyncio.sleep(self.faults.issuer_delay_s)
        if outcome is Outcome.TIMEOUT:
            await asyncio.sleep(self.faults.slow_s)
        self.issuer_calls += 1
        try:
            answer = issuer.authorise(data)
        except IssuerUnavailable:
            raise _HttpError(503, "issuer_unavailable") from None
        except IssuerError as exc:
            raise _HttpError(400, "invalid_request", "icc_data", exc.message) from None
        finally:
            data.clear()
        auth_id = f"auth_{len(self._auths) + 1:06d}"
        if answer is None:
            auth = _Authorisation(auth_id, key, False, "91", None, b"", amount, currency)
        else:
            code = answer.arc.decode("ascii", "replace")
            approval = f"{len(self._auths) + 1:06d}" if answer.approved else None
            response = answer.field55()
            if approval is not None:
                response = encode(0x89, approval.encode()) + response
            auth = _Authorisation(
                auth_id, key, answer.approved, code, approval, response, amount, currency
            )
        auth.forwarded, auth.terminal_id, auth.stan = forwarded, body["terminal_id"], body["stan"]
        self._auths[auth_id] = auth
        self._auth_by_key[key] = auth
        kind: Literal["charge", "decline"] = "charge" if auth.approved else "decline"
        self.ledger.append(LedgerEntry(kind, auth_id, amount, currency, key, auth_id, forwarded))
        _log.info("authorisation %s %s %s %s", auth_id, kind, auth.response_code, mask_pan(pan))
        return 201, auth.to_json

    def _pin_code(self, pin: Any, data: dict[int, bytes], pan: str) -> str | None:
        """The response code an online PIN block imposes, or None (the issuer decides).

        With a ``pin_verifier`` hook, the hook is the PIN check: it decides for a serving
        issuer profile with a ``pin`` section (False: ``55``), other issuers accept the block
        unchecked. Without one, :mod:`simulator.pin_check` checks the block against the card
        profiles' PINs (``55`` wrong, ``75`` the third wrong one in a row).
        """
        if self.pin_verifier is not None:
            aid = data.get(0x4F) or data.get(0x84) or data.get(0x9F06) or b""
            profile = self.issuer.find(aid, pan)
            if profile is None or profile.pin is None:
                return None
            return None if self.pin_verifier(profile.pin, pin, pan) else "55"
        code = self.pins.check(block_from_request(pin), pan).response_code
        return None if code is None else code.decode("ascii")

    async def _reverse(self, auth_id: str, key: str, body: Json) -> tuple[int, Callable[[], Json]]:
        auth = self._auths.get(auth_id)
        if auth is None:
            raise _HttpError(404, "not_found")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise _HttpError(400, "invalid_request", "reason", "a string expected")
        if not auth.approved:
            raise _HttpError(409, "not_reversible", message="declined authorisations hold nothing")
        if not auth.reversed:
            auth.reversed = True
            self._reversals += 1
            self.ledger.append(
                LedgerEntry("reversal", auth_id, auth.amount, auth.currency, key, auth_id)
            )
            _log.info("reversal of %s (%s)", auth_id, reason or "no reason")
        return 200, auth.to_json

    async def _refund(self, key: str, body: Json) -> tuple[int, Callable[[], Json]]:
        auth_id = body.get("authorisation_id")
        amount = _int(body, "amount", 1, 999_999_999_999)
        currency = _int(body, "currency", 1, 999)
        auth = self._auths.get(auth_id) if isinstance(auth_id, str) else None
        if auth is None:
            raise _HttpError(404, "not_found", "authorisation_id")
        if not auth.approved or auth.reversed or currency != auth.currency:
            raise _HttpError(409, "not_refundable")
        if auth.refunded_amount + amount > auth.amount:
            raise _HttpError(409, "refund_exceeds_amount", "amount")
        auth.refunded_amount += amount
        self._refunds += 1
        refund_id = f"rfnd_{self._refunds:06d}"
        self.ledger.append(LedgerEntry("refund", refund_id, amount, currency, key, auth.id))
        payload: Json = {
            "id": refund_id, "authorisation_id": auth.id, "status": "refunded",
            "amount": amount, "currency": currency,
        }
        return 201, lambda: dict(payload)


def _int(body: Json, name: str, low: int, high: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _HttpError(400, "invalid_request", name, f"integer {low}..{high} expected")
    return value


def _hex_str(body: Json, name: str, size: int | None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) % 2:
        raise _HttpError(400, "invalid_request", name, "hexadecimal expected")
    if any(c not in _HEX for c in value) or (size is not None and len(value) != size):
        raise _HttpError(400, "invalid_request", name, "hexadecimal expected")
    return value


def _check_pin(pin: Any) -> None:
    if not isinstance(pin, dict):
        raise _HttpError(400, "invalid_request", "pin", "an object expected")
    if len(_hex_str(pin, "block", None)) not in (16, 32):
        raise _HttpError(400, "invalid_request", "pin.block", "8 or 16 bytes expected")
    _hex_str(pin, "ksn", None)
    if pin.get("format") not in (0, 4):
        raise _HttpError(400, "invalid_request", "pin.format", "0 or 4 expected")

