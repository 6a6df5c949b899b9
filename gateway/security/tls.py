"""TLS for the till API and status page: a certificate from files, or a self-signed one.

With ``[http] cert_file`` and ``key_file`` the listener uses them. Without, the daemon makes a
self-signed certificate at first start (ECDSA P-256, ten years, the shop's name and the
listener's host as subject alternative names) beside the journal, the key file mode 0600, and
keeps it across restarts. Tills pin its SHA-256 fingerprint (``posgw tls fingerprint``), as
Adyen's local Terminal API does with its device certificates. Rotating: delete both files and
restart (a new pair is made), then give the tills the new fingerprint (docs/security.md).

The server context is TLS 1.2 or newer (RFC 9325, 3.1.1), Python's default secure ciphers.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.security.errors import TlsSetupError

__all__ = ["certificate_sha256", "ensure_self_signed", "fingerprint", "server_context"]

VALIDITY_DAYS = 3650


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def ensure_self_signed(
    cert_file: Path, key_file: Path, *, common_name: str, names: list[str]
) -> bool:
    """Make a self-signed certificate and key at these paths unless both exist.

    Args:
        cert_file: PEM certificate path.
        key_file: PEM private key path (written 0600).
        common_name: The subject's CN (the shop).
        names: DNS names and IP addresses for the subject alternative names.

    Returns:
        True when a new pair was made.

    Raises:
        TlsSetupError: Only one of the two exists, or they cannot be written.
    """
    if cert_file.exists() and key_file.exists():
        return False
    if cert_file.exists() or key_file.exists():
        raise TlsSetupError(f"{cert_file} and {key_file}: one exists without the other")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(key_pem)
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise TlsSetupError(f"cannot write {cert_file}: {exc.strerror}") from None
    return True


def fingerprint(cert_file: Path) -> str:
    """The certificate's SHA-256 fingerprint, as ``AB:CD:...`` (what a till pins).

    Raises:
        TlsSetupError: The file cannot be read or is not a PEM certificate.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise TlsSetupError(f"{cert_file}: not a readable PEM certificate") from exc
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def server_context(
    cert_file: Path, key_file: Path, *, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """A TLS 1.2+ server context with this certificate and key.

    With ``client_ca_file``, a client may present a certificate signed by that CA
    (``CERT_OPTIONAL``: tills with a token need none; one that fails verification ends the
    handshake).

    Raises:
        TlsSetupError: The files cannot be read or do not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
        if client_ca_file is not None:
            context.load_verify_locations(cafile=client_ca_file)
            context.verify_mode = ssl.CERT_OPTIONAL
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"{cert_file} / {key_file}: cannot be used ({exc})") from None
    return context


def certificate_sha256(cert_file: Path) -> str:
    """SHA-256 (lower-case hex, no colons) of a PEM certificate's DER: what binds a till's
    client certificate (``posgw till add --cert``).

    Raises:
        TlsSetupError: The file cannot be read or is not a PEM certificate.
    """
    return fingerprint(cert_file).replace(":", "").lower()
