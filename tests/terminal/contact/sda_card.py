"""The synthetic SDA card of oda_vectors.json (javaemvreader) as an annotated transcript.

The vector gives the FCI, the GPO response and the five records; the CA key is the mock
``A123456789/07``. The transcript below is what an EMV 4.4 kernel must send for a purchase of
100.00 EUR on 2011-06-01 with UN 11223344 (config: that AID only, exact match, floor limit
50.00), with the card's other answers (PIN try counter, VERIFY, GENERATE AC, EXTERNAL
AUTHENTICATE) written here. Nothing of the vector is copied into the repository: it is read
from tests/data/conformance at test time.

Note: this mock card's issuer certificate binds issuer identifier 492564 while its PAN starts
541111, so SDA fails at Book 2, 5.3 step 8: TVR byte 1 = 42 (SDA selected, SDA failed).
"""

from __future__ import annotations

from typing import Any

from terminal.capk import CapkStore, CaPublicKey
from terminal.config import AidConfig, TerminalConfig
from tests.conftest import load_conformance
from tests.terminal.contact.replay import Step, h, steps

AID = "A1234567891010"
SELECT_PSE = "00A404000E315041592E5359532E444446303100"
SELECT_AID = "00A4040007A123456789101000"
ARQC_RESPONSE = "771E 9F2701 80 9F3602 0001 9F2608 0102030405060708 9F1007 06010A03A00000"
TC_RESPONSE = "771E 9F2701 40 9F3602 0001 9F2608 1112131415161718 9F1007 06010A03600000"
AAC_RESPONSE = "771E 9F2701 00 9F3602 0001 9F2608 2122232425262728 9F1007 06010A03200000"
ARPC = "0102030405060708 3030"


def vector() -> dict[str, Any]:
    """The javaemvreader vector (skips the test where the conformance data is absent)."""
    vectors = load_conformance("emv", "oda_vectors.json")
    return next(v for v in vectors if v["id"] == "javaemvreader_sda_emulated_card")


def capk_store() -> CapkStore:
    capk = vector()["capk"]
    key = CaPublicKey(
        h(capk["rid"]),
        int(capk["index"], 16),
        h(capk["modulus"]),
        h(capk["exponent"]),
        h(capk["sha1"]),
    )
    return CapkStore([key])


def config(**aid_fields: Any) -> TerminalConfig:
    fields: dict[str, Any] = {
        "aid": AID,
        "partial_selection": False,
        "application_version": "008C",  # the mock card's 9F08 (VIS 1.4.0)
        "floor_limit": 5000,
        "tac_denial": "0010000000",
        "tac_online": "DC4004F800",
        "tac_default": "DC4000A800",
    }
    fields.update(aid_fields)
    return TerminalConfig.default().model_copy(update={"aids": [AidConfig(**fields)]})


def cdol_data(
    tvr: str, amount: str = "000000010000", other: str = "000000000000", kind: str = "00"
) -> str:
    """CDOL1 data: 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37."""
    return f"{amount}{other}0250{tvr}0978110601{kind}11223344"


def reading() -> list[Step]:
    """Selection, GPO and the five READ RECORDs (vector data)."""
    inputs = vector()["inputs"]
    records = inputs["records"]
    fci = inputs["fci"] + "9000"
    return steps(
        (SELECT_PSE, "6A82", "SELECT PSE: not found -> list of AIDs (Book 1, 12.3.2)"),
        (SELECT_AID, fci, "SELECT AID: exact match -> candidate (Book 1, 12.3.3)"),
        (SELECT_AID, fci, "final SELECT (Book 1, 12.4)"),
        (
            "80A8000006 8304 0250 0978 00",
            inputs["gpo_response"] + "9000",
            "GPO with PDOL 9F1A 5F2A; format 1, AIP 5C00 (Book 3, 10.1)",
        ),
        *[
            (f"00B2{n:02X}0C00", records[f"sfi1_rec{n}"] + "9000", f"READ RECORD SFI 1 rec {n}")
            for n in range(1, 6)
        ],
    )


def pin() -> list[Step]:
    """CVM list rule 2: plaintext PIN if the terminal supports it (Book 3, 10.5.1)."""
    return steps(
        ("80CA9F1700", "9F1701039000", "GET DATA PIN try counter: 3"),
        ("0020008008 241234FFFFFFFFFF", "9000", "VERIFY plaintext PIN block (Book 3, 6.5.12)"),
    )


def online_approved(tvr: str = "4200008000") -> list[Step]:
    """ARQC, issuer approves with ARPC, EXTERNAL AUTHENTICATE, TC."""
    data = cdol_data(tvr)
    return steps(
        (f"80AE8000 1D {data} 00", ARQC_RESPONSE + "9000", "GENERATE AC 1: ARQC (Book 3, 10.8)"),
        (f"008200000A {ARPC}", "9000", "EXTERNAL AUTHENTICATE (Book 3, 10.9)"),
        (f"80AE4000 1F 3030 {data} 00", TC_RESPONSE + "9000", "GENERATE AC 2: TC"),
    )
