"""Independent clients against the SMTP server: gsasl (every SASL mechanism, SCRAM-PLUS
with tls-exporter), swaks (raw byte sequences, every SMTP smuggling sequence) and msmtp."""

import base64
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth.base import ChannelBinding
from app.auth.channelbinding import channel_binding_for
from app.auth.scram import ScramClient
from tests.mailserver import PASSWORD, MailServer, setup_server, start

DATA = Path(__file__).resolve().parent.parent / "data" / "smtp"


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (the CI script installs it)"
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    s = start(setup_server(tmp_path_factory.mktemp("smtp-clients")))
    yield s
    assert s.stop() == 0
    assert s.proc is not None and s.proc.tracebacks() == []


def gsasl(server: MailServer, mech: str, password: str) -> subprocess.CompletedProcess[str]:
    args = [
        need("gsasl"),
        "--smtp",
        f"--connect=127.0.0.1:{server.ports['submission']}",
        "--starttls",
        "--x509-ca-file=",
        "-m",
        mech,
        "-a",
        "you@example.org",
        "-p",
        password,
        "--hostname=mail.test.example",
    ]
    if mech.endswith("-PLUS"):
        args.append("--verbose")  # shows the TLS version
    else:
        # gsasl refuses a non-PLUS SCRAM when the server offers PLUS (its downgrade
        # guard): without channel binding on its side it uses the plain variant.
        args.append("--no-cb")
    return subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )


MECHS = [
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256-PLUS",
]


@pytest.mark.parametrize("mech", MECHS)
def test_gsasl_authenticates_with_every_mechanism(server: MailServer, mech: str) -> None:
    r = gsasl(server, mech, PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout
    if mech.endswith("-PLUS"):  # tls-exporter channel binding (RFC 9266)
        assert "(TLS1.3)" in r.stdout + r.stderr


@pytest.mark.parametrize("mech", ["PLAIN", "CRAM-MD5", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"])
def test_gsasl_with_a_wrong_password_fails(server: MailServer, mech: str) -> None:
    r = gsasl(server, mech, "not the password")
    assert r.returncode != 0
    assert "535 5.7.8" in r.stdout


def _smtp_tls(server: MailServer) -> tuple[ssl.SSLSocket, "socket.SocketIO"]:
    raw = socket.create_connection(("127.0.0.1", server.ports["submissions"]), timeout=30)
    ctx = server.client_tls()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sock = ctx.wrap_socket(raw)
    return sock, sock.makefile("rwb")  # type: ignore[return-value]


def _reply(f: "socket.SocketIO") -> list[bytes]:
    lines = [f.readline()]  # type: ignore[attr-defined]
    while lines[-1][3:4] == b"-":
        lines.append(f.readline())  # type: ignore[attr-defined]
    return lines


def scram_plus(server: MailServer, alter: bool) -> bytes:
    sock, f = _smtp_tls(server)
    with sock:
        _reply(f)
        f.write(b"EHLO client.example\r\n")  # type: ignore[attr-defined]
        f.flush()  # type: ignore[attr-defined]
        assert b"SCRAM-SHA-256-PLUS" in b"".join(_reply(f))
        cb = channel_binding_for(sock)
        assert cb is not None and cb.type == "tls-exporter"
        if alter:
            cb = ChannelBinding(cb.type, bytes([cb.data[0] ^ 1]) + cb.data[1:])
        client = ScramClient("SHA-256", "you@example.org", PASSWORD, channel_binding=cb, plus=True)
        first = base64.b64encode(client.client_first())
        f.write(b"AUTH SCRAM-SHA-256-PLUS " + first + b"\r\n")  # type: ignore[attr-defined]
        f.flush()  # type: ignore[attr-defined]
        line = _reply(f)[0]
        assert line.startswith(b"334 ")
        final = client.server_first(base64.b64decode(line[4:].strip()))
        f.write(base64.b64encode(final) + b"\r\n")  # type: ignore[attr-defined]
        f.flush()  # type: ignore[attr-defined]
        return _reply(f)[0]


def test_scram_plus_with_our_client_over_tls13_succeeds(server: MailServer) -> None:
    assert scram_plus(server, alter=False).startswith(b"334 ")  # server-final follows


def test_scram_plus_with_altered_channel_binding_fails(server: MailServer) -> None:
    assert scram_plus(server, alter=True).startswith(b"535 5.7.8")


def swaks(
    server: MailServer, data: bytes, tmp: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    f = tmp / "data.eml"
    f.write_bytes(data)
    return subprocess.run(
        [
            need("swaks"),
            "--server",
            "127.0.0.1",
            "--port",
            str(server.ports["smtp"]),
            "--helo",
            "client.example",
            "--from",
            "sender@remote.example",
            "--to",
            "you@example.org",
            "--data",
            str(f),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_swaks_delivers(server: MailServer, tmp_path: Path) -> None:
    before = len(server.messages("you"))
    r = swaks(server, b"Subject: swaks\r\n\r\nvia swaks\r\n", tmp_path)
    assert r.returncode == 0, r.stdout
    stored = server.messages("you")
    assert len(stored) == before + 1 and b"Subject: swaks\r\n\r\nvia swaks\r\n" in stored[-1]


def sequences() -> list[str]:
    d = json.loads((DATA / "smtp-smuggling-sequences.json").read_text())
    seqs = set(d["inbound_eod_sequences_The-Login"]) | set(d["outbound_eod_sequences_The-Login"])
    seqs |= {v for v in d["smtpsmug_tests"].values() if "\r" in v or "\n" in v}
    return sorted(seqs)


@pytest.mark.parametrize("seq", sequences(), ids=repr)
def test_swaks_smuggling_sequence_is_refused(server: MailServer, tmp_path: Path, seq: str) -> None:
    before = len(server.messages("you"))
    smuggled = (
        "mail FROM:<smuggled@remote.example>\r\nrcpt TO:<you@example.org>\r\ndata\r\n"
        "From: smuggled@remote.example\r\n\r\nSMUGGLED\r\n"
    )
    data = (f"Subject: smuggling test\r\n\r\ntesting {seq!r}\r\n{seq}{smuggled}\r\n.\r\n").encode()
    r = swaks(server, data, tmp_path, "--no-data-fixup")
    # mox's reply; a NUL before the dot gets its own text
    assert "500 5.5.2 invalid" in r.stdout and "may be smtp smuggling" in r.stdout, r.stdout
    assert r.returncode != 0
    assert not any(b"SMUGGLED" in m for m in server.messages("you")[before:])


def test_session_continues_after_smuggling_attempt(server: MailServer) -> None:
    with socket.create_connection(("127.0.0.1", server.ports["smtp"]), timeout=30) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(
            b"HELO c.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<you@example.org>\r\n"
            b"DATA\r\n"
        )
        f.flush()
        for _ in range(4):
            f.readline()
        f.write(
            b"Subject: x\r\n\r\nbody\n.\nMAIL FROM:<evil@remote.example>\r\n.\r\n"
            b"MAIL FROM:<b@remote.example>\r\n"
        )
        f.flush()
        assert f.readline().startswith(b"500 5.5.2")
        assert f.readline().startswith(b"250 ")


def test_msmtp_submits_with_scram(server: MailServer, tmp_path: Path) -> None:
    before = len(server.messages("other"))
    conf = tmp_path / "msmtprc"
    conf.write_text(
        "account default\nhost 127.0.0.1\n"
        f"port {server.ports['submission']}\ntls on\ntls_starttls on\n"
        f"tls_trust_file {server.directory / 'cert.pem'}\ntls_host_override mail.test.example\n"
        "auth scram-sha-256\nuser you@example.org\n"
        f"password {PASSWORD}\nfrom you@example.org\ndomain client.example\n"
    )
    conf.chmod(0o600)
    msg = b"From: you@example.org\nTo: other@example.org\nSubject: msmtp\n\nfrom msmtp\n"
    r = subprocess.run(
        [need("msmtp"), "-C", str(conf), "other@example.org"],
        input=msg,
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    stored = server.messages("other")
    assert len(stored) == before + 1 and stored[-1].endswith(b"\r\n\r\nfrom msmtp\r\n")
