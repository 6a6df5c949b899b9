"""Device URLs and the backend registry (python-can's ``interface`` lookup, bleak's backends).

A device is named by a URL: ``pcsc://Virtual PCD 00 00``, ``pcsc://*Contactless*``,
``serial:///dev/ttyACM0?protocol=concert_v2&baud=9600``, ``tcp://10.0.0.5:8888``,
``sim://lane1``. The scheme picks a backend module, imported only when first used; the module
exposes ``create(url: DeviceUrl, **options) -> Device``. An unknown scheme, a backend module
that is missing, or a backend library that is not installed (pyscard, pyserial) gives a
:class:`~drivers.errors.ConfigurationError` saying what to install, never an import-time crash.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote

from drivers.base import Device
from drivers.errors import ConfigurationError

__all__ = [
    "BACKENDS",
    "DeviceUrl",
    "backend_module",
    "create_device",
    "open_device",
    "parse_url",
    "register_backend",
]

#: scheme -> (module path, the third-party distribution it needs or None).
BACKENDS: dict[str, tuple[str, str | None]] = {
    "pcsc": ("drivers.pcsc", "pyscard"),
    "serial": ("drivers.serial", "pyserial"),
    "tcp": ("drivers.tcp_backend", "pyserial"),  # shares drivers.serial (and its import)
    "sim": ("drivers.sim", None),
}

_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*)://(.*)", re.DOTALL)
_QUERY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=[^&]*(&[A-Za-z_][A-Za-z0-9_]*=[^&]*)*")


@dataclass(frozen=True, slots=True)
class DeviceUrl:
    """A parsed device URL.

    Attributes:
        scheme: Backend name (``pcsc``, ``serial``...).
        target: What follows ``://`` up to the query, percent-decoded (reader name or pattern,
            device path, ``host:port``, simulator lane name).
        params: Query parameters (``?key=value&...``), as strings.
        raw: The URL as given.
    """

    scheme: str
    target: str
    params: dict[str, str] = field(default_factory=dict)
    raw: str = ""


def parse_url(url: str) -> DeviceUrl:
    """Split a device URL into scheme, target and parameters.

    The query starts at the last ``?`` that is followed by ``key=value`` pairs only, so a glob
    ``?`` in a reader pattern stays in the target.

    Raises:
        ConfigurationError: no ``scheme://`` prefix or an empty target.
    """
    match = _SCHEME.fullmatch(url.strip())
    if match is None:
        raise ConfigurationError("device URL must look like scheme://target", device=url)
    scheme, rest = match.group(1), match.group(2)
    params: dict[str, str] = {}
    cut = rest.rfind("?")
    if cut >= 0 and _QUERY.fullmatch(rest[cut + 1 :]):
        params = dict(parse_qsl(rest[cut + 1 :], keep_blank_values=True))
        rest = rest[:cut]
    target = unquote(rest)
    if not target:
        raise ConfigurationError("device URL has an empty target", device=url)
    return DeviceUrl(scheme, target, params, url)


def register_backend(scheme: str, module: str, requires: str | None = None) -> None:
    """Register (or replace) the backend module of a scheme.

    Args:
        scheme: URL scheme, lower case.
        module: Importable module path exposing ``create(url, **options)``.
        requires: Third-party distribution the module needs, named in error messages.
    """
    BACKENDS[scheme.lower()] = (module, requires)


def backend_module(scheme: str) -> ModuleType:
    """Import and return the backend module of ``scheme``.

    Raises:
        ConfigurationError: unknown scheme, backend not installed, or its library missing.
    """
    try:
        module_path, requires = BACKENDS[scheme.lower()]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigurationError(
            f"unknown device scheme {scheme!r} (known: {known})"
        ) from None
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "?"
        if missing == module_path or module_path.startswith(f"{missing}."):
            raise ConfigurationError(
                f"backend {scheme!r} is not available (module {module_path} not found)"
            ) from exc
        hint = f"; install it with: pip install {requires}" if requires else ""
        raise ConfigurationError(
            f"backend {scheme!r} needs a library that is not installed ({missing}){hint}"
        ) from exc
    if not callable(getattr(module, "create", None)):
        raise ConfigurationError(f"backend module {module_path} has no create()")
    return module


def create_device(url: str | DeviceUrl, **options: Any) -> Device:
    """Create (but do not open) the device a URL names.

    Args:
        url: Device URL, as a string or parsed.
        **options: Backend options (timeouts, clock...); URL parameters are passed too, the
            keyword arguments win.

    Raises:
        ConfigurationError: bad URL, unknown scheme, missing library, bad option.
    """
    parsed = url if isinstance(url, DeviceUrl) else parse_url(url)
    module = backend_module(parsed.scheme)
    device = module.create(parsed, **options)
    if not isinstance(device, Device):
        raise ConfigurationError(f"backend {parsed.scheme!r} returned a non-device")
    return device


async def open_device(url: str | DeviceUrl, **options: Any) -> Device:
    """Create and open the device a URL names (use it as an async context manager).

    Raises:
        ConfigurationError: bad URL, unknown scheme, missing library, bad option.
        DeviceUnavailable: the device is not reachable now.
    """
    device = create_device(url, **options)
    await device.open()
    return device
