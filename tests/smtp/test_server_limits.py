"""SMTP server limits and special recipients over real sockets: quota, SIZE, BDAT,
aliases, postmaster, catch-all, recipient and connection limits, auth failures."""

import smtplib
import socket
from collections.abc import Iterator

import pytest

from app.store import admincmds
from app.store.admin import AdminDB
from tests.mailserver import PASSWORD, MailServer, setup_server, start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = setup_server(
        tmp_path_factory.mktemp("smtp-limits"),
        limits="max_message_size = 200000\nmax_recipients = 5\n",
    )
    db = AdminDB(s.data / "admin.db")
    try:
        admincmds.run(
            db, "account.add", {"account": "small", "address": "small@example.org", "quota": 3000}
        )
        admincmds.run(
            db,
            "alias.add",
            {
                "alias": "team@example.org",
                "members": ["you@example.org", "other@example.org"],
                "post_public": True,
            },
        )
        admincmds.run(
            db, "alias.add", {"alias": "closed@example.org", "members": ["other@example.org"]}
        )
    finally:
        db.close()
    start(s)
    yield s
    assert s.stop() == 0
    assert s.proc is not None and s.proc.tracebacks() == []


def client(server: MailServer) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", server.ports["smtp"], local_hostname="c.example", timeout=30)


def test_over_quota_is_452(server: MailServer) -> None:
    with client(server) as c:
        assert (
            c.sendmail(
                "a@remote.example", ["small@example.org"], b"Subject: fits\r\n\r\n" + b"x" * 1000
            )
            == {}
        )
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(
                "a@remote.example", ["small@example.org"], b"Subject: too big\r\n\r\n" + b"y" * 3000
            )
        assert e.value.smtp_code == 452 and b"4.2.2" in e.value.smtp_error
    assert len(server.messages("small")) == 1


def test_size_limit(server: MailServer) -> None:
    with client(server) as c:
        c.ehlo()
        assert c.esmtp_features["size"] == "200000"
        assert c.mail("a@remote.example", ["SIZE=300000"])[0] == 552
        c.rset()
        c.mail("a@remote.example")  # no SIZE: the limit is found while reading DATA
        c.rcpt("you@example.org")
        assert c.data(b"x" * 250_000)[0] == 552
        assert c.noop()[0] == 250


def test_bdat_chunks(server: MailServer) -> None:
    before = len(server.messages("you"))
    with socket.create_connection(("127.0.0.1", server.ports["smtp"]), timeout=30) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"EHLO c.example\r\n")
        f.flush()
        while f.readline()[3:4] == b"-":
            pass
        part1, part2 = b"Subject: bdat\r\n\r\nfirst ", b"second\r\n.\r\nnot the end\r\n"
        f.write(
            b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<you@example.org>\r\n"
            + f"BDAT {len(part1)}\r\n".encode()
            + part1
            + f"BDAT {len(part2)} LAST\r\n".encode()
            + part2
        )
        f.flush()
        replies = [f.readline() for _ in range(4)]
        assert [r[:3] for r in replies] == [b"250"] * 4, replies
    stored = server.messages("you")
    assert len(stored) == before + 1
    assert stored[-1].endswith(part1 + part2)


def test_alias_delivers_to_members_and_closed_alias_refuses_outsiders(server: MailServer) -> None:
    n_you, n_other = len(server.messages("you")), len(server.messages("other"))
    with client(server) as c:
        assert (
            c.sendmail("a@remote.example", ["team@example.org"], b"Subject: team\r\n\r\nall\r\n")
            == {}
        )
        c.mail("a@remote.example")
        assert c.rcpt("closed@example.org")[0] == 550
        c.rset()
        assert (
            c.sendmail(
                "other@example.org", ["closed@example.org"], b"Subject: member\r\n\r\nok\r\n"
            )
            == {}
        )
    assert len(server.messages("you")) == n_you + 1
    assert len(server.messages("other")) == n_other + 2


def test_postmaster_without_domain_and_for_every_domain(server: MailServer) -> None:
    n = len(server.messages("you"))  # postmaster_account = "you"
    with client(server) as c:
        c.ehlo()
        c.mail("a@remote.example")
        assert c.rcpt("Postmaster")[0] == 250
        assert c.rcpt("postmaster@example.org")[0] == 250
        assert c.data(b"Subject: pm\r\n\r\nhello postmaster\r\n")[0] == 250
    assert len(server.messages("you")) == n + 1  # one copy per account


def test_too_many_recipients(server: MailServer) -> None:
    with client(server) as c:
        c.ehlo()
        c.mail("a@remote.example")
        codes = [c.rcpt(f"you+{i}@example.org")[0] for i in range(6)]
        assert codes == [250] * 5 + [452]


def test_line_too_long_and_session_continues(server: MailServer) -> None:
    with client(server) as c:
        c.ehlo()
        code, _ = c.docmd("NOOP " + "x" * 10000)
        assert code == 500
        assert c.noop()[0] == 250


def test_auth_failures_are_logged_for_fail2ban_and_delayed(server: MailServer) -> None:
    with smtplib.SMTP(
        "127.0.0.1", server.ports["submission"], local_hostname="c.example", timeout=30
    ) as c:
        c.starttls(context=server.client_tls())
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login("you@example.org", "wrong")
        c.login("you@example.org", PASSWORD)
    assert server.proc is not None
    line = server.proc.wait_for(lambda s: 'msg="authentication failed"' in s)
    assert "remote_ip=127.0.0.1" in line and "protocol=smtp" in line


def test_unknown_client_command_count_closes(server: MailServer) -> None:
    with socket.create_connection(("127.0.0.1", server.ports["smtp"]), timeout=30) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"EHLO c.example\r\n" + b"BOGUS\r\n" * 30)
        f.flush()
        data = f.read()
    assert b"421 " in data.splitlines()[-1]


def test_connections_per_ip_are_limited(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = start(
        setup_server(
            tmp_path_factory.mktemp("smtp-conn"),
            services=("smtp",),
            extra_config="[tuning]\nmax_connections_per_ip = 2\n",
        )
    )
    try:
        a = socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=30)
        b = socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=30)
        assert a.recv(100).startswith(b"220") and b.recv(100).startswith(b"220")
        with socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=30) as c:
            assert c.recv(200).startswith(b"421 4.7.0 too many connections")
        a.close()
        b.close()
    finally:
        assert s.stop() == 0


def test_localserve_simulates_failures(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = start(
        setup_server(
            tmp_path_factory.mktemp("smtp-ls"), services=("smtp",), top_config="localserve = true\n"
        )
    )
    try:
        with smtplib.SMTP(
            "127.0.0.1", s.ports["smtp"], local_hostname="c.example", timeout=30
        ) as c:
            c.ehlo()
            assert c.mail("mailfromtemperror@any.example")[0] == 451
            c.rset()
            c.mail("a@any.example")
            assert c.rcpt("rcptto554@any.example")[0] == 554
            assert c.rcpt("somebody@unknown.example")[0] == 250  # everything is local
            assert c.rcpt("permerror@any.example")[0] == 250
            code, _ = c.data(b"Subject: x\r\n\r\nx\r\n")
            assert code == 550
            assert (
                c.sendmail(
                    "a@any.example", ["whoever@anywhere.example"], b"Subject: ok\r\n\r\nfine\r\n"
                )
                == {}
            )
        assert any(b"fine" in m for m in s.messages("you"))
    finally:
        assert s.stop() == 0


def test_connection_rate_per_ip_is_limited(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = start(
        setup_server(
            tmp_path_factory.mktemp("smtp-rate"),
            services=("smtp",),
            extra_config="[tuning]\nmax_connection_rate_per_ip = 3\n",
        )
    )
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=30) as c:
                assert c.recv(100).startswith(b"220")
        with socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=30) as c:
            assert c.recv(200).startswith(b"421 4.7.0 too many new connections")
    finally:
        assert s.stop() == 0
