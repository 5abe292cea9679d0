"""Run ``pillarbox`` as a real child process in tests, and read its log as it is written."""

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

STARTED = 'msg="pillarbox started"'
STARTUP_TIMEOUT = 60.0


def write_config(directory: Path, extra: str = "", hostname: str = "mail.test.example") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pillarbox.toml"
    path.write_text(f'hostname = "{hostname}"\ndata_dir = "data"\n' + extra)
    return path


def cli_env(config: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PILLARBOX_CONFIG", None)
    env.pop("NOTIFY_SOCKET", None)
    if config is not None:
        env["PILLARBOX_CONFIG"] = str(config)
    return env


def run_cli(
    args: Sequence[str], *, config: Path | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(config),
        timeout=timeout,
    )


class ServerProcess:
    """A server child process whose stderr lines are collected by a reader thread."""

    def __init__(
        self, args: Sequence[str], config: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env or cli_env(config),
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)
        self._new.put(None)

    def wait_for(self, match: Callable[[str], bool] | str, timeout: float = STARTUP_TIMEOUT) -> str:
        """Block until a log line matches; fails when the process exits first."""
        pred = match if callable(match) else (lambda s, m=match: m in s)
        for line in list(self.lines):
            if pred(line):
                return line
        while True:
            try:
                line = self._new.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no log line matching {match!r} within {timeout}s:\n"
                    + "\n".join(self.lines[-30:])
                ) from None
            if line is None:
                raise AssertionError(
                    f"server exited ({self.proc.wait()}) before {match!r}:\n"
                    + "\n".join(self.lines[-30:])
                )
            if pred(line):
                return line

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tracebacks(self) -> list[str]:
        return [line for line in self.lines if "Traceback" in line]


ALL_SERVICES = (
    "smtp",
    "submission",
    "submissions",
    "imap",
    "imaps",
    "http",
    "https",
    "admin_http",
)


def all_services_config(directory: Path) -> str:
    """Configuration text for one loopback listener with every service on a free port,
    with a certificate file pair written into ``directory`` (as a deployment with
    certificates from files has): what idle-memory measurements should start."""
    import socket

    from app.tls.certs import generate_self_signed

    directory.mkdir(parents=True, exist_ok=True)
    generate_self_signed(["mail.test.example"], directory / "cert.pem", directory / "key.pem")
    ports = []
    for _ in ALL_SERVICES:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
    blocks = "".join(
        f"\n[listeners.local.{name}]\nenabled = true\nport = {port}\n"
        for name, port in zip(ALL_SERVICES, ports, strict=True)
    )
    return (
        '\n[listeners.local]\nips = ["127.0.0.1"]\n'
        "[listeners.local.tls]\n"
        f'certificates = [{{cert = "{directory / "cert.pem"}", key = "{directory / "key.pem"}"}}]\n'
        + blocks
    )
