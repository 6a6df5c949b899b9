"""The child process of the audit SIGKILL test (no tests here): a real daemon whose tills start
payments on every lane, cancel them while the lane waits for the card, and start again, printing
``S <payment id>`` as soon as each start is answered (202); it runs until it is killed.

Run as ``python -m tests.gateway.security.audit_child TMP ACQUIRER_URL SLOT...``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp

from gateway.daemon.daemon import Daemon
from tests.gateway.daemon_support import Till, fixed_env, make_config, running, till_token


def config(tmp: Path, url: str, slots: list[str]) -> Any:
    """The configuration the child and the test's restarted daemon share."""
    return make_config(tmp, url, slots)


async def _till(till: Till, lane: int) -> None:
    amount = 100 + lane
    while True:
        status, started = await till.pay(lane, amount)
        if status == 409:  # the lane still finishes the payment before: ask again
            await asyncio.sleep(0.005)
            continue
        assert status == 202, started
        # one write per line: with PYTHONUNBUFFERED (CI sets it) print's pieces are separate
        # writes, and a SIGKILL between them left a line "S " without its id
        sys.stdout.write(f"S {started['id']}\n")
        sys.stdout.flush()
        await till.cancel(str(started["id"]))
        await till.get(str(started["id"]), wait=5)
        amount += 1


async def _main(tmp: Path, url: str, slots: list[str]) -> None:
    daemon = Daemon(config(tmp, url, slots), env=fixed_env, environ={})
    headers = {"Authorization": f"Bearer {till_token(tmp)}"}
    async with running(daemon), aiohttp.ClientSession(headers=headers) as http:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        print("R", flush=True)
        await asyncio.gather(*(_till(till, lane) for lane in range(1, len(slots) + 1)))


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))
