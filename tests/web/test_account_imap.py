"""After a password change on the account pages, IMAP (and SMTP submission) accept
only the new password, on the running server, without a restart."""

import imaplib
import smtplib

import pytest

from tests.mailserver import PASSWORD, setup_server, start
from tests.web.helpers import Client

NEW = "a-new-password-3"


def imap_login(port: int, ctx: object, password: str) -> bool:
    c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        c.starttls(ssl_context=ctx)  # type: ignore[arg-type]
        c.login("you@example.org", password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        c.shutdown()


def test_password_change_on_the_account_page_applies_to_imap_and_smtp(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start(
        setup_server(tmp_path_factory.mktemp("acctimap"), services=("https", "imap", "submission"))
    )
    try:
        tls = server.client_tls()
        assert imap_login(server.ports["imap"], tls, PASSWORD)
        base = f"https://127.0.0.1:{server.ports['https']}/account/"
        c = Client()
        page = c.get(base)
        page = c.post(
            base + "login", {"csrf": page.csrf, "username": "you@example.org", "password": PASSWORD}
        )
        assert page.status == 200, page.body
        page = c.post(
            base + "password", {"csrf": page.csrf, "current": PASSWORD, "new": NEW, "new2": NEW}
        )
        assert "Password changed." in page.body
        assert not imap_login(server.ports["imap"], tls, PASSWORD)
        assert imap_login(server.ports["imap"], tls, NEW)
        with smtplib.SMTP(
            "127.0.0.1", server.ports["submission"], local_hostname="c.example", timeout=30
        ) as s:
            s.starttls(context=tls)
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login("you@example.org", PASSWORD)
            s.login("you@example.org", NEW)
    finally:
        assert server.stop() == 0
