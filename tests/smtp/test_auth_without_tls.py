"""Password logins without TLS only where a listener allows them (auth_without_tls)."""

import imaplib
import smtplib

import pytest

from tests.mailserver import PASSWORD, MailServer, setup_server, start


def server_with(tmp_path_factory: pytest.TempPathFactory, allow: bool) -> MailServer:
    s = setup_server(tmp_path_factory.mktemp("plainauth"), services=("submission", "imap"))
    if allow:
        text = s.config.read_text()
        marker = '[listeners.local]\nips = ["127.0.0.1"]\n'
        assert marker in text
        s.config.write_text(text.replace(marker, marker + "auth_without_tls = true\n"))
    return start(s)


def test_allowed_listener_takes_plain_logins_without_tls(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    s = server_with(tmp_path_factory, allow=True)
    try:
        with smtplib.SMTP(
            "127.0.0.1", s.ports["submission"], local_hostname="c.example", timeout=30
        ) as c:
            c.ehlo()
            assert "PLAIN" in c.esmtp_features["auth"]
            c.login("you@example.org", PASSWORD)
        imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=30)
        assert "AUTH=PLAIN" in imap.capabilities and "LOGINDISABLED" not in imap.capabilities
        imap.login("you@example.org", PASSWORD)
        imap.logout()
    finally:
        assert s.stop() == 0


def test_by_default_passwords_need_tls(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = server_with(tmp_path_factory, allow=False)
    try:
        with smtplib.SMTP(
            "127.0.0.1", s.ports["submission"], local_hostname="c.example", timeout=30
        ) as c:
            c.ehlo()
            assert not c.has_extn("auth")
            assert c.docmd("AUTH PLAIN AHlvdUBleGFtcGxlLm9yZwB4")[0] == 538
        imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=30)
        assert "LOGINDISABLED" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            imap.login("you@example.org", PASSWORD)
        imap.logout()
    finally:
        assert s.stop() == 0
