"""Helpers of the security daemon tests: the daemon on a real TLS listener, pinned clients.

* :func:`tls_config`: ``make_config`` with TLS (a self-signed certificate made at first start),
  manager logins on, and the lockout and limits the tests need.
* :func:`pinned_session`: an aiohttp session that trusts exactly the daemon's certificate
  (its SHA-256 fingerprint, as a till pins it), optionally sending a till token.
* :func:`add_manager`, :func:`login`, :func:`csrf_of`: a manager account and its session.
* :func:`make_ca`, :func:`issue_client`, :func:`client_context`: a CA and till client
  certificates (cryptography), and a client context that presents one.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore
from tests.gateway.daemon_support import Till, make_config

PASSWORD = "manager password 1"


def tls_config(
    tmp_path: Path, acquirer_url: str, slots: list[str], **http: Any
) -> Any:
    """A daemon configuration with TLS, logins, a 3-failure lockout."""
    return make_config(
        tmp_path,
        acquirer_url,
        slots,
        http={"host": "127.0.0.1", "port": 0, "tls": True, "status_login": True, **http},
        security={"login_max_failures": 3, "login_cooldown": 600},
    )


@contextlib.asynccontextmanager
async def pinned_session(
    daemon: Daemon, token: str | None = None
) -> AsyncIterator[aiohttp.ClientSession]:
    """A session pinned to the daemon's certificate (and sending ``token`` when given)."""
    assert daemon.tls_fingerprint is not None
    digest = bytes.fromhex(daemon.tls_fingerprint.replace(":", ""))
    connector = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(digest))
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1 (an address, not a name)
    async with aiohttp.ClientSession(connector=connector, headers=headers, cookie_jar=jar) as s:
        yield s


def base_url(daemon: Daemon) -> str:
    """``https://127.0.0.1:PORT``."""
    return f"https://127.0.0.1:{daemon.http_port}"


def tls_till(session: aiohttp.ClientSession, daemon: Daemon) -> Till:
    """The till client over TLS."""
    till = Till(session, daemon.http_port or 0)
    till.base = base_url(daemon)
    return till


def add_manager(journal: Path, name: str, role: str = "manager") -> None:
    """A manager account (as ``posgw manager add`` makes it)."""
    store = CredentialStore.open(journal)
    try:
        store.add_manager(name, PASSWORD, role=role, actor="test")  # type: ignore[arg-type]
    finally:
        store.close()


async def login(
    session: aiohttp.ClientSession, daemon: Daemon, name: str, password: str = PASSWORD
) -> aiohttp.ClientResponse:
    """POST the login form (redirects not followed); the response."""
    async with session.post(
        f"{base_url(daemon)}/login",
        data={"name": name, "password": password},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response


async def csrf_of(session: aiohttp.ClientSession, daemon: Daemon) -> str:
    """The session's CSRF token, read from the approvals page's forms."""
    async with session.get(f"{base_url(daemon)}/manager") as response:
        assert response.status == 200, await response.text()
        match = re.search(r'name=csrf value="([^"]+)"', await response.text())
    assert match is not None
    return match.group(1)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def make_ca(directory: Path, name: str) -> tuple[Path, Any]:
    """A test CA (certificate file, private key) for client certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, (cert, key)


def issue_client(directory: Path, ca: Any, name: str) -> tuple[Path, Path]:
    """A client certificate and key for till ``name``, signed by ``ca`` (from :func:`make_ca`)."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def client_context(server_cert: Path, cert: Path | None = None, key: Path | None = None) -> Any:
    """A client TLS context trusting exactly the daemon's certificate, with a client
    certificate when given."""
    context = ssl.create_default_context(cafile=str(server_cert))
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
    return context
