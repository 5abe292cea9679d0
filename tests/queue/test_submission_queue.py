"""Submission to a real server queues remote recipients; the queue delivers them to a
second real server found through MX records on a loopback DNS server; refused
recipients come back as a failure DSN in the sender's Inbox."""

import email
import email.policy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.mailserver import MailServer, start
from tests.queue.servers import (
    cli,
    closed_port_transport,
    message,
    receiver_server,
    sender_server,
    submit,
    wait_count,
)


def received(server: MailServer, account: str) -> list[bytes]:
    return server.messages(account) + server.messages(account, "Junk")


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MailServer, MailServer]]:
    b = start(receiver_server(tmp_path_factory.mktemp("receiver")))
    a = sender_server(
        tmp_path_factory.mktemp("sender"),
        "[queue.transports.tob]\n"
        f'kind = "direct"\nport_override = {b.ports["smtp"]}\n'
        '[queue.routes.all]\ntransport = "tob"\n',
    )
    a.dns.add("remote.example", "MX", "10 mx.remote.example.")
    a.dns.add("mx.remote.example", "A", "127.0.0.1")
    start(a)
    yield a, b
    try:
        assert a.stop() == 0
    finally:
        b.stop()
    assert a.proc is not None and not a.proc.tracebacks()


def test_submission_end_to_end_through_queue(pair: tuple[MailServer, MailServer]) -> None:
    a, b = pair
    assert a.proc is not None
    submit(a, ["friend@remote.example", "other@example.org"], message("e2e one"))
    # The local recipient is delivered at once, the remote one by the queue.
    assert any(b"Subject: e2e one" in m for m in received(a, "other"))
    wait_count(a.proc, 'msg="delivery attempt done"', 1)
    (got,) = [m for m in received(b, "other") if b"Subject: e2e one" in m]
    assert b"DKIM-Signature:" in got  # signed at submission, before queueing
    assert cli(a, "list") == []


def test_refused_recipient_gets_failure_dsn(pair: tuple[MailServer, MailServer]) -> None:
    a, _ = pair
    assert a.proc is not None
    submit(a, ["nobody@remote.example"], message("bounce me", "nobody@remote.example"))
    wait_count(a.proc, 'msg="dsn delivered"', 1)
    (dsn,) = [m for m in a.messages("you") if b"multipart/report" in m]
    m: Any = email.message_from_bytes(dsn, policy=email.policy.default)
    assert m.get_param("report-type") == "delivery-status"
    per_rcpt = m.get_payload()[1].get_payload()[1]
    assert per_rcpt["Final-Recipient"] == "rfc822; nobody@remote.example"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"].startswith("5.")
    diag = per_rcpt["Diagnostic-Code"]
    assert diag.startswith("smtp; 550") and "no such user" in diag
    headers = m.get_payload()[2]
    assert "Subject: bounce me" in headers.get_payload()
    assert cli(a, "list") == []


def test_unreachable_receiver_keeps_message_queued(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    a = start(sender_server(tmp_path_factory.mktemp("s"), closed_port_transport()))
    try:
        assert a.proc is not None
        submit(a, ["friend@remote.example"], message("stuck"))
        wait_count(a.proc, 'msg="delivery attempt done"', 1)
        (entry,) = cli(a, "list")
        assert entry["attempts"] == 1 and entry["to"] == "friend@remote.example"
        assert entry["last_error"]
        assert entry["next_attempt"] - entry["last_attempt"] >= 445
    finally:
        assert a.stop() == 0
