"""Helpers for the sandbox tests: run ``posgw-sim`` subcommands as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

SIM = str(Path(sys.executable).parent / "posgw-sim")
ROOT = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    """The environment of a child ``posgw-sim`` (the repository importable)."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@contextlib.asynccontextmanager
async def acquirer(*args: str) -> AsyncIterator[str]:
    """``posgw-sim acquirer --port 0 ARGS`` as a process; yields its base URL."""
    proc = await asyncio.create_subprocess_exec(
        SIM, "acquirer", "--port", "0", *args, env=env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode()
        if not line.startswith("listening on "):
            assert proc.stderr is not None
            err = (await proc.stderr.read()).decode()
            raise AssertionError(f"acquirer did not start: {line!r} {err}")
        yield line.split()[-1]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            await proc.wait()


async def run_sim(*args: str, limit_s: float = 60) -> tuple[int, str, str]:
    """Run ``posgw-sim ARGS``; returns (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        SIM, *args, env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def pay_json(*args: str) -> tuple[int, dict[str, Any]]:
    """``posgw-sim pay --json ARGS``: exit status and the JSON summary."""
    code, out, err = await run_sim("pay", "--json", "--random-draw", "99", *args)
    assert out.strip(), err
    return code, json.loads(out)
