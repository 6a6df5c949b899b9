"""Tills with client certificates on the real daemon's TLS listener: a certificate from the
configured CA and bound to a till (``posgw till add --cert``) stands for its token; one not
bound, from another CA, or of a revoked till does not."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from gateway.daemon.cli import main as posgw
from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    acquirer_fixture,
    fixed_env,
    running,
    slot_name,
    till_token,
)
from tests.gateway.security.test_daemon_access import _cli_config
from tests.gateway.security.tls_support import (
    base_url,
    client_context,
    issue_client,
    make_ca,
    tls_config,
)

__all__ = ["acquirer_fixture"]


async def _status(context: object, url: str, **headers: str) -> int:
    connector = aiohttp.TCPConnector(ssl=context)  # type: ignore[arg-type]
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, headers=headers) as response,
    ):
        return response.status


async def test_a_bound_client_certificate_stands_for_the_token(
    tmp_path: Path, acquirer: AcquirerHost, capsys: pytest.CaptureFixture[str]
) -> None:
    assert acquirer.url is not None
    ca_path, ca = make_ca(tmp_path, "shop-ca")
    bound = issue_client(tmp_path, ca, "front-c")
    unbound = issue_client(tmp_path, ca, "stranger")
    _other_path, other_ca = make_ca(tmp_path, "other-ca")
    foreign = issue_client(tmp_path, other_ca, "impostor")
    config = tls_config(tmp_path, acquirer.url, [slot_name()], client_ca_file=str(ca_path))
    cli = str(_cli_config(tmp_path))
    assert posgw(["till", "add", "front-c", "--cert", str(bound[0]), "--config", cli]) == 0
    assert "client certificate SHA-256" in capsys.readouterr().out
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        server_cert = tmp_path / "http.crt"  # the self-signed one, beside the journal
        url = f"{base_url(daemon)}/api/lanes"
        assert await _status(client_context(server_cert, *bound), url) == 200
        assert await _status(client_context(server_cert, *unbound), url) == 401
        assert await _status(client_context(server_cert), url) == 401  # no certificate
        with pytest.raises(aiohttp.ClientError):  # another CA: the handshake fails
            await _status(client_context(server_cert, *foreign), url)
        # a token still works without a certificate; a token of another till beside the
        # certificate is refused
        token = {"Authorization": f"Bearer {till_token(tmp_path)}"}
        assert await _status(client_context(server_cert), url, **token) == 200
        assert await _status(client_context(server_cert, *bound), url, **token) == 401
        assert posgw(["till", "revoke", "front-c", "--config", cli]) == 0
        assert await _status(client_context(server_cert, *bound), url) == 401
