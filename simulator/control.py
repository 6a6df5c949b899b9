"""The control socket of ``posgw-sim serve``: one JSON object per line, each way.

Request ``{"cmd": "insert" | "tap" | "remove" | "status", "lane": N, "card": PROFILE,
"pin": "1234"}``; answer ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. The socket
is a Unix socket (default ``$XDG_RUNTIME_DIR/posgw-sim.sock``, else ``/tmp/posgw-sim-UID.sock``)
created with mode 0600: only its owner drives the simulator. A PIN sent here never appears in
an answer or a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["ControlError", "default_socket_path", "remove_socket", "request", "serve_control"]

MAX_LINE = 64 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlError(RuntimeError):
    """The control socket is unreachable or answered something that is not JSON."""


def default_socket_path() -> Path:
    """Where ``serve`` listens and the commands connect by default."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "posgw-sim.sock"
    return Path(tempfile.gettempdir()) / f"posgw-sim-{os.getuid()}.sock"


async def serve_control(path: Path, handler: Handler) -> asyncio.Server:
    """Listen on ``path``; each request line goes to ``handler``, its dict is the answer."""
    remove_socket(path)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise TypeError("request must be a JSON object")
                    answer = await handler(req)
                except (ValueError, TypeError) as exc:
                    answer = {"ok": False, "error": f"bad request: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    old_umask = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(client, str(path), limit=MAX_LINE)
    finally:
        os.umask(old_umask)
    return server


def remove_socket(path: Path) -> None:
    """Remove a (stale) socket file; absent is fine."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def request(path: Path, payload: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """Send one request and return the answer (blocking: for the command line).

    Raises:
        ControlError: no server at ``path``, or a malformed answer.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlError(f"no simulator at {path} (is 'posgw-sim serve' running?)") from exc
    try:
        answer = json.loads(data)
    except ValueError as exc:
        raise ControlError("malformed answer from the simulator") from exc
    if not isinstance(answer, dict):
        raise ControlError("malformed answer from the simulator")
    return answer
