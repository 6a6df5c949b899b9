"""A configured part whose library is missing stops the start-up, naming the dependency.

The library's absence is simulated the way Python itself reports it: ``sys.modules[name] =
None`` makes ``import name`` raise ImportError with ``.name`` set (the real packages are
installed here). The gateway modules that import it are unloaded for the test and restored.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.daemon.daemon import Daemon
from gateway.errors import ConfigError, MissingDependency
from tests.gateway.daemon_support import fixed_env, make_config


@pytest.fixture
def without() -> Iterator[object]:
    """``without(library, *packages)``: hide ``library`` and unload ``packages`` until teardown."""
    saved = dict(sys.modules)

    def hide(library: str, *packages: str) -> None:
        for name in list(sys.modules):
            if any(name == p or name.startswith(f"{p}.") for p in packages):
                del sys.modules[name]
        sys.modules[library] = None  # type: ignore[assignment]

    yield hide
    sys.modules.clear()
    sys.modules.update(saved)


async def _start(daemon: Daemon) -> None:
    async with asyncio.timeout(15):
        await daemon.run()


async def test_status_page_without_prometheus_client_is_a_start_up_error(
    tmp_path: Path, without: object
) -> None:
    config = make_config(tmp_path, "http://127.0.0.1:9", ["missing-web"])
    without("prometheus_client", "gateway.web")  # type: ignore[operator]
    with pytest.raises(MissingDependency) as caught:
        await _start(Daemon(config, env=fixed_env, environ={}))
    assert caught.value.module == "prometheus_client"
    assert "prometheus_client" in str(caught.value) and "status page" in str(caught.value)
    assert isinstance(caught.value, ConfigError)


async def test_mqtt_configured_without_aiomqtt_is_a_start_up_error(
    tmp_path: Path, without: object
) -> None:
    config = make_config(
        tmp_path, "http://127.0.0.1:9", ["missing-sync"], mqtt={"host": "127.0.0.1"}
    )
    without("aiomqtt", "gateway.sync")  # type: ignore[operator]
    with pytest.raises(MissingDependency) as caught:
        await _start(Daemon(config, env=fixed_env, environ={}))
    assert caught.value.module == "aiomqtt"
    assert "head-office sync" in str(caught.value)
