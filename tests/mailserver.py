"""A configured Pillarbox server in a child process, for protocol tests.

The server listens on free loopback ports, has the domain ``example.org`` with the
accounts ``you`` (you@example.org) and ``other`` (other@example.org), a self-signed
certificate, and answers on SMTP (25), submission (587), submissions (465) and any
other service asked for. Delivered messages are read straight from the account
database (read-only; WAL allows it while the server runs).
"""

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from app.dns.loopback import LoopbackDNSServer
from app.store import admincmds
from app.store.admin import AdminDB
from app.tls.certs import generate_self_signed
from tests.serverproc import ServerProcess, write_config

PASSWORD = "secret-password-1"
OTHER_PASSWORD = "secret-password-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MailServer:
    directory: Path
    ports: dict[str, int]
    dns: LoopbackDNSServer
    proc: ServerProcess | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def config(self) -> Path:
        return self.directory / "pillarbox.toml"

    def client_tls(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.directory / "cert.pem"))
        ctx.check_hostname = False  # the certificate names mail.test.example
        return ctx

    def messages(self, account: str, mailbox: str = "Inbox") -> list[bytes]:
        """Stored messages of a mailbox, in UID order, byte-exact."""
        db = self.data / "accounts" / account / "index.db"
        if not db.exists():
            return []
        conn = apsw.Connection(
            f"file:{db}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        )
        try:
            rows = conn.execute(
                "SELECT m.file, c.data, m.size FROM message m JOIN mailbox b "
                "ON b.id = m.mailbox_id LEFT JOIN content c ON c.message_id = m.id "
                "WHERE b.name = ? ORDER BY m.uid",
                (mailbox,),
            ).fetchall()
        finally:
            conn.close()
        out = []
        for file, data, size in rows:
            blob = (
                bytes(data)
                if data is not None
                else (self.data / "accounts" / account / "msg" / file).read_bytes()
            )
            assert len(blob) == size, "stored size differs from the recorded size"
            out.append(blob)
        return out

    def stop(self) -> int:
        assert self.proc is not None
        try:
            return self.proc.stop()
        finally:
            self.dns.stop()


def setup_server(
    directory: Path,
    services: Sequence[str] = ("smtp", "submission", "submissions"),
    extra_config: str = "",
    top_config: str = "",
    limits: str = "",
) -> MailServer:
    """Write a configuration and create the accounts. ``top_config``: top-level
    settings; ``limits``: lines of the [limits] table; ``extra_config``: more tables."""
    ports = {s: free_port() for s in services}
    dns = LoopbackDNSServer().start()
    generate_self_signed(["mail.test.example"], directory / "cert.pem", directory / "key.pem")
    blocks = "".join(
        f"\n[listeners.local.{s}]\nenabled = true\nport = {p}\n" for s, p in ports.items()
    )
    write_config(
        directory,
        'postmaster_account = "you"\n'
        + top_config
        + f'\n[dns]\nservers = ["{dns.address}"]\ntimeout = 2.0\n'
        + "\n[limits]\nunknown_recipient_delay_s = 0.05\n"
        + limits
        + "\n"
        + extra_config
        + '\n[listeners.local]\nips = ["127.0.0.1"]\n'
        '[listeners.local.tls]\ncertificates = [{cert = "cert.pem", key = "key.pem"}]\n' + blocks,
    )
    db = AdminDB(directory / "data" / "admin.db")
    try:
        admincmds.run(db, "domain.add", {"domain": "example.org"})
        admincmds.run(
            db,
            "account.add",
            {"account": "you", "address": "you@example.org", "password": PASSWORD},
        )
        admincmds.run(
            db,
            "account.add",
            {"account": "other", "address": "other@example.org", "password": OTHER_PASSWORD},
        )
    finally:
        db.close()
    return MailServer(directory, ports, dns)


def start(server: MailServer) -> MailServer:
    server.proc = ServerProcess(["serve"], config=server.config)
    server.proc.wait_for("pillarbox started")
    return server
