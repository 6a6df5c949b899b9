"""Offline data authentication: SDA, DDA, CDA and fDDA (EMV 4.4 Book 2, 5-7; Book 3, 10.3).

One module per concern: :mod:`.recovery` (RSA recovery, hash, dates), :mod:`.certificates`
(issuer, ICC and PIN key certificates), :mod:`.static_data` (the data to be authenticated),
:mod:`.sda` (SSAD), :mod:`.dynamic` (DDA, fDDA), :mod:`.cda` (CDA), :mod:`.flow` (the steps as
the kernel calls them). Every check returns a value; see :mod:`.results`.
"""

from __future__ import annotations

from terminal.oda.cda import (
    cda_transaction_data,
    genac_tlvs_for_hash,
    verify_cda,
    verify_cda_response,
)
from terminal.oda.certificates import recover_icc_key, recover_issuer_key, recover_pin_key
from terminal.oda.dynamic import fdda_terminal_data, recover_sdad, verify_dda, verify_fdda
from terminal.oda.flow import (
    perform_sda,
    recover_icc_public_key,
    recover_issuer_public_key,
    recover_pin_public_key,
    select_ca_key,
)
from terminal.oda.results import (
    IccDynamicData,
    IccPublicKey,
    IssuerPublicKey,
    OdaCheck,
    OdaFailure,
    OdaMethod,
    OdaStage,
    RsaPublicKey,
    SdaResult,
    tvr_byte1_bits,
)
from terminal.oda.sda import verify_ssad
from terminal.oda.static_data import StaticDataCollector, parse_afl

__all__ = [
    "IccDynamicData",
    "IccPublicKey",
    "IssuerPublicKey",
    "OdaCheck",
    "OdaFailure",
    "OdaMethod",
    "OdaStage",
    "RsaPublicKey",
    "SdaResult",
    "StaticDataCollector",
    "cda_transaction_data",
    "fdda_terminal_data",
    "genac_tlvs_for_hash",
    "parse_afl",
    "perform_sda",
    "recover_icc_key",
    "recover_icc_public_key",
    "recover_issuer_key",
    "recover_issuer_public_key",
    "recover_pin_key",
    "recover_pin_public_key",
    "recover_sdad",
    "select_ca_key",
    "tvr_byte1_bits",
    "verify_cda",
    "verify_cda_response",
    "verify_dda",
    "verify_fdda",
    "verify_ssad",
]
