"""Contact transaction recordings: ``posgw-sim pay --record FILE`` writes one, ``replay`` runs it.

The file has the shape of the contactless transcripts of ``conformance/emv/contactless_traces``
(``randoms``, ``date``, ``time``, ``transaction-req``, ``apdus: [{cmd, resp}]``) plus:

* ``"interface": "contact"``, which is how ``replay`` tells the two kinds apart;
* ``"random-draw"``: the random transaction selection draw (Book 3, 10.6.2) of the recording;
* ``"issuer-response"``: the issuer's answer as TLV (8A, 91, 71/72), or ``null`` when the host
  could not be reached, so the replay takes the same online path without an issuer.

Card data: the data field of VERIFY (a PIN block, or enciphered PIN data) is never written; it is
replaced by ``FF`` bytes of the same length, and the replay's PIN pad sends the recorded command
back. Only virtual cards may be recorded (their PANs are test data): a recording of a real card
would hold its PAN in clear, so ``pay --reader`` refuses ``--record``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from terminal import (
    EmvError,
    Environment,
    OnlineAuthoriser,
    OnlinePinBlock,
    OnlineRequest,
    OnlineResponse,
    PinEntry,
    TerminalConfig,
    TransactionRequest,
    TransactionResult,
    TransactionType,
    decode,
    encode,
    flatten,
    run_contact_transaction,
)
from terminal.contactless.replay import ReplayChannel
from terminal.pinpad import entry_from_status_word

__all__ = ["ContactReplay", "Recorder", "RecordingError", "is_contact_recording", "replay_contact"]

VERIFY_INS = 0x20


class RecordingError(EmvError):
    """A recording that cannot be written or replayed (what and where, no card data)."""


class Recorder:
    """Wraps a card channel and an authoriser, keeping what a replay needs.

    Args:
        channel: The card channel to record.
        online: The online authoriser to record.
        env: The (fixed) environment of the transaction.
        request: The transaction request.
    """

    def __init__(
        self, channel: Any, online: OnlineAuthoriser, env: Environment, request: TransactionRequest
    ) -> None:
        self._channel = channel
        self._online = online
        self.env = env
        self.request = request
        self.apdus: list[dict[str, str]] = []
        self.issuer_response: bytes | None = None

    async def transceive(self, capdu: bytes) -> bytes:
        """Exchange through the wrapped channel and keep the pair (VERIFY data redacted)."""
        rapdu = bytes(await self._channel.transceive(capdu))
        self.apdus.append({"cmd": redact_verify(capdu).hex().upper(), "resp": rapdu.hex().upper()})
        return rapdu

    async def authorise(self, request: OnlineRequest) -> OnlineResponse | None:
        """Forward to the wrapped authoriser and keep its answer as TLV."""
        answer = await self._online(request)
        if answer is not None:
            out = encode(0x8A, answer.authorisation_response_code)
            if answer.issuer_authentication_data:
                out += encode(0x91, answer.issuer_authentication_data)
            self.issuer_response = out + (answer.scripts or b"")
        return answer

    def document(self) -> dict[str, Any]:
        """The recording as JSON-ready data."""
        when = self.env.clock()
        req = self.request
        txn = (
            encode(0x9F02, _bcd(req.amount, 6))
            + encode(0x5F2A, _bcd(req.currency_code, 2))
            + encode(0x9C, _bcd(int(req.transaction_type), 1))
        )
        if req.amount_other:
            txn += encode(0x9F03, _bcd(req.amount_other, 6))
        return {
            "interface": "contact",
            "randoms": self.env.unpredictable_number().hex().upper(),
            "date": when.strftime("%y%m%d"),
            "time": when.strftime("%H%M%S"),
            "random-draw": self.env.random_percent(),
            "transaction-req": txn.hex().upper(),
            "issuer-response": None
            if self.issuer_response is None
            else self.issuer_response.hex().upper(),
            "apdus": self.apdus,
        }

    def write(self, path: Path) -> None:
        """Write the recording as JSON."""
        path.write_text(json.dumps(self.document(), indent=1) + "\n")


def redact_verify(capdu: bytes) -> bytes:
    """The C-APDU with a VERIFY data field replaced by FF bytes (header, Lc kept)."""
    if len(capdu) > 5 and capdu[1] == VERIFY_INS:
        lc = capdu[4]
        return capdu[:5] + b"\xff" * lc + capdu[5 + lc :]
    return capdu


def is_contact_recording(document: Mapping[str, Any]) -> bool:
    """True for a recording written by ``pay --record`` (``"interface": "contact"``)."""
    return document.get("interface") == "contact"


class _ReplayPinPad:
    """Sends the recorded (redacted) VERIFY commands back in order; never sees a PIN."""

    def __init__(self, apdus: list[tuple[bytes, bytes]]) -> None:
        self._verifies = [cmd for cmd, _ in apdus if len(cmd) > 1 and cmd[1] == VERIFY_INS]

    async def verify_offline(self, send: Callable[[bytes], Awaitable[bytes]], **_: Any) -> PinEntry:
        if not self._verifies:
            raise RecordingError("the kernel asked for an offline PIN the recording does not have")
        rapdu = await send(self._verifies.pop(0))
        return entry_from_status_word(int.from_bytes(rapdu[-2:], "big"))

    async def online_pin(self, **_: Any) -> OnlinePinBlock | PinEntry:
        # The block went to the acquirer, not the card: nothing of it is in the recording.
        return OnlinePinBlock(bytes(8), bytes(10), 0)


class ContactReplay:
    """A contact recording prepared for the kernel."""

    def __init__(self, document: Mapping[str, Any], config: TerminalConfig) -> None:
        try:
            when = datetime.datetime.strptime(document["date"] + document["time"], "%y%m%d%H%M%S")
            un = bytes.fromhex(document["randoms"])
            txn = flatten(decode(bytes.fromhex(document["transaction-req"])))
            self.apdus = [
                (bytes.fromhex(a["cmd"]), bytes.fromhex(a["resp"])) for a in document["apdus"]
            ]
            issuer = document.get("issuer-response")
            self.issuer = None if issuer is None else flatten(decode(bytes.fromhex(issuer)))
            self.issuer_raw = None if issuer is None else bytes.fromhex(issuer)
            self.env = Environment.fixed(when, un, int(document.get("random-draw", 99)))
            self.request = TransactionRequest(
                amount=int(txn[0x9F02].hex()),
                amount_other=int(txn.get(0x9F03, b"\x00").hex()),
                currency_code=int(txn[0x5F2A].hex()),
                transaction_type=TransactionType(int(txn.get(0x9C, b"\x00").hex())),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RecordingError(
                f"malformed contact recording: {type(exc).__name__} {exc}"
            ) from exc
        self.config = config

    async def _online(self, request: OnlineRequest) -> OnlineResponse | None:
        if self.issuer is None or self.issuer_raw is None:
            return None
        arc = self.issuer.get(0x8A, b"05")
        scripts = b"".join(
            encode(obj.tag, obj.value) for obj in decode(self.issuer_raw) if obj.tag in (0x71, 0x72)
        )
        return OnlineResponse(
            approved=arc == b"00",
            authorisation_response_code=arc,
            issuer_authentication_data=self.issuer.get(0x91),
            scripts=scripts or None,
        )

    async def run(self) -> tuple[TransactionResult, ReplayChannel]:
        """Run the kernel against the recording."""
        channel = ReplayChannel(self.apdus)
        result = await run_contact_transaction(
            channel, config=self.config, request=self.request, env=self.env,
            online=self._online, pinpad=_ReplayPinPad(self.apdus),
        )  # fmt: skip
        return result, channel


async def replay_contact(document: Mapping[str, Any], config: TerminalConfig) -> dict[str, Any]:
    """Replay a contact recording; the summary ``posgw-sim replay`` prints."""
    result, channel = await ContactReplay(document, config).run()
    stats = channel.stats()
    return {
        "outcome": str(result.decision).upper(),
        "kernel": "contact",
        "aid": result.aid,
        "label": result.label,
        "masked_pan": result.masked_pan,
        "oda_method": result.oda_method,
        "oda_verified": result.oda_verified,
        "cid": result.cid.hex().upper() if result.cid else None,
        "tvr": result.tvr.hex().upper(),
        "commands_sent": stats.sent,
        "commands_recorded": stats.recorded,
        "commands_matching": stats.matched,
        "commands_unconsumed": stats.unconsumed,
        "_trace": result.trace,
    }


def _bcd(value: int, size: int) -> bytes:
    return bytes.fromhex(f"{value:0{size * 2}d}")
