"""Client side of the control socket (``DATA_DIR/ctl``) of a running server.

Protocol: the client sends one JSON object ``{"cmd": NAME, "args": {...}}`` on one
line; the server answers with one line ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": MESSAGE}``. The socket is mode 0600, so only the user the
server runs as (and root) can use it.
"""

import json
import socket
from pathlib import Path
from typing import Any

CTL_NAME = "ctl"
MAX_LINE = 16 * 1024 * 1024


class CtlUnavailable(Exception):
    """No server answers on the control socket."""


class CtlError(Exception):
    """The server refused the command; the message is the server's."""


def ctl_path(data_dir: Path) -> Path:
    return data_dir / CTL_NAME


def call(
    data_dir: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 60.0
) -> Any:
    """Send one command to the server running on ``data_dir`` and return its result."""
    path = ctl_path(data_dir)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise CtlUnavailable(str(path)) from e
        s.sendall(json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise CtlError("server closed the control connection")
            buf += chunk
            if len(buf) > MAX_LINE:
                raise CtlError("answer too long")
    finally:
        s.close()
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise CtlError(str(reply.get("error", "failed")))
    return reply.get("result")
