"""The SMTP server over real sockets: delivery, submission, limits, bad input."""

import smtplib
import socket
from collections.abc import Iterator

import pytest

from tests.mailserver import PASSWORD, MailServer, setup_server, start

MSG = (
    b"From: Sender <sender@remote.example>\r\nTo: you@example.org\r\n"
    b"Subject: hello\r\nMessage-ID: <m1@remote.example>\r\n\r\nHello there.\r\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = start(setup_server(tmp_path_factory.mktemp("smtp")))
    yield s
    assert s.stop() == 0
    assert s.proc is not None and s.proc.tracebacks() == []


def smtp(server: MailServer) -> smtplib.SMTP:
    return smtplib.SMTP(
        "127.0.0.1", server.ports["smtp"], local_hostname="client.example", timeout=30
    )


def submission(server: MailServer) -> smtplib.SMTP:
    c = smtplib.SMTP(
        "127.0.0.1", server.ports["submission"], local_hostname="client.example", timeout=30
    )
    c.starttls(context=server.client_tls())
    c.login("you@example.org", PASSWORD)
    return c


def test_delivery_is_stored_with_return_path_and_received(server: MailServer) -> None:
    before = len(server.messages("you"))
    with smtp(server) as c:
        code, _ = c.ehlo("client.example")
        assert code == 250 and c.has_extn("chunking") and c.has_extn("starttls")
        assert not c.has_extn("auth")  # no AUTH on port 25
        refused = c.sendmail("sender@remote.example", ["you@example.org"], MSG)
        assert refused == {}
    msgs = server.messages("you")
    assert len(msgs) == before + 1
    stored = msgs[-1]
    assert stored.startswith(
        b"Return-Path: <sender@remote.example>\r\nReceived: from "
        b"client.example ([127.0.0.1])\r\n\tby mail.test.example"
    )
    assert b"with ESMTP id " in stored and b"\tfor <you@example.org>;" in stored
    assert stored.endswith(MSG)


def test_unknown_user_and_foreign_domain_are_refused(server: MailServer) -> None:
    with smtp(server) as c:
        c.ehlo("client.example")
        c.mail("sender@remote.example")
        assert c.rcpt("nobody@example.org")[0] == 550
        code, text = c.rcpt("someone@elsewhere.example")
        assert code == 550 and b"5.7.1" in text
        assert c.rcpt("you+tag@EXAMPLE.org")[0] == 250  # subaddress, case-insensitive
        assert c.noop()[0] == 250  # the session goes on


def test_bare_lf_gets_cr_and_sizes_agree(server: MailServer) -> None:
    raw = b"Subject: lf\n\nline one\nline two\n.\n"
    with socket.create_connection(("127.0.0.1", server.ports["smtp"])) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(
            b"HELO client.example\r\nMAIL FROM:<a@remote.example>\r\n"
            b"RCPT TO:<other@example.org>\r\nDATA\r\n"
        )
        f.flush()
        for _ in range(4):
            f.readline()
        f.write(raw.replace(b"\n.\n", b"\r\n.\r\n"))
        f.flush()
        assert f.readline().startswith(b"250 ")
    stored = server.messages("other")[-1]
    assert stored.endswith(b"Subject: lf\r\n\r\nline one\r\nline two\r\n")


def test_submission_requires_tls_and_auth(server: MailServer) -> None:
    with smtplib.SMTP(
        "127.0.0.1", server.ports["submission"], local_hostname="client.example", timeout=30
    ) as c:
        c.ehlo()
        assert not c.has_extn("auth")
        code, _ = c.mail("you@example.org")
        assert code == 530
        c.starttls(context=server.client_tls())
        c.ehlo()
        assert "PLAIN" in c.esmtp_features["auth"]
        assert "SCRAM-SHA-256" in c.esmtp_features["auth"]
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login("you@example.org", "wrong password")
        c.login("you@example.org", PASSWORD)


def test_submission_delivers_locally_and_checks_sender(server: MailServer) -> None:
    before = len(server.messages("other"))
    msg = b"From: you@example.org\r\nTo: other@example.org\r\nSubject: s\r\n\r\nhi\r\n"
    with submission(server) as c:
        assert c.sendmail("you@example.org", ["other@example.org"], msg) == {}
        code, _ = c.mail("other@example.org")  # not an address of "you"
        assert code == 550
        c.rset()
        c.mail("you@example.org")
        assert c.rcpt("someone@remote.example")[0] == 250  # for the outgoing queue
        c.rset()
        bad_from = msg.replace(b"From: you@", b"From: other@")
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("you@example.org", ["other@example.org"], bad_from)
        assert e.value.smtp_code == 550
    stored = server.messages("other")
    assert len(stored) == before + 1
    assert b"with ESMTPSA id" in stored[-1]
    assert (
        b"Authentication-Results: mail.test.example;\r\n\tauth=pass smtp.auth=you@example.org"
        in stored[-1]
    )


def test_submissions_implicit_tls_with_cram_md5(server: MailServer) -> None:
    with smtplib.SMTP_SSL(
        "127.0.0.1",
        server.ports["submissions"],
        timeout=30,
        local_hostname="client.example",
        context=server.client_tls(),
    ) as c:
        c.ehlo()
        c.login("you", PASSWORD, initial_response_ok=False)
        assert (
            c.sendmail(
                "you@example.org",
                ["you@example.org"],
                b"From: you@example.org\r\nSubject: self\r\n\r\nx\r\n",
            )
            == {}
        )


def test_pipelined_commands_get_all_replies(server: MailServer) -> None:
    with socket.create_connection(("127.0.0.1", server.ports["smtp"])) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(
            b"EHLO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<you@example.org>"
            b"\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n"
        )
        f.flush()
        lines = []
        while not lines or not lines[-1].startswith(b"354"):
            lines.append(f.readline())
        codes = [ln[:3] for ln in lines if ln[3:4] == b" "]
        assert codes == [b"250", b"250", b"250", b"550", b"354"]
        f.write(b"Subject: p\r\n\r\nx\r\n.\r\nQUIT\r\n")
        f.flush()
        assert f.readline().startswith(b"250 ") and f.readline().startswith(b"221 ")


def test_first_command_not_smtp_closes(server: MailServer) -> None:
    with socket.create_connection(("127.0.0.1", server.ports["smtp"])) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        f.flush()
        assert f.readline().startswith(b"500 ")
        assert f.read() == b""  # closed


def test_bad_commands_get_errors_and_the_session_continues(server: MailServer) -> None:
    with smtp(server) as c:
        c.ehlo("c.example")
        assert c.docmd("RCPT TO:<you@example.org>")[0] == 503
        assert c.docmd("MAIL FROM:<not an address>")[0] == 501
        assert c.docmd("XYZZY")[0] == 500
        assert c.docmd("MAIL FROM:<a@remote.example> BOGUS=1")[0] == 555
        assert c.noop()[0] == 250
