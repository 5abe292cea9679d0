"""An in-process Pillarbox with IMAP on ephemeral loopback ports, and imaplib helpers.

The server is ``app.serve.Server`` built from a temporary configuration, started in
the test's event loop; the IMAP listeners are started with port 0 (the configuration
cannot say "ephemeral": 0 means the standard port there). Blocking clients (imaplib,
imapclient, Debian's clients) run in a thread via ``asyncio.to_thread``.
"""

import imaplib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.config.static import parse
from app.imap import service
from app.imap.service import start_listener
from app.listening import LazyListener
from app.serve import Server
from app.services import Services
from app.store import AccountStore, admincmds
from app.store.admin import AdminDB
from app.tls.certs import generate_self_signed

ACCOUNT = "you"
ADDRESS = "you@example.com"
PASSWORD = "s3cret-password"
HOST = "127.0.0.1"


@dataclass
class IMAPServer:
    """A running server: ports of the STARTTLS and the implicit-TLS listener."""

    server: Server
    port: int
    tls_port: int
    directory: Path
    listeners: list[LazyListener] = field(default_factory=list)

    @property
    def services(self) -> Services:
        assert self.server.services is not None
        return self.server.services

    async def store(self) -> AccountStore:
        return await self.services.accounts.get(ACCOUNT)


def client_context() -> ssl.SSLContext:
    """TLS client context for loopback tests: self-signed, no verification."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def write_config(directory: Path, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    generate_self_signed(["mail.example.com"], directory / "cert.pem", directory / "key.pem")
    path = directory / "pillarbox.toml"
    path.write_text(
        'hostname = "mail.example.com"\n'
        'data_dir = "data"\n'
        f"{extra}\n"
        "[listeners.local]\n"
        'ips = ["127.0.0.1"]\n'
        "[listeners.local.tls]\n"
        'certificates = [{ cert = "cert.pem", key = "key.pem" }]\n'
    )
    return path


def add_account(data: Path, account: str = ACCOUNT, address: str = ADDRESS) -> None:
    db = AdminDB(data / "admin.db")
    try:
        if not db.snapshot().domains:
            admincmds.run(db, "domain.add", {"domain": "example.com"})
        admincmds.run(
            db, "account.add", {"account": account, "address": address, "password": PASSWORD}
        )
    finally:
        db.close()


async def start_server(directory: Path, extra: str = "") -> IMAPServer:
    path = write_config(directory, extra)
    (directory / "data").mkdir(exist_ok=True)
    add_account(directory / "data")
    cfg = parse(path.read_text(), str(path))
    server = Server(cfg)
    await server.start()
    svc = server.services
    assert svc is not None
    await service.prepare(svc)
    lst = cfg.listeners["local"]
    plain = await start_listener(svc, "local", lst, "imap", port=0)
    tls = await start_listener(svc, "local", lst, "imaps", port=0)
    server.servers += plain + tls
    listeners = [x for x in plain + tls if isinstance(x, LazyListener)]
    ports = [x.sockets[0].getsockname()[1] for x in listeners]
    return IMAPServer(server, ports[0], ports[1], directory, listeners)


@pytest.fixture
async def imap_server(tmp_path: Path) -> AsyncIterator[IMAPServer]:
    srv = await start_server(tmp_path / "server")
    try:
        yield srv
    finally:
        await srv.server.shutdown()


def connect(srv: IMAPServer, *, tls: bool = True) -> imaplib.IMAP4:
    """A client on the STARTTLS port, after STARTTLS unless ``tls`` is False."""
    c = imaplib.IMAP4(HOST, srv.port, timeout=30)
    if tls:
        c.starttls(client_context())
    return c


def login(srv: IMAPServer, user: str = ADDRESS) -> imaplib.IMAP4:
    c = connect(srv)
    c.login(user, PASSWORD)
    return c


def login_tls(srv: IMAPServer) -> imaplib.IMAP4_SSL:
    c = imaplib.IMAP4_SSL(HOST, srv.tls_port, ssl_context=client_context(), timeout=30)
    c.login(ADDRESS, PASSWORD)
    return c


class Raw:
    """A line-level client for exact protocol tests (implicit TLS port by default)."""

    def __init__(self, srv: IMAPServer, *, tls: bool = True) -> None:
        import socket

        sock = socket.create_connection((HOST, srv.tls_port if tls else srv.port), timeout=30)
        self.sock = client_context().wrap_socket(sock) if tls else sock
        self.f = self.sock.makefile("rwb")
        self.greeting = self.f.readline()
        self._n = 0

    def send(self, data: bytes) -> None:
        self.f.write(data)
        self.f.flush()

    def line(self) -> bytes:
        return self.f.readline()

    def until_tagged(self, tag: bytes) -> list[bytes]:
        out: list[bytes] = []
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(b"".join(out))
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    def cmd(self, text: bytes | str) -> list[bytes]:
        """Send one command with a fresh tag; return every line up to its tagged reply."""
        self._n += 1
        tag = b"t%d" % self._n
        data = text.encode() if isinstance(text, str) else text
        self.send(tag + b" " + data + b"\r\n")
        return self.until_tagged(tag)

    def login(self) -> None:
        assert self.cmd(f'LOGIN {ADDRESS} "{PASSWORD}"')[-1].split()[1] == b"OK"

    def close(self) -> None:
        self.sock.close()


def status(lines: list[bytes]) -> bytes:
    """The status word of the tagged reply (last line)."""
    return lines[-1].split()[1]
