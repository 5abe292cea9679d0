"""Submission signs with the From domain's DKIM keys; the signature verifies with our
verifier and with dkimpy, against the key published in DNS."""

import smtplib

import dkim as dkimpy
import pytest

from app.dns.resolver import Resolver
from app.mailauth import dkim
from app.store import admincmds
from app.store.admin import AdminDB
from tests.mailserver import PASSWORD, setup_server, start


async def test_submitted_message_is_dkim_signed(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = setup_server(tmp_path_factory.mktemp("sign"), services=("submission",))
    db = AdminDB(server.data / "admin.db")
    try:
        keys = admincmds.run(db, "dkim.list", {"domain": "example.org"})
    finally:
        db.close()
    assert len(keys) == 1 and keys[0]["algorithm"] == "rsa"  # every new domain gets one
    name = f"{keys[0]['selector']}._domainkey.example.org"
    server.dns.add(name, "TXT", keys[0]["txt"])
    start(server)
    try:
        msg = (
            b"From: You <you@example.org>\r\nTo: other@example.org\r\n"
            b"Subject: signed\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\n\r\nbody\r\n"
        )
        with smtplib.SMTP(
            "127.0.0.1", server.ports["submission"], local_hostname="c.example", timeout=30
        ) as c:
            c.starttls(context=server.client_tls())
            c.login("you@example.org", PASSWORD)
            c.sendmail("you@example.org", ["other@example.org"], msg)
        stored = server.messages("other")[-1]
        sig_at = stored.index(b"DKIM-Signature:")
        signed = stored[sig_at:]
        results = await dkim.verify(Resolver([server.dns.address], timeout=2), signed)
        assert [(r.status, r.domain, r.trusted) for r in results] == [
            (dkim.Status.PASS, "example.org", True)
        ]
        txt = keys[0]["txt"].encode()
        assert dkimpy.verify(
            signed,
            dnsfunc=lambda n, timeout=5: (
                txt if n.decode().startswith(keys[0]["selector"]) else None
            ),
        )
    finally:
        assert server.stop() == 0
