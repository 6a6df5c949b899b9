"""Issuer script commands with secure messaging (EMV 4.4 Book 3, 6.5.1-6.5.3, 6.5.10, 6.5.13;
Book 2, 9.2), built by the issuer host and checked by the card."""

from __future__ import annotations

from simulator.issuer import IssuerHost, IssuerPolicy, ScriptCommand
from terminal.tlv import decode

from .test_card_genac import Txn, _field55, _lc
from .test_card_pin import verify_plain
from .test_card_select import send


def scripted(txn: Txn, *scripts: ScriptCommand) -> list[bytes]:
    values, _, _ = txn.genac(0x80)
    answer = IssuerHost(policy=IssuerPolicy(scripts=scripts)).authorise(_field55(txn, values))
    assert answer is not None
    assert answer.approved
    return [cmd.value for tpl in decode(answer.scripts) for cmd in tpl.children or ()
            if cmd.tag == 0x86]


def run(txn: Txn, commands: list[bytes]) -> list[int]:
    return [int.from_bytes(txn.card.process(c)[-2:], "big") for c in commands]


def test_book3_6_5_1_application_block_then_select_6283_and_unblock():
    txn = Txn("visa_credit")
    assert run(txn, scripted(txn, ScriptCommand("application_block"))) == [0x9000]
    assert txn.genac(0x40, 0x8D, t8A=b"00")[0][0x9F27] == b"\x00"  # AAC after the block
    assert send(txn.card, "00A4040007A000000003101000")[1] == 0x6283
    assert send(txn.card, "80A8000013831100" + "00" * 16 + "00")[1] == 0x6985


def test_book3_6_5_3_application_unblock_in_the_same_session():
    txn = Txn("visa_credit")
    commands = scripted(txn, ScriptCommand("application_block"),
                        ScriptCommand("application_unblock"))
    assert run(txn, commands) == [0x9000, 0x9000]
    assert send(txn.card, "00A4040007A000000003101000")[1] == 0x9000


def test_book3_6_5_2_card_block_makes_every_select_6a81():
    txn = Txn("visa_credit")
    assert run(txn, scripted(txn, ScriptCommand("card_block"))) == [0x9000]
    assert send(txn.card, "00A4040007A000000003101000")[1] == 0x6A81
    assert send(txn.card, "00A404000E315041592E5359532E444446303100")[1] == 0x6A81


def test_book3_6_5_10_pin_unblock_and_pin_change():
    txn = Txn("dda_card")
    verify_plain(txn.card, "0000")
    verify_plain(txn.card, "0000")
    assert txn.card.pin_tries == 1
    assert run(txn, scripted(txn, ScriptCommand("pin_unblock"))) == [0x9000]
    assert txn.card.pin_tries == 3
    txn = Txn(txn.card)
    assert run(txn, scripted(txn, ScriptCommand("pin_change", value=b"8642"))) == [0x9000]
    assert verify_plain(txn.card, "1234") == 0x63C2
    assert verify_plain(txn.card, "8642") == 0x9000


def test_book3_6_5_13_put_data_updates_a_limit():
    txn = Txn("visa_credit")
    commands = scripted(txn, ScriptCommand("put_data", tag=0x9F14, value=b"\x09", after=True))
    assert commands[0][:2] == b"\x04\xda"
    assert run(txn, commands) == [0x9000]
    assert send(txn.card, "80CA9F1400") == (bytes.fromhex("9F140109"), 0x9000)


def test_put_data_of_a_tag_not_updatable_is_6a88():
    txn = Txn("visa_credit")
    commands = scripted(txn, ScriptCommand("put_data", tag=0x5A, value=b"\x11" * 8))
    assert run(txn, commands) == [0x6A88]


def test_wrong_mac_is_6988_and_changes_nothing():
    txn = Txn("visa_credit")
    command = bytearray(scripted(txn, ScriptCommand("card_block"))[0])
    command[-1] ^= 0x01
    assert run(txn, [bytes(command)]) == [0x6988]
    assert not txn.card.context.card_blocked


def test_script_without_secure_messaging_or_before_any_ac():
    txn = Txn("visa_credit")
    assert send(txn.card, "841E000008" + "00" * 8)[1] == 0x6985  # no AC yet
    assert send(txn.card, "801E000008" + "00" * 8)[1] == 0x6982  # no secure messaging
    txn.genac(0x80)
    assert send(txn.card, "841E000004" + "00" * 4)[1] == 0x6700  # no room for the MAC


def test_script_counter_in_the_cvr():
    txn = Txn("visa_credit")
    commands = scripted(txn, ScriptCommand("put_data", tag=0x9F23, value=b"\x07"))
    run(txn, commands)
    values, _, _ = txn.genac(0x40, 0x8D, t8A=b"00")
    assert values[0x9F10][6] >> 4 == 1


def test_script_command_lengths_and_templates():
    txn = Txn("visa_credit")
    values, _, _ = txn.genac(0x80)
    policy = IssuerPolicy(scripts=(ScriptCommand("application_block"),
                                   ScriptCommand("pin_unblock", after=True)))
    answer = IssuerHost(policy=policy).authorise(_field55(txn, values))
    templates = [t.tag for t in decode(answer.scripts)]
    assert templates == [0x71, 0x72]
    assert _lc(b"") == "00"
