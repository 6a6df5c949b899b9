"""Robustness: whatever C-APDU arrives, a virtual card answers an R-APDU with a status word and
never an internal-error ``6F00`` (hypothesis-generated commands, after a valid start)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.card import VirtualCard

INS = [0xA4, 0xB2, 0xCA, 0xA8, 0x20, 0x84, 0x88, 0x82, 0xAE, 0x1E, 0x18, 0x16, 0x24, 0xDA,
       0xC0, 0x00]
CLA = [0x00, 0x80, 0x84, 0x04, 0xFF]

apdus = st.builds(
    lambda cla, ins, p1, p2, body: bytes((cla, ins, p1, p2)) + body,
    st.sampled_from(CLA), st.sampled_from(INS), st.integers(0, 255), st.integers(0, 255),
    st.one_of(st.just(b""), st.binary(min_size=1, max_size=1),
              st.binary(min_size=0, max_size=200).map(lambda d: bytes((len(d),)) + d + b"\x00"),
              st.binary(max_size=40)),
)
START = [
    "00A4040007A000000003101000", "80A8000013831100" + "00" * 16 + "00",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["visa_credit", "cda_card", "sda_legacy", "ctls_visa_offline_fdda",
                        "mastercard_debit"]),
       st.integers(0, 2), st.lists(apdus, min_size=1, max_size=6))
def test_random_commands_get_a_status_word_never_an_internal_error(name, start, commands):
    card = VirtualCard.from_profile(name, rng=lambda n: b"\x42" * n)
    for hexstr in START[:start]:
        card.process(bytes.fromhex(hexstr))
    for capdu in commands:
        rapdu = card.process(capdu)
        assert len(rapdu) >= 2
        assert rapdu[-2:] != b"\x6f\x00", capdu.hex()
