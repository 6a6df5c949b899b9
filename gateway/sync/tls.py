"""TLS for the head-office MQTT connection: the client's ``ssl.SSLContext``.

MQTT over TLS (MQTT 3.1.1, 5.1; IANA port 8883): the broker's certificate must chain to
``ca_file`` (else the system's trust store) and name the configured host (``check_hostname``);
TLS 1.2 is the floor. A client certificate is loaded when the broker requires one. Nothing here
logs a path's content or a key.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.errors import ConfigError

__all__ = ["TlsConfigError", "client_tls_context"]


class TlsConfigError(ConfigError):
    """A CA, certificate or key file cannot be used; the message names the file, not its data."""


def client_tls_context(
    *, ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A verifying client context for the broker.

    Args:
        ca_file: PEM bundle of the CAs to trust (default: the system's store).
        cert_file: PEM client certificate (with ``key_file``).
        key_file: PEM private key of ``cert_file``.

    Raises:
        TlsConfigError: a file is missing, unreadable or not what it should be.
    """
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=None if ca_file is None else str(ca_file)
        )
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"mqtt.ca_file {ca_file}: {_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"mqtt.cert_file {cert_file} / key_file {key_file}: {_reason(exc)}"
            ) from None
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a usable PEM file"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
