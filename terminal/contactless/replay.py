"""Replay a recorded contactless exchange through the Entry Point (``posgw-sim replay FILE``).

A transcript (``conformance/emv/contactless_traces/*.json``) holds ``randoms`` (the
unpredictable number), ``date`` (YYMMDD), ``time`` (HHMMSS), ``transaction-req`` (TLV: 9F02,
5F2A, 9C, optionally 9F03) and ``apdus``: the recorded ``{cmd, resp}`` pairs. The replay

* builds the environment and the request from the file (UN, date, time, amount, currency,
  type);
* takes the terminal data the recorded commands carry: the PDOL data of the recorded GPO and
  the CDOL1 data of the recorded GENERATE AC are split along the card's PDOL and CDOL1, and
  their terminal-sourced values (9F1A, 9F35, 9F33, 9F40, 9F66, 9F1C, 9F15, 9F16, 9F4E, 9F01,
  9F09) become the terminal configuration. The CVM capability kernel 2 wrote into 9F33 byte 2
  comes from the GENERATE AC data; a TVR whose "relay resistance performed" bits are ``00``
  for a card without RRP means the recording kernel predated RRP reporting (C-2 < v2.6); the
  recording kernels offered mag-stripe mode, so their Active AFL left out a first ``08010100``
  entry (C-2, S3.32) and the replay does the same;
* runs :func:`~terminal.contactless.run_contactless_transaction` on a :class:`ReplayChannel`.

What the recordings do not carry is fixed here and documented (:data:`REPLAY_AIDS`): per-AID
limits (Mastercard: floor 100.00, CVM limit 50.00; Visa: floor 50.00, CVM limit 50.00),
Mastercard application version ``0002`` and its default TACs.

The channel answers each command with the recorded response of the first unused recorded
command equal to it byte for byte (a *match*), else of the first unused recorded command with
the same CLA INS P1 P2 (answered, not counted as a match); any other command raises
:class:`ReplayError`. Mag-stripe mode is not supported: the ``mock-msc-ms-mode`` recording ends
with END APPLICATION (L2 "MAGSTRIPE NOT SUPPORTED") after GET PROCESSING OPTIONS, its READ
RECORD and COMPUTE CRYPTOGRAPHIC CHECKSUM left unconsumed.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from terminal import tlv
from terminal.config import TerminalConfig
from terminal.contactless.entry_point import run_contactless_transaction
from terminal.contactless.preprocessing import Kernel2Settings
from terminal.contactless.result import ContactlessResult, ReplayStats
from terminal.dol import parse_dol
from terminal.environment import Environment, TransactionRequest, TransactionType
from terminal.errors import EmvError, TransportError
from terminal.masking import mask_apdu_hex

__all__ = [
    "REPLAY_AIDS",
    "ReplayChannel",
    "ReplayError",
    "ReplaySetup",
    "load_transcript",
    "replay_setup",
    "replay_transcript",
    "replay_transcript_async",
]

#: The applications of the replay terminal (what the recordings do not carry).
REPLAY_AIDS: list[dict[str, Any]] = [
    {
        "aid": "A0000000041010",
        "kernel_id": 2,
        "application_version": "0002",
        "tac_denial": "0000000000",
        "tac_online": "F45084800C",
        "tac_default": "F45084800C",
        "reader_ctls_transaction_limit": 1_000_000,
        "reader_ctls_floor_limit": 10_000,
        "reader_cvm_required_limit": 5_000,
        "cdcvm_supported": True,
    },
    {
        "aid": "A0000000043060",
        "kernel_id": 2,
        "application_version": "0002",
        "tac_denial": "0000000000",
        "tac_online": "F45084800C",
        "tac_default": "F45084800C",
        "reader_ctls_transaction_limit": 1_000_000,
        "reader_ctls_floor_limit": 10_000,
        "reader_cvm_required_limit": 5_000,
    },
    {
        "aid": "A0000000031010",
        "kernel_id": 3,
        "ttq": "36004000",
        "reader_ctls_transaction_limit": 1_000_000,
        "reader_ctls_floor_limit": 5_000,
        "reader_cvm_required_limit": 5_000,
    },
]

_CONFIG_TAGS = {
    0x9F1A,
    0x9F35,
    0x9F33,
    0x9F40,
    0x9F66,
    0x9F1C,
    0x9F15,
    0x9F16,
    0x9F4E,
    0x9F01,
    0x9F09,
    0x95,
}


class ReplayError(TransportError):
    """The kernel sent a command the recording does not have."""


class ReplayChannel:
    """A card channel answering from a recording (see the module docstring).

    Args:
        apdus: The recorded (command, response) pairs, in order.
    """

    def __init__(self, apdus: list[tuple[bytes, bytes]]) -> None:
        self._apdus = apdus
        self._used = [False] * len(apdus)
        self.sent = 0
        self.matched = 0

    async def transceive(self, capdu: bytes) -> bytes:
        """Answer ``capdu`` with the recorded response (see the module docstring).

        Raises:
            ReplayError: when no unused recorded command has the same header.
        """
        self.sent += 1
        for exact in (True, False):
            for i, (cmd, resp) in enumerate(self._apdus):
                if self._used[i]:
                    continue
                if (cmd == capdu) if exact else (cmd[:4] == capdu[:4]):
                    self._used[i] = True
                    self.matched += exact
                    return resp
        raise ReplayError(
            f"command {self.sent} ({mask_apdu_hex(capdu[:4])}...) is not in the recording"
        )

    def stats(self) -> ReplayStats:
        """How the exchange matched the recording."""
        return ReplayStats(self.sent, len(self._apdus), self.matched, self._used.count(False))


class ReplaySetup:
    """Everything a replay needs, built from a transcript by :func:`replay_setup`."""

    def __init__(
        self,
        config: TerminalConfig,
        request: TransactionRequest,
        env: Environment,
        kernel2: Kernel2Settings,
        apdus: list[tuple[bytes, bytes]],
    ) -> None:
        self.config = config
        self.request = request
        self.env = env
        self.kernel2 = kernel2
        self.apdus = apdus


def load_transcript(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Load a transcript from a path or take a decoded one."""
    if isinstance(source, Mapping):
        return dict(source)
    document = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise EmvError("transcript is not a JSON object")
    return document


def _bcd_int(value: bytes) -> int:
    return int(value.hex()) if value.hex().isdigit() else 0


def _recorded_terminal_data(
    apdus: list[tuple[bytes, bytes]],
) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """Terminal values in the recorded GPO (PDOL data) and GENERATE AC (CDOL1 data)."""
    pdol: bytes | None = None
    cdol1: bytes | None = None
    from_pdol: dict[int, bytes] = {}
    from_cdol: dict[int, bytes] = {}
    for cmd, resp in apdus:
        ins = cmd[1] if len(cmd) > 1 else -1
        data = cmd[5 : 5 + cmd[4]] if len(cmd) > 5 else b""
        try:
            objects = tlv.decode(resp[:-2])
        except EmvError:
            objects = []
        found = tlv.flatten(objects)
        if ins == 0xA4 and 0x9F38 in found:
            pdol = found[0x9F38]
        if 0x8C in found and cdol1 is None:
            cdol1 = found[0x8C]
        if ins == 0xA8 and pdol is not None and data[:1] == b"\x83":
            _split(parse_dol(pdol), data[2:], from_pdol)
        if ins == 0xAE and cdol1 is not None and not from_cdol:
            _split(parse_dol(cdol1), data, from_cdol)
    return from_pdol, from_cdol


def _split(entries: list[tuple[int, int]], data: bytes, into: dict[int, bytes]) -> None:
    pos = 0
    for tag, length in entries:
        if tag in _CONFIG_TAGS and pos + length <= len(data):
            into.setdefault(tag, data[pos : pos + length])
        pos += length


def replay_setup(transcript: Mapping[str, Any]) -> ReplaySetup:
    """Build the configuration, request, environment and recording of a transcript.

    Raises:
        EmvError: when the transcript is malformed.
    """
    try:
        apdus = [(bytes.fromhex(a["cmd"]), bytes.fromhex(a["resp"])) for a in transcript["apdus"]]
        un = bytes.fromhex(transcript["randoms"])
        date, clock = transcript["date"], transcript.get("time", "000000")
        when = datetime.datetime(
            2000 + int(date[:2]),
            int(date[2:4]),
            int(date[4:6]),
            int(clock[:2]),
            int(clock[2:4]),
            int(clock[4:6]),
        )
        req = tlv.flatten(tlv.decode(bytes.fromhex(transcript["transaction-req"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise EmvError(f"malformed transcript ({type(exc).__name__})") from exc
    amount = _bcd_int(req.get(0x9F02, b""))
    request = TransactionRequest(
        amount=amount,
        amount_other=min(amount, _bcd_int(req.get(0x9F03, b""))),
        currency_code=_bcd_int(req.get(0x5F2A, b"\x09\x78")),
        transaction_type=TransactionType(req.get(0x9C, b"\x00")[0]),
    )
    from_pdol, from_cdol = _recorded_terminal_data(apdus)
    recorded = {**from_cdol, **from_pdol}
    fields: dict[str, Any] = {}
    if 0x9F1A in recorded:
        fields["terminal_country_code"] = _bcd_int(recorded[0x9F1A])
    for tag, name in (
        (0x9F35, "terminal_type"),
        (0x9F33, "terminal_capabilities"),
        (0x9F40, "additional_terminal_capabilities"),
    ):
        if tag in recorded:
            fields[name] = recorded[tag].hex().upper()
    aids = [dict(a) for a in REPLAY_AIDS]
    if 0x9F66 in recorded:
        ttq = bytearray(recorded[0x9F66])
        ttq[1] &= 0x3F
        for aid in aids:
            if aid["kernel_id"] == 3:
                aid["ttq"] = ttq.hex().upper()
    config = TerminalConfig.model_validate({**fields, "aids": aids})
    # The recording kernels offered mag-stripe mode: their Active AFL leaves out a first
    # 08010100 entry (Book C-2, S3.32), as the recordings show.
    settings = Kernel2Settings(magstripe_mode_supported=True)
    caps = from_cdol.get(0x9F33)
    if caps is not None and len(caps) == 3:
        above = amount > 5_000
        settings = replace(
            settings,
            cvm_capability_cvm_required=caps[1] if above else 0x60,
            cvm_capability_no_cvm_required=0x08 if above else caps[1],
        )
    tvr = from_cdol.get(0x95)
    if tvr is not None and len(tvr) == 5 and tvr[4] & 0x03 == 0:
        settings = replace(settings, rrp_supported=False, rrp_reported_in_tvr=False)
    return ReplaySetup(config, request, Environment.fixed(when, un), settings, apdus)


async def replay_transcript_async(source: str | Path | Mapping[str, Any]) -> ContactlessResult:
    """Replay a transcript (see :func:`replay_transcript`) in a running event loop."""
    document = source if isinstance(source, Mapping) else await asyncio.to_thread(
        load_transcript, source)
    setup = replay_setup(load_transcript(document))
    channel = ReplayChannel(setup.apdus)
    result = await run_contactless_transaction(
        channel, config=setup.config, request=setup.request, env=setup.env, kernel2=setup.kernel2
    )
    result.replay = channel.stats()
    return result


def replay_transcript(source: str | Path | Mapping[str, Any]) -> ContactlessResult:
    """Replay a recorded contactless transaction through the Entry Point.

    Args:
        source: A transcript path or its decoded JSON.

    Returns:
        The result, with :attr:`~ContactlessResult.replay` statistics (commands sent,
        recorded, matched byte for byte, left unconsumed).

    Raises:
        ReplayError: when the kernel sends a command the recording does not have.
        EmvError: on a malformed transcript.
    """
    return asyncio.run(replay_transcript_async(source))
