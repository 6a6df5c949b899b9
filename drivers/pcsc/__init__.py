"""The ``pcsc://`` backend: PC/SC readers through pcscd.

URL: ``pcsc://<reader name or glob>[?backend=native|pyscard&share=exclusive|shared&
protocol=any|T=0|T=1&timeout=s]``.

``backend=native`` (the default) speaks pcscd's socket protocol on the event loop
(:mod:`drivers.pcsc.native`); ``backend=pyscard`` calls pyscard on the device's thread
(:mod:`drivers.pcsc.reader`). Both give the same events, errors and outcomes. The native
client knows pcsc-lite's IPC protocol 4.4 and 4.5 (pcsc-lite 1.9 to 2.x); another version
is a :class:`~drivers.errors.ConfigurationError` naming ``backend=pyscard`` as the way out.
Importing this package imports pyscard; the registry turns its absence into a
:class:`~drivers.errors.ConfigurationError` that says to ``pip install pyscard``.
"""

from __future__ import annotations

from typing import Any

import smartcard.scard  # noqa: F401 - fail here (registry time) when pyscard is missing

from drivers.errors import ConfigurationError
from drivers.pcsc.common import PROTOCOLS, SHARE_MODES, PcscReader
from drivers.pcsc.native import NativePcscReader
from drivers.pcsc.reader import PyscardReader
from drivers.registry import DeviceUrl

__all__ = ["BACKENDS", "NativePcscReader", "PcscReader", "PyscardReader", "create"]

BACKENDS: dict[str, type[PcscReader]] = {"native": NativePcscReader, "pyscard": PyscardReader}


def create(url: DeviceUrl, **options: Any) -> PcscReader:
    """Backend entry point (see the module docstring for the URL).

    Raises:
        ConfigurationError: an unknown option or a bad value.
    """
    merged: dict[str, Any] = {**url.params, **options}
    backend = str(merged.pop("backend", "native"))
    share = str(merged.pop("share", "exclusive"))
    protocol = str(merged.pop("protocol", "any"))
    timeout = merged.pop("timeout", 5.0)
    clock = merged.pop("clock", None)
    if merged:
        raise ConfigurationError(f"unknown pcsc options: {sorted(merged)}", device=url.raw)
    if backend not in BACKENDS:
        raise ConfigurationError(f"backend must be one of {sorted(BACKENDS)}", device=url.raw)
    if share not in SHARE_MODES:
        raise ConfigurationError(f"share must be one of {sorted(SHARE_MODES)}", device=url.raw)
    if protocol not in PROTOCOLS:
        raise ConfigurationError(f"protocol must be one of {sorted(PROTOCOLS)}", device=url.raw)
    try:
        seconds = None if timeout is None else float(timeout)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError("timeout must be a number", device=url.raw) from exc
    extra = {"clock": clock} if clock is not None else {}
    return BACKENDS[backend](
        url=url.raw, pattern=url.target, share=share, protocol=protocol, timeout=seconds, **extra
    )
