"""Fixtures of the acquirer tests: the simulated acquirer host on 127.0.0.1, a client, a card.

* ``host``: :class:`simulator.acquirer_host.AcquirerHost` started on a free port, stopped after.
* ``client``: an open :class:`gateway.acquirer.AcquirerClient` to it, with short time-outs,
  the backoff waits recorded in ``client_sleeps`` instead of slept.
* :func:`captured_request`: one real authorisation request from the kernel (visa_credit, a real
  ARQC), captured by an authoriser that answers "unable to go online".
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import pytest
import pytest_asyncio

from gateway.acquirer import AcquirerClient, AuthorisationRequest
from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from simulator.cli_pay import _SyncChannel, fixed_environment, kernel_config
from simulator.pinpad import VirtualPinPad
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.environment import TransactionRequest

__all__ = [
    "FIXED_NOW",
    "Keys",
    "captured_request",
    "client_fixture",
    "client_sleeps_fixture",
    "free_port",
    "host_fixture",
    "make_client",
    "wire_request",
]

FIXED_NOW = datetime(2026, 11, 25, 12, 0, 0)
PROFILE = "visa_credit"
AMOUNT = 1250  # above visa_credit's offline limit: the kernel goes online


class Keys:
    """Idempotency keys ``test-1``, ``test-2``... (the injected key factory)."""

    def __init__(self, prefix: str = "test") -> None:
        self._count = itertools.count(1)
        self.prefix = prefix
        self.made: list[str] = []

    def __call__(self) -> str:
        key = f"{self.prefix}-{next(self._count)}"
        self.made.append(key)
        return key


class _Capture:
    def __init__(self) -> None:
        self.requests: list[OnlineRequest] = []

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        self.requests.append(request)
        return None


_captured: list[OnlineRequest] = []


async def captured_request() -> OnlineRequest:
    """The kernel's authorisation request for visa_credit, 12.50 EUR (computed once)."""
    if not _captured:
        capture = _Capture()
        await run_contact_transaction(
            _SyncChannel(VirtualCard.from_profile(PROFILE)),
            config=kernel_config(),
            request=TransactionRequest(amount=AMOUNT),
            env=fixed_environment(),
            online=capture,
            pinpad=VirtualPinPad("1234"),
        )
        assert len(capture.requests) == 1, "visa_credit at 12.50 must go online"
        _captured.append(capture.requests[0])
    return _captured[0]


async def wire_request(*, stan: int = 1, icc_data: bytes | None = None) -> AuthorisationRequest:
    """The captured kernel request as the client's AuthorisationRequest."""
    online = await captured_request()
    assert online.pan is not None
    return AuthorisationRequest(
        amount=online.amount,
        currency=online.currency,
        transaction_type=online.transaction_type,
        icc_data=online.icc_data if icc_data is None else icc_data,
        pan=online.pan,
        terminal_id="LANE0001",
        merchant_id="SHOP0001",
        stan=stan,
        local_datetime=FIXED_NOW,
        pin=online.online_pin,
    )


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture(name="host")
async def host_fixture() -> AsyncIterator[AcquirerHost]:
    """The simulated acquirer host on 127.0.0.1, a free port."""
    server = AcquirerHost()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(name="client_sleeps")
def client_sleeps_fixture() -> list[float]:
    """The backoff waits the ``client`` fixture was asked for (not slept)."""
    return []


def make_client(
    url: str,
    sleeps: list[float],
    *,
    random: Callable[[], float] = lambda: 0.5,
    total_timeout: float = 5.0,
    max_attempts: int = 3,
) -> AcquirerClient:
    """A client with short time-outs whose backoff waits are recorded, not slept."""

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    return AcquirerClient(
        base_url=url,
        connect_timeout=2.0,
        total_timeout=total_timeout,
        max_attempts=max_attempts,
        backoff_s=0.1,
        backoff_cap_s=0.4,
        random=random,
        sleep=sleep,
    )


@pytest_asyncio.fixture(name="client")
async def client_fixture(
    host: AcquirerHost, client_sleeps: list[float]
) -> AsyncIterator[AcquirerClient]:
    """An open client of ``host``."""
    assert host.url is not None
    async with make_client(host.url, client_sleeps) as opened:
        yield opened
