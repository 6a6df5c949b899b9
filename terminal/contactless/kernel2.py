"""Kernel 2: Mastercard M/Chip in EMV mode (EMV Contactless Book C-2).

The kernel runs on the contact kernel's :class:`~terminal.contact.state.Transaction` state so
that the steps the two share are the same code: processing restrictions (Book 3, 10.4), CVM
conditions (Annex C3), terminal action analysis and the cryptogram ranking (10.7-10.8).

1. GET PROCESSING OPTIONS (C-2, S3): PDOL data; a status other than 9000 is SELECT NEXT; a
   missing AIP/AFL is END APPLICATION (CARD DATA MISSING); an AIP without "EMV mode" is a
   mag-stripe card: mag-stripe mode is not implemented, so END APPLICATION with MAGSTRIPE NOT
   SUPPORTED and "insert, swipe or try another card" ('1C', S3.x with mag-stripe mode not
   supported in the Kernel Configuration).
2. Relay resistance (C-2, 5.x) when card and reader support it (:mod:`.relay`), else TVR
   "relay resistance performed" = not performed.
3. READ RECORD of the Active AFL (S3.30-S3.32: the first entry ``08010100``, the mag-stripe
   record, is left out only when the Kernel Configuration offers mag-stripe mode; S4): a
   repeated tag or a non-70 record ends the transaction.
4. Mandatory data (5A, 5F24, 8C), the Reader Contactless Transaction Limit (on-device CVM or
   not; Amount, Authorised *above* it: SELECT NEXT with MAX LIMIT EXCEEDED), processing
   restrictions, ODA method (CDA only; TVR "ODA not performed" otherwise), CVM selection
   (:mod:`.kernel2_cvm`, CVM Required Limit: *above*), floor limit (*above*) and exception
   file, terminal action analysis (C-2, S456).
5. GENERATE AC with CDOL1, CDA requested for a TC or ARQC (C-2, S456; Book 3, 6.5.5); then
   "card read OK": the card may leave the field.
6. After removal (C-2, S910):
   * CDA (S910.1-S910.7): the signature is verified; a failure is END APPLICATION, CAM FAILED,
     TVR "CDA failed". CDA requested and a TC or ARQC without SDAD: END APPLICATION, CARD DATA
     ERROR (S910.34-S910.37); an AAC without SDAD is valid (S910.35).
   * S910.70-S910.73: with POS Cardholder Interaction Information (DF4B) & ``00030F`` non-zero
     the card asks for a second tap, whatever the cryptogram: END APPLICATION, Start B, "see
     phone" ('20') on the outcome (Not Ready) and on restart (Ready to Read).
   * S910.74-S910.75: TC approves ("approved", or "approved - sign"), ARQC asks for online
     authorisation ("authorising"). AAC on a purchase, cash or cashback: DECLINED when the
     reader has no contact interface or the card is a device that cannot be inserted (Third
     Party Data 9F6E: Unique Identifier byte 1 bit 8 clear and Device Type other than
     ``3030``), else TRY ANOTHER INTERFACE with "insert card" ('1D'); on any other transaction
     type (refund) END APPLICATION with "clear display" ('1E'). Every one carries the data
     record (S910.70).

Data read: 9F38, 82, 94, records, 8C, 8E, 9F07, 9F08, 5F24, 5F25, 5F28, IACs, CA/issuer/ICC
keys, 9F27, 9F36, 9F26, 9F10, 9F4B, 9F6E, DF4B. Data written: 9F33 byte 2, 95, 9F34, the
outcome.
"""

from __future__ import annotations

from terminal.bits import Aip, CryptogramType, RrpStatus, Tvr, TvrBit
from terminal.commands import generate_ac, get_processing_options, parse_genac, parse_gpo
from terminal.config import TerminalConfig
from terminal.contact.action_analysis import cryptogram_allowed, terminal_action_analysis
from terminal.contact.restrictions import check_processing_restrictions
from terminal.contact.state import Transaction
from terminal.contactless.common import (
    HOLD_MS,
    RecordError,
    capk_store,
    icc_data,
    masked_pan_of,
    pan_of,
    read_afl_records,
    refund_outcome,
    terminal_data,
    ui_approved,
    ui_declined,
    ui_online,
)
from terminal.contactless.kernel2_cvm import select_cvm
from terminal.contactless.outcome import (
    AlternateInterface,
    CvmOutcome,
    L2Error,
    Message,
    Outcome,
    OutcomeParameters,
    Start,
    UiRequest,
    UiStatus,
    end_application,
    select_next,
)
from terminal.contactless.preprocessing import Kernel2Settings
from terminal.contactless.relay import relay_resistance
from terminal.contactless.result import ContactlessResult
from terminal.contactless.selection import SelectedApplication
from terminal.contactless.session import CardSession
from terminal.dol import parse_dol
from terminal.environment import Environment, TransactionRequest
from terminal.errors import CardDataError, DolError, TlvError
from terminal.oda import (
    OdaFailure,
    StaticDataCollector,
    recover_icc_public_key,
    verify_cda_response,
)
from terminal.oda.results import OdaMethod

__all__ = ["KERNEL_ID", "MAGSTRIPE_AFL_ENTRY", "SEE_PHONE", "active_afl", "run_kernel2"]

KERNEL_ID = 2
MAGSTRIPE_AFL_ENTRY = bytes.fromhex("08010100")
_CDA_DATA = (0x8F, 0x90, 0x9F32, 0x9F46, 0x9F47)

#: The "see phone" outcome (Book C-2, S910.71-S910.73, default Phone Message Table: "see
#: phone", Not Ready; on restart the same message with Ready to Read and no hold time).
SEE_PHONE = OutcomeParameters(
    Outcome.END_APPLICATION,
    start=Start.B,
    ui_on_outcome=UiRequest(Message.SEE_PHONE, UiStatus.NOT_READY, HOLD_MS),
    ui_on_restart=UiRequest(Message.SEE_PHONE, UiStatus.READY_TO_READ, 0),
    data_record_present=True,
)
#: Transaction types on which an AAC sends the cardholder to the contact interface
#: (C-2, S910.74: purchase, cash, cashback, cash disbursement).
_PURCHASE_OR_CASH = frozenset({0x00, 0x01, 0x09, 0x17})


async def run_kernel2(
    session: CardSession,
    selected: SelectedApplication,
    *,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    settings: Kernel2Settings | None = None,
) -> ContactlessResult:
    """Run an M/Chip transaction on the selected application (Book C-2, 3-5).

    Returns:
        The result; card data errors become END APPLICATION outcomes.

    Raises:
        TransportError: when the card channel fails.
    """
    combo = selected.candidate.combination
    settings = settings or Kernel2Settings.for_aid(combo.config)
    terminal = terminal_data(config, request, env, combo.config, None)
    terminal[0x84] = selected.candidate.adf_name
    txn = Transaction(
        io=session.io,
        config=config,
        request=request,
        env=env,
        capk=capk_store(config),
        terminal=terminal,
        card=dict(selected.fci),
        tvr=Tvr(contactless=True),
        aid_config=combo.config,
        label=selected.label,
    )
    txn.set_cvm_results(bytes.fromhex("3F0000"))
    result = ContactlessResult(
        end_application(L2Error.OK),
        kernel_id=KERNEL_ID,
        aid=selected.candidate.adf_name,
        label=selected.label,
    )
    try:
        params = await _transaction(session, selected, txn, settings, result)
    except (TlvError, DolError) as exc:
        params = end_application(L2Error.PARSING_ERROR, f"tag {exc.tag or 0:02X}")
    except CardDataError as exc:
        params = end_application(L2Error.CARD_DATA_ERROR, f"tag {exc.tag or 0:02X}")
    except RecordError as exc:
        params = end_application(L2Error.STATUS_BYTES, "READ RECORD", sw=exc.sw)
    result.parameters = params
    result.tvr = txn.tvr.bytes()
    txn.terminal[0x95] = result.tvr
    result.masked_pan = masked_pan_of(txn.card)
    result.pan = pan_of(txn.card)
    result.icc_data = icc_data(txn.card, txn.terminal)
    return result


async def _transaction(
    session: CardSession,
    selected: SelectedApplication,
    txn: Transaction,
    settings: Kernel2Settings,
    result: ContactlessResult,
) -> OutcomeParameters:
    entries = parse_dol(selected.pdol) if selected.pdol else []
    txn.pdol_data = txn.dol_data(entries)
    response = await session.send(get_processing_options(txn.pdol_data), dol=entries)
    if not response.ok:
        return select_next(L2Error.STATUS_BYTES, "GPO", sw=response.sw)
    try:
        gpo = parse_gpo(response.data)
    except CardDataError as exc:
        return end_application(L2Error.CARD_DATA_MISSING, f"tag {exc.tag or 0:02X}")
    for tag, value in gpo.data.items():
        txn.card.setdefault(tag, value)
    txn.aip = Aip(gpo.aip)
    if not txn.aip.emv_mode_supported:
        return end_application(L2Error.MAGSTRIPE_NOT_SUPPORTED, "mag-stripe mode card")
    if txn.aip.rrp_supported and settings.rrp_supported:
        failed = await relay_resistance(session, txn, settings)
        if failed is not None:
            return failed
    elif settings.rrp_reported_in_tvr:
        txn.tvr.rrp = RrpStatus.NOT_PERFORMED
        txn.terminal[0x95] = txn.tvr.bytes()
    afl = active_afl(gpo.afl, magstripe_mode_supported=settings.magstripe_mode_supported)
    collector = await read_afl_records(session, afl, txn.card, unique=True)
    missing = next((t for t in (0x5A, 0x5F24, 0x8C) if not txn.card.get(t)), None)
    if missing is not None:
        return end_application(L2Error.CARD_DATA_MISSING, f"tag {missing:02X}")
    limit = _transaction_limit(txn)
    if limit is not None and txn.request.amount > limit:
        return select_next(L2Error.MAX_LIMIT_EXCEEDED, "reader contactless transaction limit")
    check_processing_restrictions(txn)
    _choose_oda(txn, collector)
    cvm = _cvm(txn, settings)
    _risk_management(txn)
    kind = terminal_action_analysis(txn)
    cda = (
        txn.oda_method is OdaMethod.CDA
        and not txn.tvr.is_set(TvrBit.CDA_FAILED)
        and kind is not CryptogramType.AAC
    )
    txn.cda_requested = cda
    cdol = parse_dol(txn.card[0x8C])
    txn.cdol1_data = txn.dol_data(cdol)
    response = await session.send(generate_ac(kind, txn.cdol1_data, cda=cda), dol=cdol)
    if not response.ok:
        return end_application(L2Error.STATUS_BYTES, "GENERATE AC", sw=response.sw)
    genac = parse_genac(response.data)
    if not cryptogram_allowed(kind, genac.cryptogram_type):
        return end_application(L2Error.CARD_DATA_ERROR, "cryptogram above the one requested")
    for tag, value in genac.data.items():
        txn.card[tag] = value
    result.cid = genac.cid
    session.card_read_complete()
    sdad = genac.sdad is not None
    return _after_removal(txn, genac.cryptogram_type, response.data, (cda, sdad), cvm, result)


def active_afl(afl: bytes, *, magstripe_mode_supported: bool) -> bytes:
    """The Active AFL in EMV mode (Book C-2, S3.30-S3.32).

    When the Kernel Configuration offers mag-stripe mode, a first entry ``08 01 01 00`` names
    the mag-stripe data record (SFI 1, record 1), which EMV mode does not read (S3.32);
    otherwise the AFL is read as it is (S3.31).
    """
    if magstripe_mode_supported and afl[:4] == MAGSTRIPE_AFL_ENTRY and len(afl) > 4:
        return afl[4:]
    return afl


def _transaction_limit(txn: Transaction) -> int | None:
    """The Reader Contactless Transaction Limit in force (Book C-2, S456.x)."""
    aid = txn.aid_config
    if aid is None:
        return None
    if txn.aip.on_device_cv_supported and aid.cdcvm_supported:
        return aid.mobile_ctls_transaction_limit or aid.reader_ctls_transaction_limit
    return aid.reader_ctls_transaction_limit


def _choose_oda(txn: Transaction, collector: StaticDataCollector) -> None:
    """CDA when card and terminal support it, else "ODA not performed" (Book C-2, S456.x)."""
    terminal_cda = bytes.fromhex(txn.config.terminal_capabilities)[2] & 0x08
    if not (txn.aip.cda_supported and terminal_cda):
        txn.set_tvr(TvrBit.ODA_NOT_PERFORMED)
        return
    txn.oda_method = OdaMethod.CDA
    if any(not txn.card.get(tag) for tag in _CDA_DATA):
        txn.set_tvr(TvrBit.ICC_DATA_MISSING)
        txn.set_tvr(TvrBit.CDA_FAILED)
        return
    static = collector.finish(txn.card.get(0x9F4A), txn.card)
    if isinstance(static, OdaFailure):
        txn.set_tvr(TvrBit.CDA_FAILED)
        return
    txn.static_data = static


def _cvm(txn: Transaction, settings: Kernel2Settings) -> CvmOutcome:
    """Set the CVM capability into 9F33 byte 2 and select the CVM (Book C-2, S456.x)."""
    aid = txn.aid_config
    cvm_limit = aid.reader_cvm_required_limit if aid is not None else None
    above = cvm_limit is not None and txn.request.amount > cvm_limit
    caps = bytearray(bytes.fromhex(txn.config.terminal_capabilities))
    caps[1] = (
        settings.cvm_capability_cvm_required if above else settings.cvm_capability_no_cvm_required
    )
    txn.terminal[0x9F33] = bytes(caps)
    txn.config = txn.config.model_copy(update={"terminal_capabilities": caps.hex().upper()})
    on_device = aid.cdcvm_supported if aid is not None else False
    return select_cvm(txn, above_cvm_limit=above, on_device_cvm=on_device)


def _risk_management(txn: Transaction) -> None:
    """Floor limit and exception file (Book C-2, S456.x; EMV 4.4 Book 3, 10.6.1)."""
    aid = txn.aid_config
    if aid is not None:
        floor = aid.reader_ctls_floor_limit
        if floor is None:
            floor = aid.floor_limit
        if txn.request.amount > floor:
            txn.set_tvr(TvrBit.EXCEEDS_FLOOR_LIMIT)
    pan = txn.pan
    if pan is not None and txn.config.on_exception_file(pan, txn.pan_sequence_number):
        txn.set_tvr(TvrBit.CARD_ON_EXCEPTION_FILE)


def _see_phone(txn: Transaction) -> bool:
    """POS Cardholder Interaction Information asks for a second tap (C-2, S910.71):
    DF4B & ``00030F`` is not zero."""
    pcii = txn.card.get(0xDF4B)
    if pcii is None or len(pcii) < 3:
        return False
    return bool(pcii[1] & 0x03 or pcii[2] & 0x0F)


def _declines_aac(txn: Transaction) -> bool:
    """An AAC on a purchase or cash is a decline, not "insert card" (C-2, S910.74): the reader
    has no contact interface (Terminal Capabilities byte 1 bit 6), or Third Party Data (9F6E)
    shows a device that cannot be inserted (Unique Identifier byte 1 bit 8 clear and a Device
    Type other than ``3030``, "card")."""
    caps = bytes.fromhex(txn.config.terminal_capabilities)
    if not caps[0] & 0x20:
        return True
    third_party = txn.card.get(0x9F6E)
    if third_party is None or len(third_party) < 4 or third_party[2] & 0x80:
        return False
    device_type = third_party[4:6] if len(third_party) >= 6 else None
    return device_type != b"00"


def _after_removal(
    txn: Transaction,
    kind: CryptogramType,
    response_data: bytes,
    cda_sdad: tuple[bool, bool],
    cvm: CvmOutcome,
    result: ContactlessResult,
) -> OutcomeParameters:
    """CDA verification and the outcome, once the card has gone (Book C-2, S910).

    ``cda_sdad`` is (CDA requested, SDAD 9F4B in the GENERATE AC response).
    """
    cda, sdad = cda_sdad
    if txn.oda_method is OdaMethod.CDA:
        result.oda_method = OdaMethod.CDA.value
    if cda and sdad:
        verified = _verify_cda(txn, response_data)
        result.oda_verified = verified
        if not verified:
            txn.set_tvr(TvrBit.CDA_FAILED)
            return end_application(L2Error.CAM_FAILED, "CDA")
    elif cda and kind is not CryptogramType.AAC:
        return end_application(L2Error.CARD_DATA_ERROR, "CDA requested, no SDAD (9F4B)")
    elif txn.tvr.is_set(TvrBit.CDA_FAILED):
        result.oda_verified = False
    if _see_phone(txn):
        return SEE_PHONE.with_changes(cvm=cvm)
    if kind is CryptogramType.TC:
        signature = cvm is CvmOutcome.SIGNATURE
        return OutcomeParameters(
            Outcome.APPROVED,
            cvm=cvm,
            ui_on_outcome=ui_approved(signature),
            receipt=signature,
            data_record_present=True,
        )
    if kind is CryptogramType.ARQC:
        return OutcomeParameters(
            Outcome.ONLINE_REQUEST,
            online_response_data="EMV data",
            cvm=cvm,
            ui_on_outcome=ui_online(),
            data_record_present=True,
        )
    if int(txn.request.transaction_type) not in _PURCHASE_OR_CASH:
        return refund_outcome()
    if _declines_aac(txn):
        return OutcomeParameters(
            Outcome.DECLINED, cvm=cvm, ui_on_outcome=ui_declined(), data_record_present=True
        )
    return OutcomeParameters(
        Outcome.TRY_ANOTHER_INTERFACE,
        cvm=cvm,
        ui_on_outcome=UiRequest(Message.INSERT_CARD, UiStatus.NOT_READY, HOLD_MS),
        alternate_interface=AlternateInterface.CONTACT_CHIP,
        data_record_present=True,
    )


def _verify_cda(txn: Transaction, response_data: bytes) -> bool:
    """Recover the ICC key and check the CDA signature (Book 2, 6.6.2; Book C-2, S910.x)."""
    if txn.static_data is None:
        return False
    icc = recover_icc_public_key(
        txn.capk, txn.terminal[0x84][:5], txn.card, txn.static_data, txn.env.clock().date()
    )
    if isinstance(icc, OdaFailure):
        return False
    checked = verify_cda_response(
        icc,
        response_data,
        unpredictable_number=txn.terminal[0x9F37],
        pdol_data=txn.pdol_data,
        cdol1_data=txn.cdol1_data,
    )
    return not isinstance(checked, OdaFailure)
