"""The IMAP service in a real ``pillarbox serve`` process: registered through
SERVICE_MODULES, reachable on its configured ports, stopped cleanly by SIGTERM."""

import imaplib
import socket
from pathlib import Path

from app.store import admincmds
from app.store.admin import AdminDB
from app.tls.certs import generate_self_signed
from tests.imap.clients.harness import ADDRESS, HOST, PASSWORD, client_context
from tests.serverproc import STARTED, ServerProcess, write_config


def free_port() -> int:
    """A port that was free a moment ago (the configuration cannot ask for an ephemeral one)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_process_imap_and_imaps(tmp_path: Path) -> None:
    generate_self_signed(["mail.test.example"], tmp_path / "cert.pem", tmp_path / "key.pem")
    imap_port, imaps_port = free_port(), free_port()
    cfg = write_config(
        tmp_path,
        "[listeners.local]\n"
        'ips = ["127.0.0.1"]\n'
        "[listeners.local.tls]\n"
        'certificates = [{ cert = "cert.pem", key = "key.pem" }]\n'
        f"[listeners.local.imap]\nenabled = true\nport = {imap_port}\n"
        f"[listeners.local.imaps]\nenabled = true\nport = {imaps_port}\n",
    )
    (tmp_path / "data").mkdir()
    db = AdminDB(tmp_path / "data" / "admin.db")
    admincmds.run(db, "domain.add", {"domain": "example.com"})
    admincmds.run(db, "account.add", {"account": "you", "address": ADDRESS, "password": PASSWORD})
    db.close()
    proc = ServerProcess(["serve"], config=cfg)
    try:
        proc.wait_for(STARTED)
        c = imaplib.IMAP4(HOST, imap_port, timeout=30)
        c.starttls(client_context())
        c.login(ADDRESS, PASSWORD)
        assert c.append("INBOX", None, None, b"Subject: x\r\n\r\nhi\r\n")[0] == "OK"
        c.logout()
        c2 = imaplib.IMAP4_SSL(HOST, imaps_port, ssl_context=client_context(), timeout=30)
        c2.login(ADDRESS, PASSWORD)
        assert c2.select("INBOX") == ("OK", [b"1"])
        c2.logout()
        proc.wait_for('msg="imap connection closed"')
    finally:
        rc = proc.stop()
    assert rc == 0
    assert not proc.tracebacks(), "\n".join(proc.lines)
    assert any('msg="imap connection"' in line and "cid=" in line for line in proc.lines)
