"""A small in-test EMV card with real ODA keys (the simulator's test PKI), for kernel tests.

It answers the commands of EMV 4.4 Book 3, 6.5 from a handful of settings, with real SDA/DDA/
CDA signatures and offline PIN checks (plaintext and enciphered), so that the kernel's ODA,
CVM and completion paths can be run end to end. The cryptogram is a stand-in (SHA-1 of the
CDOL data): the kernel does not check it; the acquirer side is the simulator's business.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache

from simulator.keys import (
    RsaKeyPair,
    TestPki,
    icc_certificate,
    load_pki,
    pin_certificate,
    sign_cda,
    sign_dda,
    sign_static_data,
)
from terminal.capk import CapkStore
from terminal.oda.cda import cda_transaction_data
from terminal.tlv import decode, encode, encode_tlvs

PAN = "4761739001010010"
AID = bytes.fromhex("A0000000031010")
CDOL1 = "9F02069F03069F1A0295055F2A029A039C019F3704"
CDOL2 = "8A02" + CDOL1


@cache
def pki() -> TestPki:
    return load_pki()


def capk() -> CapkStore:
    store = CapkStore()
    store.load_file(pki().capk_file)
    return store


@dataclass
class ModelCard:
    """Settings of the card; see the module docstring."""

    __test__ = False
    aip: bytes = bytes.fromhex("3D00")  # SDA DDA CV TRM IA... overwritten per method below
    oda: str = "CDA"  # "SDA" | "DDA" | "CDA" | ""
    pin: str = "1234"
    pin_tries: int = 3
    cvm_list: bytes = bytes.fromhex("00000000 00000000 4103 4203 1E03 1F00".replace(" ", ""))
    extra: dict[int, bytes] = field(default_factory=dict)
    issuer: str = "visa"
    atc: int = 5
    last_online_atc: int = 3
    answer_ac: int | None = None  # force the first cryptogram type (0x00/0x40/0x80)
    answer_ac2: int | None = None  # force the second one
    external_auth_sw: bytes = bytes.fromhex("9000")
    script_sw: bytes = bytes.fromhex("9000")
    pin_key: bool = False
    corrupt_cda: bool = False
    pdol: bytes | None = None
    log: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        bits = {"SDA": 0x40, "DDA": 0x20, "CDA": 0x01, "": 0x00}[self.oda]
        self.aip = bytes((bits | 0x10 | 0x08 | 0x04, 0x00))
        self.issuer_obj = pki().issuers[self.issuer]
        self.icc: RsaKeyPair = pki().icc_keys[0]
        self.pin_pair: RsaKeyPair = pki().pin_keys[0]
        self._pdol_data = b""
        self._cdol1 = b""
        self._challenge: bytes | None = None  # valid for the next enciphered VERIFY only
        self.challenges = 0
        self._build()

    def _build(self) -> None:
        oda_record = {
            0x5A: bytes.fromhex(PAN),
            0x5F24: bytes.fromhex("301231"),
            0x5F25: bytes.fromhex("100101"),
            0x5F28: bytes.fromhex("0250"),
            0x5F34: b"\x01",
            0x9F07: bytes.fromhex("FF00"),
            0x9F08: bytes.fromhex("0096"),
            0x8C: bytes.fromhex(CDOL1),
            0x8D: bytes.fromhex(CDOL2),
            0x8E: self.cvm_list,
            0x9F0D: bytes.fromhex("0000000000"),
            0x9F0E: bytes.fromhex("0000000000"),
            0x9F0F: bytes.fromhex("0000000000"),
            0x9F42: bytes.fromhex("0978"),
            0x9F4A: b"\x82",
            0x9F49: bytes.fromhex("9F3704"),
            0x9F14: b"\x05",
            0x9F23: b"\x0a",
        }
        oda_record.update(self.extra)
        oda_value = encode_tlvs((t, v) for t, v in oda_record.items() if v is not None)
        static = oda_value + self.aip
        cert = self.issuer_obj.certificate
        keys = {
            0x8F: bytes((self.issuer_obj.ca.index,)),
            0x90: cert.certificate,
            0x92: cert.remainder,
            0x9F32: cert.exponent,
        }
        if self.oda == "SDA":
            keys[0x93] = sign_static_data(self.issuer_obj.key, b"\xda\xc0", static)
        if self.oda in ("DDA", "CDA") or self.pin_key is False:
            icc_cert = icc_certificate(
                self.issuer_obj.key,
                self.icc.public(),
                PAN,
                bytes.fromhex("1230"),
                b"\x00\x00\x01",
                static,
            )
            keys[0x9F46] = icc_cert.certificate
            if icc_cert.remainder:
                keys[0x9F48] = icc_cert.remainder
            keys[0x9F47] = icc_cert.exponent
        if self.pin_key:
            pin_cert = pin_certificate(
                self.issuer_obj.key,
                self.pin_pair.public(),
                PAN,
                bytes.fromhex("1230"),
                b"\x00\x00\x02",
            )
            keys[0x9F2D] = pin_cert.certificate
            if pin_cert.remainder:
                keys[0x9F2F] = pin_cert.remainder
            keys[0x9F2E] = pin_cert.exponent
        self.records = {
            (1, 1): encode(
                0x70,
                encode(0x57, bytes.fromhex(PAN + "D3012201000000000F"))
                + encode(0x5F20, b"TEST/CARDHOLDER"),
            ),
            (2, 1): encode(0x70, oda_value),
        }
        key_tlvs = list(keys.items())
        self.records[(3, 1)] = encode(0x70, encode_tlvs(key_tlvs[:4]))
        self.records[(3, 2)] = encode(0x70, encode_tlvs(key_tlvs[4:]))
        self.afl = bytes.fromhex("08010100 10010101 18010200".replace(" ", ""))

    def fci(self) -> bytes:
        prop = encode(0x50, b"VISA TEST") + encode(0x87, b"\x01")
        if self.pdol is not None:
            prop += encode(0x9F38, self.pdol)
        return encode(0x6F, encode(0x84, AID) + encode(0xA5, prop))

    async def transceive(self, capdu: bytes) -> bytes:
        self.log.append(bytes(capdu))
        return self.process(capdu)

    def process(self, c: bytes) -> bytes:
        ins, p1, p2 = c[1], c[2], c[3]
        data = c[5 : 5 + c[4]] if len(c) > 5 else b""
        ok = b"\x90\x00"
        if ins == 0xA4:
            return self.fci() + ok if data == AID else bytes.fromhex("6A82")
        if ins == 0xA8:
            self._pdol_data = data[2:]
            self.atc += 1
            return encode(0x77, encode(0x82, self.aip) + encode(0x94, self.afl)) + ok
        if ins == 0xB2:
            record = self.records.get((p2 >> 3, p1))
            return record + ok if record is not None else bytes.fromhex("6A83")
        if ins == 0xCA:
            tag = (p1 << 8) | p2
            values = {
                0x9F17: bytes((self.pin_tries,)),
                0x9F36: self.atc.to_bytes(2, "big"),
                0x9F13: self.last_online_atc.to_bytes(2, "big"),
            }
            return encode(tag, values[tag]) + ok if tag in values else bytes.fromhex("6A88")
        if ins == 0x84:
            self.challenges += 1
            self._challenge = bytes.fromhex("01020304050607") + bytes((self.challenges,))
            return self._challenge + ok
        if ins == 0x20:
            return self._verify(p2, data)
        if ins == 0x88:
            return encode(0x80, sign_dda(self.icc, b"\x12\x34", data)) + ok
        if ins == 0xAE:
            return self._genac(p1, data)
        if ins == 0x82:
            return self.external_auth_sw
        return self.script_sw

    def _verify(self, p2: int, data: bytes) -> bytes:
        if self.pin_tries == 0:
            return bytes.fromhex("6983")
        if p2 == 0x88:
            pair = self.pin_pair if self.pin_key else self.icc
            plain = pow(int.from_bytes(data, "big"), pair.d, pair.n).to_bytes(pair.size, "big")
            challenge, self._challenge = self._challenge, None
            if plain[0] != 0x7F or plain[9:17] != challenge:
                return bytes.fromhex("6984")
            block = plain[1:9]
        else:
            block = data
        expected = bytes.fromhex(f"2{len(self.pin):X}{self.pin}".ljust(16, "F"))
        if block == expected:
            self.pin_tries = 3
            return bytes.fromhex("9000")
        self.pin_tries -= 1
        return bytes((0x63, 0xC0 | self.pin_tries))

    def _genac(self, p1: int, data: bytes) -> bytes:
        requested = p1 & 0xC0
        second = bool(self._cdol1)
        if not second:
            self._cdol1 = data
        forced = self.answer_ac2 if second else self.answer_ac
        kind = requested if forced is None else forced
        cid = bytes((kind,))
        atc = self.atc.to_bytes(2, "big")
        ac = hashlib.sha1(data).digest()[:8]
        iad = bytes.fromhex("06010A03A00000")
        if p1 & 0x10 and kind != 0x00 and self.oda == "CDA":
            objects = [(0x9F27, cid), (0x9F36, atc), (0x9F10, iad)]
            tx = cda_transaction_data(
                self._pdol_data,
                self._cdol1,
                decode(encode_tlvs(objects)),
                data if second else None,
            )
            if self.corrupt_cda:
                tx += b"\x00"
            sdad = sign_cda(
                self.icc,
                idn=b"\x12\x34",
                cid=cid,
                cryptogram=ac,
                unpredictable_number=data[-4:] if len(data) >= 4 else bytes(4),
                transaction_data=tx,
            )
            body = encode_tlvs([*objects, (0x9F4B, sdad)])
        else:
            body = encode_tlvs([(0x9F27, cid), (0x9F36, atc), (0x9F26, ac), (0x9F10, iad)])
        return encode(0x77, body) + b"\x90\x00"
