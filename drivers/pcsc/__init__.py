"""The ``pcsc://`` backend: PC/SC readers through pyscard and pcscd.

URL: ``pcsc://<reader name or glob>[?share=exclusive|shared&protocol=any|T=0|T=1&timeout=s]``.
Importing this package imports pyscard; the registry turns its absence into a
:class:`~drivers.errors.ConfigurationError` that says to ``pip install pyscard``.
"""

from __future__ import annotations

from typing import Any

import smartcard.scard  # noqa: F401 - fail here (registry time) when pyscard is missing

from drivers.errors import ConfigurationError
from drivers.pcsc.reader import PROTOCOLS, SHARE_MODES, PcscReader
from drivers.registry import DeviceUrl

__all__ = ["PcscReader", "create"]


def create(url: DeviceUrl, **options: Any) -> PcscReader:
    """Backend entry point (see the module docstring for the URL).

    Raises:
        ConfigurationError: an unknown option or a bad value.
    """
    merged: dict[str, Any] = {**url.params, **options}
    share = str(merged.pop("share", "exclusive"))
    protocol = str(merged.pop("protocol", "any"))
    timeout = merged.pop("timeout", 5.0)
    clock = merged.pop("clock", None)
    if merged:
        raise ConfigurationError(f"unknown pcsc options: {sorted(merged)}", device=url.raw)
    if share not in SHARE_MODES:
        raise ConfigurationError(f"share must be one of {sorted(SHARE_MODES)}", device=url.raw)
    if protocol not in PROTOCOLS:
        raise ConfigurationError(f"protocol must be one of {sorted(PROTOCOLS)}", device=url.raw)
    try:
        seconds = None if timeout is None else float(timeout)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError("timeout must be a number", device=url.raw) from exc
    extra = {"clock": clock} if clock is not None else {}
    return PcscReader(
        url=url.raw, pattern=url.target, share=share, protocol=protocol, timeout=seconds, **extra
    )
