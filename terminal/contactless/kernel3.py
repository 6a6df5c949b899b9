"""Kernel 3: Visa qVSDC (EMV Contactless Book C-3).

Flow (one function per step, each names its clause):

1. :func:`_gpo` - Book C-3, 5.2: PDOL data with the Entry Point's TTQ copy, GET PROCESSING
   OPTIONS; ``6984`` Try Another Interface ("insert card", contact chip), ``6985`` Select
   Next, ``6986`` "see phone" (Try Again, restart at B with the field off for the hold time),
   anything else End Application. (A Visa PDOL without the TTQ never reaches this kernel: the
   Entry Point removes such a kernel 1 candidate, Book B 3.3.3.6.)
2. :func:`_cryptogram_type` - C-3, 5.4.3.1: CID 9F27, else Issuer Application Data byte 5
   (CVR byte 2) bits 6-5: ``00`` AAC, ``01`` TC, ``10`` ARQC (the Visa IAD formats 0/1/3;
   anything else is no usable cryptogram type).
3. Records named by the AFL, then "card read OK": the card may leave the field.
4. :func:`_decide` - after the card is gone: a TC while the reader asked for an online
   cryptogram (TTQ byte 2 bit 8) goes online (5.4.3.2); an AAC declines (a refund's AAC ends
   with its data record); for a TC, processing restrictions (5.5.1: an expired or missing
   expiry date goes online when CTQ byte 1 bit 4 says so, else declines; a card on the
   exception file declines) and fDDA (5.6: 9F4B over UN, amount, currency and 9F69; a failure
   goes online or to the contact interface when the CTQ says so and the reader can, else
   declines); the CVM (:func:`_cvm`); the Visa "unable to go online" rule: an online request
   the reader cannot make (not online capable, or TTQ "offline-only reader") declines.
5. :func:`_cvm` - C-3, 5.7.1: without CTQ and "CVM required", signature if supported, else
   online PIN if supported (forcing online), else decline; with CTQ: online PIN required and
   supported (forcing online), consumer device CVM performed (valid when 9F69's copy of the CTQ
   matches, or without that copy on an ARQC), signature required and supported; "CVM required"
   with none of these declines.

Data read: 9F38, 82, 94, 57, 5A, 5F24, 9F10, 9F26, 9F27, 9F36, 9F4B, 9F69, 9F6C, 8F, 90, 92,
9F32, 9F46-9F48, 9F4A. Data written: 9F66 (sent), 95 (ODA and expiry bits).
"""

from __future__ import annotations

from terminal import tlv
from terminal.bits import Ctq, CtqBit, Ttq, TtqBit, Tvr, TvrBit
from terminal.commands import get_processing_options
from terminal.config import TerminalConfig
from terminal.contact.restrictions import parse_yymmdd
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
from terminal.contactless.preprocessing import Combination
from terminal.contactless.result import ContactlessResult
from terminal.contactless.selection import SelectedApplication
from terminal.contactless.session import CardSession
from terminal.dol import build_dol, parse_dol
from terminal.environment import Environment, TransactionRequest, TransactionType
from terminal.errors import CardDataError, DolError, TlvError
from terminal.oda import (
    OdaFailure,
    StaticDataCollector,
    recover_icc_public_key,
    tvr_byte1_bits,
    verify_fdda,
)
from terminal.oda.results import OdaCheck, OdaMethod, OdaStage

__all__ = ["SEE_PHONE", "run_kernel3"]

KERNEL_ID = 3
_TC, _ARQC, _AAC = 0x40, 0x80, 0x00

#: Outcome of a "see phone" answer (Book C-3, 5.2.2; Book A, 9.4 message 20).
SEE_PHONE = OutcomeParameters(
    Outcome.TRY_AGAIN,
    start=Start.B,
    ui_on_outcome=UiRequest(Message.SEE_PHONE, UiStatus.NOT_READY, HOLD_MS),
    ui_on_restart=UiRequest(Message.PRESENT_CARD_AGAIN, UiStatus.READY_TO_READ),
    field_off_hold_ms=HOLD_MS,
)


async def run_kernel3(
    session: CardSession,
    selected: SelectedApplication,
    *,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
) -> ContactlessResult:
    """Run a Visa qVSDC transaction on the selected application (Book C-3, 5).

    Returns:
        The result; card data errors become END APPLICATION outcomes.

    Raises:
        TransportError: when the card channel fails.
    """
    combo = selected.candidate.combination
    result = ContactlessResult(
        end_application(L2Error.OK),
        kernel_id=KERNEL_ID,
        aid=selected.candidate.adf_name,
        label=selected.label,
    )
    terminal = terminal_data(config, request, env, combo.config, combo.indicators.ttq)
    terminal[0x84] = selected.candidate.adf_name
    card: dict[int, bytes] = dict(selected.fci)
    tvr = Tvr(contactless=True)
    try:
        params = await _transaction(
            session, selected, combo, config, request, env, terminal, card, tvr, result
        )
    except (TlvError, DolError) as exc:
        params = end_application(L2Error.PARSING_ERROR, f"tag {exc.tag or 0:02X}")
    except CardDataError as exc:
        params = end_application(L2Error.CARD_DATA_ERROR, f"tag {exc.tag or 0:02X}")
    except RecordError as exc:
        params = end_application(L2Error.STATUS_BYTES, "READ RECORD", sw=exc.sw)
    terminal[0x95] = tvr.bytes()
    result.parameters = params
    result.tvr = tvr.bytes()
    result.masked_pan = masked_pan_of(card)
    result.pan = pan_of(card)
    result.icc_data = icc_data(card, terminal)
    return result


async def _transaction(
    session: CardSession,
    selected: SelectedApplication,
    combo: Combination,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    terminal: dict[int, bytes],
    card: dict[int, bytes],
    tvr: Tvr,
    result: ContactlessResult,
) -> OutcomeParameters:
    pdol = selected.pdol
    if pdol is None or not any(tag == 0x9F66 for tag, _ in parse_dol(pdol)):
        # Unreachable for a Visa AID (the Entry Point's 3.3.3.6); kept for other RIDs.
        return end_application(L2Error.CARD_DATA_MISSING, "PDOL without TTQ (9F66)")
    gpo = await _gpo(session, pdol, terminal, card)
    if isinstance(gpo, OutcomeParameters):
        return gpo
    kind = _cryptogram_type(card)
    if kind is None:
        return end_application(L2Error.CARD_DATA_ERROR, "cryptogram type")
    result.cid = bytes((kind,)) if card.get(0x9F27) is None else card[0x9F27]
    collector: StaticDataCollector | None = None
    afl = card.get(0x94)
    if afl:
        collector = await read_afl_records(session, afl, card)
    session.card_read_complete()
    return _decide(kind, combo, config, env, request, terminal, card, tvr, collector, result)


async def _gpo(
    session: CardSession, pdol: bytes, terminal: dict[int, bytes], card: dict[int, bytes]
) -> OutcomeParameters | None:
    """GET PROCESSING OPTIONS and its status words (Book C-3, 5.2.2)."""
    entries = parse_dol(pdol)
    response = await session.send(get_processing_options(build_dol(entries, terminal)), dol=entries)
    sw = response.sw
    if sw == 0x6984:
        return _insert_card()
    if sw == 0x6985:
        return select_next(L2Error.STATUS_BYTES, "GPO", sw=sw)
    if sw == 0x6986:
        return SEE_PHONE
    if sw != 0x9000:
        return end_application(L2Error.STATUS_BYTES, "GPO", sw=sw)
    objects = tlv.decode(response.data)
    if len(objects) != 1 or objects[0].tag != 0x77 or objects[0].children is None:
        # Format 1 (80) is MSD / legacy: not qVSDC.
        return end_application(L2Error.PARSING_ERROR, "GPO response is not a 77 template")
    tlv.flatten(objects[0].children, card)
    for tag in (0x82, 0x9F36, 0x9F26, 0x9F10):
        if not card.get(tag):
            return end_application(L2Error.CARD_DATA_MISSING, f"tag {tag:02X}")
    if 0x57 not in card and 0x5A not in card:
        return end_application(L2Error.CARD_DATA_MISSING, "tag 57")
    return None


def _cryptogram_type(card: dict[int, bytes]) -> int | None:
    """The cryptogram type (Book C-3, 5.3): CID bits 8-7, else IAD byte 5 bits 6-5."""
    cid = card.get(0x9F27)
    if cid is not None:
        if len(cid) != 1:
            raise CardDataError("CID must be 1 byte", tag=0x9F27)
        kind = cid[0] & 0xC0
        return kind if kind in (_TC, _ARQC, _AAC) else None
    iad = card.get(0x9F10, b"")
    if len(iad) < 5:
        return None
    return {0x00: _AAC, 0x10: _TC, 0x20: _ARQC}.get(iad[4] & 0x30)


def _decide(
    kind: int,
    combo: Combination,
    config: TerminalConfig,
    env: Environment,
    request: TransactionRequest,
    terminal: dict[int, bytes],
    card: dict[int, bytes],
    tvr: Tvr,
    collector: StaticDataCollector | None,
    result: ContactlessResult,
) -> OutcomeParameters:
    """The outcome once the card has left the field (Book C-3, 5.4.3-5.8)."""
    ttq = Ttq(terminal[0x9F66])
    ctq_raw = card.get(0x9F6C)
    ctq = Ctq(ctq_raw) if ctq_raw is not None and len(ctq_raw) == 2 else None
    online_capable = config.online_capable and not ttq.offline_only_reader
    if ctq is not None and request.is_cashback and ctq.is_set(CtqBit.SWITCH_INTERFACE_FOR_CASHBACK):
        return _insert_card()
    if kind == _AAC:
        if request.transaction_type is TransactionType.REFUND:
            return refund_outcome()
        return _declined()
    online = kind == _ARQC or ttq.online_cryptogram_required  # 5.4.3.2
    if not online:
        refused = _restrictions(config, env, card, tvr, ctq)  # 5.5.1
        if refused is not None:
            return refused if isinstance(refused, OutcomeParameters) else _declined()
        online = ctq is not None and ctq.online_if_application_expired and _expired(env, card)
    if not online:
        failure = _offline_checks(combo, config, env, terminal, card, tvr, collector, result)
        if failure is not None:  # 5.6.1.2
            if ctq is not None and ctq.online_if_oda_fails and online_capable:
                online = True
            elif (
                ctq is not None
                and ctq.switch_interface_if_oda_fails
                and ttq.is_set(TtqBit.EMV_CONTACT_CHIP_SUPPORTED)
            ):
                return _insert_card()
            else:
                return _declined()
    cvm, forces_online = _cvm(ttq, ctq, card, kind)
    if cvm is None:
        return _declined()
    if online or forces_online:
        if not online_capable:
            # Visa "unable to go online": qVSDC has no second cryptogram, so an
            # authorisation the reader cannot obtain is a decline (Book C-3, 5.8).
            return _declined()
        return OutcomeParameters(
            Outcome.ONLINE_REQUEST,
            online_response_data="N/A",
            cvm=cvm,
            ui_on_outcome=ui_online(),
            data_record_present=True,
        )
    signature = cvm is CvmOutcome.SIGNATURE
    return OutcomeParameters(
        Outcome.APPROVED,
        cvm=cvm,
        ui_on_outcome=ui_approved(signature),
        receipt=signature,
        data_record_present=True,
    )


def _declined() -> OutcomeParameters:
    return OutcomeParameters(Outcome.DECLINED, ui_on_outcome=ui_declined())


def _insert_card() -> OutcomeParameters:
    """TRY ANOTHER INTERFACE: "insert card" ('1D'), the contact chip (Book C-3, 5.2.2; 5.6)."""
    return OutcomeParameters(
        Outcome.TRY_ANOTHER_INTERFACE,
        ui_on_outcome=UiRequest(Message.INSERT_CARD, UiStatus.PROCESSING_ERROR, HOLD_MS),
        alternate_interface=AlternateInterface.CONTACT_CHIP,
    )


def _expired(env: Environment, card: dict[int, bytes]) -> bool:
    """No usable Application Expiration Date (5F24), or one before today (Book C-3, 5.5.1.1)."""
    expiry = parse_yymmdd(card.get(0x5F24, b""))
    return expiry is None or expiry < env.clock().date()


def _restrictions(
    config: TerminalConfig,
    env: Environment,
    card: dict[int, bytes],
    tvr: Tvr,
    ctq: Ctq | None,
) -> OutcomeParameters | str | None:
    """Processing restrictions of a TC (Book C-3, 5.5.1.1-5.5.1.2).

    Returns:
        Why the TC is refused (a decline), or ``None``: an expired application whose CTQ says
        "go online if application expired" is not refused here (the caller goes online).
    """
    if _expired(env, card):
        tvr.set(TvrBit.EXPIRED_APPLICATION)
        if ctq is None or not ctq.online_if_application_expired:
            return "application expired"
    pan = pan_of(card)
    if pan is not None and config.on_exception_file(pan, None):
        tvr.set(TvrBit.CARD_ON_EXCEPTION_FILE)
        return "card on exception file"
    return None


def _offline_checks(
    combo: Combination,
    config: TerminalConfig,
    env: Environment,
    terminal: dict[int, bytes],
    card: dict[int, bytes],
    tvr: Tvr,
    collector: StaticDataCollector | None,
    result: ContactlessResult,
) -> str | None:
    """fDDA for an offline approval (Book C-3, 5.6; Annex C).

    Returns:
        Why the offline approval is refused, or ``None``.
    """
    result.oda_method = OdaMethod.FDDA.value
    failure = _fdda(combo, config, env, terminal, card, collector)
    if failure is not None:
        result.oda_verified = False
        tvr.set(TvrBit.DDA_FAILED)
        if tvr_byte1_bits(OdaMethod.FDDA, failure) & 0x20:
            tvr.set(TvrBit.ICC_DATA_MISSING)
        return str(failure)
    result.oda_verified = True
    return None


def _fdda(
    combo: Combination,
    config: TerminalConfig,
    env: Environment,
    terminal: dict[int, bytes],
    card: dict[int, bytes],
    collector: StaticDataCollector | None,
) -> OdaFailure | None:
    """fDDA: ICC key recovery and SDAD check (Book C-3, 5.7; Annex C)."""
    aip = card.get(0x82, b"\x00")
    if not aip[0] & 0x20 or collector is None:
        return OdaFailure(OdaStage.SDAD, OdaCheck.DATA_MISSING, "fDDA not supported")
    static = collector.finish(card.get(0x9F4A), card)
    today = env.clock().date()
    icc = recover_icc_public_key(capk_store(config), combo.aid[:5], card, static, today)
    if isinstance(icc, OdaFailure):
        return icc
    verified = verify_fdda(
        icc,
        card.get(0x9F4B),
        unpredictable_number=terminal[0x9F37],
        amount_authorised=terminal[0x9F02],
        currency_code=terminal[0x5F2A],
        card_auth_data=card.get(0x9F69),
    )
    return verified if isinstance(verified, OdaFailure) else None


def _cvm(ttq: Ttq, ctq: Ctq | None, card: dict[int, bytes], kind: int) -> tuple[
    CvmOutcome | None, bool
]:
    """The CVM of a qVSDC transaction (Book C-3, 5.7.1).

    Returns:
        The CVM (``None``: none possible, the transaction declines) and whether it forces an
        online request (online PIN).
    """
    if ctq is None:  # 5.7.1.1
        if not ttq.cvm_required:
            return CvmOutcome.NO_CVM, False
        if ttq.is_set(TtqBit.SIGNATURE_SUPPORTED):
            return CvmOutcome.SIGNATURE, False
        if ttq.is_set(TtqBit.ONLINE_PIN_SUPPORTED):
            return CvmOutcome.ONLINE_PIN, True
        return None, False
    if ctq.online_pin_required and ttq.is_set(TtqBit.ONLINE_PIN_SUPPORTED):  # 5.7.1.2
        return CvmOutcome.ONLINE_PIN, True
    if ctq.cdcvm_performed:
        auth_data = card.get(0x9F69)
        if auth_data is not None and len(auth_data) >= 7:
            valid = auth_data[5:7] == ctq.bytes()  # 9F69's copy of the CTQ (signed by fDDA)
        else:
            valid = kind == _ARQC
        return (CvmOutcome.CONFIRMATION_CODE_VERIFIED if valid else None), False
    if ctq.signature_required and ttq.is_set(TtqBit.SIGNATURE_SUPPORTED):
        return CvmOutcome.SIGNATURE, False
    if ttq.cvm_required:  # 5.7.1.3
        return None, False
    return CvmOutcome.NO_CVM, False
