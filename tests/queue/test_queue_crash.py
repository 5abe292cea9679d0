"""kill -9 with 1,000 messages queued loses none: every message acknowledged with 250
at submission is in the queue after a restart, exactly once."""

import smtplib
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.mailserver import PASSWORD, MailServer, start
from tests.queue.servers import cli, closed_port_transport, message, sender_server

COUNT = 1000
CONNECTIONS = 4


def _send(server: MailServer, conn: int) -> list[str]:
    acked = []
    with smtplib.SMTP(
        "127.0.0.1", server.ports["submission"], local_hostname="c.example", timeout=60
    ) as c:
        c.starttls(context=server.client_tls())
        c.login("you@example.org", PASSWORD)
        for i in range(conn, COUNT, CONNECTIONS):
            subject = f"crash {i}"
            rcpt = f"r{i}@remote.example"
            assert c.sendmail("you@example.org", [rcpt], message(subject, rcpt)) == {}
            acked.append(rcpt)
    return acked


def test_kill_9_with_1000_queued_loses_none(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start(sender_server(tmp_path_factory.mktemp("crash"), closed_port_transport()))
    assert server.proc is not None
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        acked = [
            a for part in pool.map(lambda n: _send(server, n), range(CONNECTIONS)) for a in part
        ]
    assert len(acked) == COUNT
    # The scheduler is busy attempting (and failing) deliveries right now.
    server.proc.kill()
    start(server)
    try:
        rows = cli(server, "list")
        assert isinstance(rows, list)
        got = sorted(r["to"] for r in rows)
        assert got == sorted(acked)  # all there, none twice
        assert all(r["from"] == "you@example.org" for r in rows)
        dump = cli(server, "dump", str(rows[0]["id"]))
        assert isinstance(dump, dict) and "hello crash" in dump["message"]
    finally:
        assert server.stop() == 0
        assert server.proc is not None and not server.proc.tracebacks()
