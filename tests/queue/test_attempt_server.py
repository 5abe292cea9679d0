"""Delivery attempts to a real Pillarbox server (child process) as the receiving peer:
direct delivery through MX records on its loopback DNS server, and a smarthost with
STARTTLS/implicit TLS and AUTH on its submission ports."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.dns.resolver import Resolver
from app.queue.attempt import AttemptResult, Recipient, Transport, attempt
from tests.mailserver import PASSWORD, MailServer, setup_server, start
from tests.queue.test_client_peer import FAST, Cert, make_ca, make_leaf, trust

MSG = (
    b"From: Sender <s@remote.example>\r\nTo: you@example.org\r\n"
    b"Subject: queued\r\nMessage-ID: <q1@remote.example>\r\n\r\nHello from the queue.\r\n"
)
SUBMIT = MSG.replace(b"Sender <s@remote.example>", b"<you@example.org>")
TIMEOUTS = FAST.__class__(
    connect=5, greeting=10, command=10, tls=10, data_init=10, data_block=10, data_end=20
)


@pytest.fixture(scope="module")
def ca() -> Cert:
    return make_ca()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ca: Cert) -> Iterator[MailServer]:
    s = setup_server(
        tmp_path_factory.mktemp("attempt"),
        services=("smtp", "submission", "submissions"),
        limits="max_recipients = 2\n",
    )
    leaf = make_leaf(ca, ["mail.test.example", "mx.example.org"])
    (s.directory / "cert.pem").write_bytes(leaf.pem + ca.pem)
    (s.directory / "key.pem").write_bytes(leaf.key_pem)
    s.dns.add("example.org", "MX", "10 mx.example.org.")
    s.dns.add("mx.example.org", "A", "127.0.0.1")
    start(s)
    yield s
    assert s.stop() == 0
    assert s.proc is not None and s.proc.tracebacks() == []


def resolver(server: MailServer) -> Resolver:
    return Resolver([server.dns.address], timeout=2.0, cache_size=0)


async def send(server: MailServer, rcpts: list[str], **kw: Any) -> AttemptResult:
    args: dict[str, Any] = {
        "sender": "s@remote.example",
        "recipients": [Recipient(r) for r in rcpts],
        "domain": "example.org",
        "message": MSG,
        "size": len(MSG),
        "smtputf8": False,
        "eight_bit": False,
        "requiretls": False,
        "tls_required_no": False,
        "transport": Transport(port_override=server.ports["smtp"]),
        "ehlo_hostname": "client.example",
        "attempt_number": 1,
        "timeouts": TIMEOUTS,
    }
    args.update(kw)
    return await attempt(resolver(server), **args)


async def test_direct_delivery_over_opportunistic_starttls(server: MailServer) -> None:
    before = len(server.messages("you"))
    res = await send(server, ["you@example.org"])
    (r,) = res.recipients
    assert r.ok and r.code == 250 and r.remote_mta == "mx.example.org", r
    msgs = server.messages("you")
    assert len(msgs) == before + 1 and msgs[-1].endswith(MSG)
    assert b"with ESMTPS" in msgs[-1] or b"TLS" in msgs[-1]
    assert res.tls_reports[0].success_count == 1


async def test_unknown_recipient_refused_others_delivered(server: MailServer) -> None:
    before = len(server.messages("other"))
    res = await send(server, ["nobody@example.org", "other@example.org"])
    by = {r.address: r for r in res.recipients}
    assert by["other@example.org"].ok
    assert not by["nobody@example.org"].ok and by["nobody@example.org"].code >= 500
    assert len(server.messages("other")) == before + 1


async def test_server_rcptmax_limits_one_transaction(server: MailServer) -> None:
    res = await send(server, ["you@example.org", "other@example.org", "you@example.org"])
    assert [r.ok for r in res.recipients] == [True, True, False]
    assert not res.recipients[2].permanent and res.recipients[2].code == 452


@pytest.mark.parametrize(
    ("service", "tls"), [("submission", "starttls"), ("submissions", "implicit")]
)
async def test_smarthost_with_pkix_tls_and_auth(
    server: MailServer, ca: Cert, service: str, tls: str
) -> None:
    before = len(server.messages("other"))
    transport = Transport(
        kind="smarthost",
        host="127.0.0.1",
        port=server.ports[service],
        tls=tls,
        username="you@example.org",
        password=PASSWORD,
    )
    res = await send(
        server,
        ["other@example.org"],
        sender="you@example.org",
        transport=transport,
        pkix_context=trust(ca),
        message=SUBMIT,
        size=len(SUBMIT),
    )
    assert res.recipients[0].ok, res.recipients[0]
    assert len(server.messages("other")) == before + 1
    # The system trust store does not know our test CA: refused, temporarily.
    bad = await send(server, ["other@example.org"], sender="you@example.org", transport=transport)
    assert not bad.recipients[0].ok and not bad.recipients[0].permanent


async def test_smarthost_wrong_password_is_refused(server: MailServer, ca: Cert) -> None:
    transport = Transport(
        kind="smarthost",
        host="127.0.0.1",
        port=server.ports["submission"],
        username="you@example.org",
        password="wrong",
    )
    res = await send(
        server,
        ["other@example.org"],
        sender="you@example.org",
        transport=transport,
        pkix_context=trust(ca),
        message=SUBMIT,
        size=len(SUBMIT),
    )
    assert not res.recipients[0].ok and res.recipients[0].code == 535


def test_cert_files_exist(server: MailServer) -> None:
    assert Path(server.directory / "cert.pem").exists()
