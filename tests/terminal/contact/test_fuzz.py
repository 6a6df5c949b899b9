"""Bad card data ends in a typed error or a defined outcome, never an unhandled exception.

Base: the synthetic SDA card of oda_vectors.json answering by command header (so a kernel that
takes another path still gets answers). Hypothesis then replaces one response's data field
with random bytes or random TLV, or mutates one record, and runs the whole transaction.
About 6,000 examples in total.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.contact.flow import OnlineResponse, run_contact_transaction
from terminal.environment import TransactionRequest
from terminal.errors import EmvError
from terminal.result import Decision, TransactionResult
from terminal.tlv import encode
from tests.terminal.contact import sda_card
from tests.terminal.contact.replay import Authoriser, HeaderCard, TestPinPad, env, h

SETTINGS = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


@cache
def _inputs() -> dict[str, Any]:
    return sda_card.vector()["inputs"]


def base_table() -> dict[bytes, bytes]:
    inputs = _inputs()
    table = {
        h("00A40400") + h(sda_card.AID): h(inputs["fci"]),
        h("80A80000"): h(inputs["gpo_response"]),
        h("80CA9F17"): h("9F170103"),
        h("00200080"): b"",
        h("80AE8000"): h(sda_card.ARQC_RESPONSE),
        h("80AE4000"): h(sda_card.TC_RESPONSE),
        h("80AE0000"): h(sda_card.AAC_RESPONSE),
        h("00820000"): b"",
    }
    for n in range(1, 6):
        table[bytes((0x00, 0xB2, n, 0x0C))] = h(inputs["records"][f"sfi1_rec{n}"])
    return {key: value + h("9000") for key, value in table.items()}


async def _run(table: dict[bytes, bytes]) -> TransactionResult:
    answer = OnlineResponse(
        approved=True,
        issuer_authentication_data=h(sda_card.ARPC),
        scripts=encode(0x71, encode(0x86, h("8418000000"))),
    )
    return await run_contact_transaction(
        HeaderCard(table),
        config=sda_card.config(),
        request=TransactionRequest(amount=10000),
        env=env(),
        online=Authoriser(answer),
        pinpad=TestPinPad(),
        capk=sda_card.capk_store(),
    )


def check(table: dict[bytes, bytes]) -> None:
    try:
        result = asyncio.run(_run(table))
    except EmvError:
        return  # a typed error (e.g. a malformed DOL in the FCI)
    assert isinstance(result.decision, Decision)
    json.dumps(result.to_json())
    assert "5411118888888882" not in json.dumps(result.to_json())


tlv_object = st.recursive(
    st.tuples(
        st.sampled_from(
            [
                0x5A,
                0x5F24,
                0x8C,
                0x8D,
                0x8E,
                0x94,
                0x82,
                0x9F27,
                0x9F36,
                0x9F26,
                0x9F10,
                0x9F4B,
                0x9F17,
                0x84,
                0x50,
                0x87,
                0x9F38,
                0x57,
                0x9F4A,
            ]
        ),
        st.binary(max_size=40),
    ).map(lambda tv: encode(*tv)),
    lambda inner: st.tuples(
        st.sampled_from([0x70, 0x77, 0x80, 0x6F, 0xA5, 0x61]), st.lists(inner, max_size=5)
    ).map(lambda tv: encode(tv[0], b"".join(tv[1]))),
    max_leaves=8,
)


@SETTINGS
@given(which=st.integers(0, 100), data=st.binary(max_size=300))
def test_random_response_data_field(which: int, data: bytes) -> None:
    table = base_table()
    key = sorted(table)[which % len(table)]
    table[key] = data + table[key][-2:]
    check(table)


@SETTINGS
@given(which=st.integers(0, 100), data=tlv_object)
def test_random_tlv_response(which: int, data: bytes) -> None:
    table = base_table()
    key = sorted(table)[which % len(table)]
    table[key] = data + h("9000")
    check(table)


@SETTINGS
@given(
    record=st.integers(1, 5),
    position=st.integers(0, 400),
    mutation=st.sampled_from(["flip", "insert", "delete", "truncate"]),
    value=st.integers(0, 255),
)
def test_mutated_record(record: int, position: int, mutation: str, value: int) -> None:
    table = base_table()
    key = bytes((0x00, 0xB2, record, 0x0C))
    body = bytearray(table[key][:-2])
    at = position % max(1, len(body))
    if mutation == "flip":
        body[at] ^= value or 1
    elif mutation == "insert":
        body.insert(at, value)
    elif mutation == "delete":
        del body[at]
    else:
        del body[at:]
    table[key] = bytes(body) + h("9000")
    check(table)


@SETTINGS
@given(
    which=st.integers(0, 100),
    sw=st.sampled_from(
        ["6A82", "6985", "6283", "6A81", "6300", "63C0", "6983", "6D00", "9001", "6F00"]
    ),
)
def test_random_status_word(which: int, sw: str) -> None:
    table = base_table()
    key = sorted(table)[which % len(table)]
    table[key] = table[key][:-2] + h(sw)
    check(table)
