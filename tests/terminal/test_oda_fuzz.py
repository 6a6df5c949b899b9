"""Property tests: random certificates and signatures give typed results, never exceptions."""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.keys import emv_sign, load_pki
from terminal.errors import CardDataError
from terminal.oda import (
    IccDynamicData,
    IccPublicKey,
    IssuerPublicKey,
    OdaFailure,
    SdaResult,
    StaticDataCollector,
    recover_icc_key,
    recover_issuer_key,
    recover_pin_key,
    verify_cda,
    verify_cda_response,
    verify_dda,
    verify_fdda,
    verify_ssad,
)

PKI = load_pki()
CA = PKI.cas[(bytes.fromhex("A000000003"), 0xF0)]
ISSUER = PKI.issuers["visa"].key
ICC = PKI.icc_keys[0]
TODAY = datetime.date(2026, 1, 15)
FUZZ = settings(max_examples=150, deadline=None)

small = st.binary(max_size=8)
pans = st.binary(min_size=0, max_size=10)
dates = st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2060, 12, 31))


def _every_oda_call(cert: bytes, extra: bytes, pan: bytes, today: datetime.date) -> list[object]:
    issuer = ISSUER.public()
    icc = ICC.public()
    return [
        recover_issuer_key(CA, cert, extra, b"\x03", pan, today),
        recover_icc_key(issuer, cert, extra, b"\x03", pan, extra, today),
        recover_pin_key(issuer, cert, extra, b"\x01\x00\x01", pan, today),
        verify_ssad(issuer, cert, extra),
        verify_dda(icc, cert, extra),
        verify_fdda(icc, cert, unpredictable_number=extra[:4], amount_authorised=bytes(6),
                    currency_code=b"\x09\x78", card_auth_data=b"\x01" + extra),
        verify_cda(icc, cert, unpredictable_number=extra[:4], cid=extra[:1] or None,
                   transaction_data=extra),
        verify_cda_response(icc, cert, unpredictable_number=extra[:4], pdol_data=b"",
                            cdol1_data=extra),
    ]


_OK_TYPES = (OdaFailure, IssuerPublicKey, IccPublicKey, SdaResult, IccDynamicData)


@FUZZ
@given(cert=st.binary(max_size=200), extra=small, pan=pans, today=dates)
def test_random_bytes_give_failures(cert: bytes, extra: bytes, pan: bytes,
                                    today: datetime.date) -> None:
    for result in _every_oda_call(cert, extra, pan, today):
        assert isinstance(result, OdaFailure), result


@FUZZ
@given(data=st.data(), extra=small, pan=pans, today=dates)
def test_validly_signed_random_content_gives_typed_results(data: st.DataObject, extra: bytes,
                                                           pan: bytes,
                                                           today: datetime.date) -> None:
    # Properly signed blocks (envelope and hash right) whose fields are random: this reaches
    # every check after the hash (format, identifier, dates, lengths, dynamic data layout).
    fmt = data.draw(st.sampled_from([0x02, 0x03, 0x04, 0x05, 0x00]))
    for signer in (CA.key, ISSUER, ICC):
        body = bytes((fmt,)) + data.draw(st.binary(min_size=signer.size - 23,
                                                   max_size=signer.size - 23))
        for hashed in (b"", extra, extra + b"\x03", b"\x03"):
            sig = emv_sign(signer, body, hashed)
            for result in _every_oda_call(sig, extra, pan, today):
                assert isinstance(result, _OK_TYPES), result


@FUZZ
@given(afl=st.binary(max_size=16),
       records=st.lists(st.tuples(st.integers(0, 31), st.integers(0, 255), st.binary(max_size=40)),
                        max_size=6),
       tag_list=st.one_of(st.none(), st.binary(max_size=3)))
def test_static_data_collector_never_raises_but_card_data_error(
    afl: bytes, records: list[tuple[int, int, bytes]], tag_list: bytes | None
) -> None:
    try:
        collector = StaticDataCollector(afl)
    except CardDataError:
        return
    for sfi, number, record in records:
        collector.add_record(sfi, number, record)
    out = collector.finish(tag_list, {0x82: b"\x39\x00"})
    assert isinstance(out, bytes | OdaFailure)
