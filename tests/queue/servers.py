"""Real Pillarbox servers for queue tests: a sender (submission) and a receiver."""

import json
import smtplib
from pathlib import Path
from typing import Any

from app.store import admincmds
from app.store.admin import AdminDB
from tests.mailserver import PASSWORD, MailServer, free_port, setup_server
from tests.serverproc import ServerProcess, run_cli


def sender_server(directory: Path, queue_config: str) -> MailServer:
    """A server with submission whose queue is configured by ``queue_config``."""
    return setup_server(directory, services=("submission",), extra_config=queue_config)


def receiver_server(directory: Path) -> MailServer:
    """A server for remote.example (friend@remote.example is account ``other``)."""
    server = setup_server(directory, services=("smtp",))
    db = AdminDB(server.data / "admin.db")
    try:
        admincmds.run(db, "domain.add", {"domain": "remote.example"})
        admincmds.run(db, "address.add", {"address": "friend@remote.example", "account": "other"})
    finally:
        db.close()
    return server


def closed_port_transport() -> str:
    """Queue config routing everything to a loopback port nobody listens on."""
    return (
        "[queue.transports.nowhere]\n"
        f'kind = "smarthost"\nhost = "127.0.0.1"\nport = {free_port()}\ntls = "none"\n'
        '[queue.routes.all]\ntransport = "nowhere"\n'
    )


def message(subject: str, to: str = "friend@remote.example") -> bytes:
    return (
        f"From: You <you@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nhello {subject}\r\n"
    ).encode()


def submit(server: MailServer, rcpts: list[str], msg: bytes, count: int = 1) -> None:
    with smtplib.SMTP(
        "127.0.0.1", server.ports["submission"], local_hostname="c.example", timeout=30
    ) as c:
        c.starttls(context=server.client_tls())
        c.login("you@example.org", PASSWORD)
        for _ in range(count):
            assert c.sendmail("you@example.org", rcpts, msg) == {}


def cli(server: MailServer, *args: str) -> Any:
    r = run_cli(["queue", *args, "--json"], config=server.config)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_count(proc: ServerProcess, text: str, n: int, timeout: float = 60) -> None:
    """Block until ``text`` appeared in ``n`` log lines (reads the log as it comes)."""
    proc.wait_for(lambda _: sum(text in x for x in proc.lines) >= n, timeout=timeout)
