"""Debian's IMAP clients against a running server: mbsync, offlineimap, fetchmail, mutt.

They need FETCH (``app.imap.fetch``) and the Debian packages ``isync offlineimap
fetchmail mutt``; each test is skipped when its prerequisite is missing.
"""

import asyncio
import hashlib
import importlib.util
import os
import shutil
import ssl
from pathlib import Path

import pytest

from tests.imap.clients.harness import ACCOUNT, ADDRESS, PASSWORD, IMAPServer, imap_server

__all__ = ["imap_server"]

CLIENTS = Path(__file__).parent / "clients"
MSG = b"From: a@example.org\r\nTo: you@example.com\r\nSubject: real client\r\n\r\nhello there\r\n"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("app.imap.fetch") is None, reason="FETCH not implemented yet"
)


def needs(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} not installed (apt-get install isync offlineimap fetchmail mutt)")
    return path


def render(template: str, dest: Path, **values: object) -> Path:
    text = (CLIENTS / template).read_text().format(**values)
    dest.write_text(text)
    dest.chmod(0o600)
    return dest


def cert_der(srv: IMAPServer) -> bytes:
    return ssl.PEM_cert_to_DER_cert((srv.directory / "cert.pem").read_text())


async def run(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str]:
    env = dict(os.environ, HOME=str(cwd), TERM="xterm")
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_mbsync_both_ways(imap_server: IMAPServer, tmp_path: Path) -> None:
    mbsync = needs("mbsync")
    store = await imap_server.store()
    await store.deliver("Inbox", MSG)
    maildir = tmp_path / "mail"
    maildir.mkdir()
    rc = render(
        "mbsyncrc.tmpl",
        tmp_path / "mbsyncrc",
        port=imap_server.tls_port,
        user=ADDRESS,
        password=PASSWORD,
        cert=imap_server.directory / "cert.pem",
        maildir=maildir,
    )
    code, out = await run(mbsync, "-c", str(rc), "-a", cwd=tmp_path)
    assert code == 0, out
    got = list((maildir / "INBOX" / "new").iterdir()) + list((maildir / "INBOX" / "cur").iterdir())
    assert len(got) == 1
    content = got[0].read_bytes()  # mbsync stores LF and may add an X-TUID header
    assert b"Subject: real client\n" in content and content.endswith(b"\n\nhello there\n")
    # Local to remote: a new message in the local Archive maildir is uploaded.
    (maildir / "Archive" / "new").mkdir(parents=True, exist_ok=True)
    (maildir / "Archive" / "new" / "1.local:2,").write_bytes(MSG.replace(b"hello", b"upload"))
    code, out = await run(mbsync, "-c", str(rc), "-a", cwd=tmp_path)
    assert code == 0, out
    assert store.mailbox("Archive").total == 1


async def test_offlineimap_sync(imap_server: IMAPServer, tmp_path: Path) -> None:
    offlineimap = needs("offlineimap")
    store = await imap_server.store()
    await store.deliver("Inbox", MSG)
    maildir = tmp_path / "mail"
    rc = render(
        "offlineimaprc.tmpl",
        tmp_path / "offlineimaprc",
        port=imap_server.tls_port,
        user=ADDRESS,
        password=PASSWORD,
        fingerprint=hashlib.sha512(cert_der(imap_server)).hexdigest(),
        maildir=maildir,
        metadata=tmp_path / "meta",
    )
    code, out = await run(offlineimap, "-c", str(rc), "-o", "-u", "basic", cwd=tmp_path)
    assert code == 0, out
    files = [p for p in (maildir / "INBOX").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes().replace(b"\r\n", b"\n") == MSG.replace(
        b"\r\n", b"\n"
    )


async def test_fetchmail_retrieval(imap_server: IMAPServer, tmp_path: Path) -> None:
    fetchmail = needs("fetchmail")
    store = await imap_server.store()
    await store.deliver("Inbox", MSG)
    out_file = tmp_path / "delivered.mbox"
    md5 = hashlib.md5(cert_der(imap_server)).hexdigest().upper()
    rc = render(
        "fetchmailrc.tmpl",
        tmp_path / "fetchmailrc",
        port=imap_server.tls_port,
        user=ACCOUNT,
        password=PASSWORD,
        md5=":".join(md5[i : i + 2] for i in range(0, 32, 2)),
        out=out_file,
    )
    code, out = await run(fetchmail, "-f", str(rc), "--nosyslog", "-v", cwd=tmp_path)
    assert code == 0, out
    assert b"hello there" in out_file.read_bytes()


async def test_mutt_reads_a_message(imap_server: IMAPServer, tmp_path: Path) -> None:
    mutt = needs("mutt")
    script = needs("script")
    store = await imap_server.store()
    await store.deliver("Inbox", MSG)
    out_file = tmp_path / "read.txt"
    rc = render(
        "muttrc.tmpl",
        tmp_path / "muttrc",
        port=imap_server.tls_port,
        user=ADDRESS,
        password=PASSWORD,
        cert=imap_server.directory / "cert.pem",
    )
    push = f'push "<pipe-message>cat > {out_file}<enter><quit>"'
    cmd = f"{mutt} -n -F {rc} -R -e '{push}'"
    code, out = await run(script, "-qec", cmd, "/dev/null", cwd=tmp_path)
    assert code == 0, out
    assert b"hello there" in out_file.read_bytes()
