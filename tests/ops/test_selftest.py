"""``pillarbox selftest``: the whole command from source, and its per-service checks
against small stand-in servers (they show that the smtplib/imaplib/http.client side
speaks the protocols, and that a failing check is reported as one)."""

import base64
import json
import re
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from app.config.static import parse
from app.ops import localserve, selftest
from app.tls.certs import generate_self_signed
from tests.serverproc import run_cli


def test_selftest_passes_from_source() -> None:
    r = run_cli(["selftest", "--json"], timeout=180)
    results = json.loads(r.stdout)
    names = [x["name"] for x in results]
    assert names[:6] == ["idna", "data", "setup", "store", "start", "ctl"], r.stdout
    assert names[-1] == "stop"
    assert "xn--bcher-kva.example" in results[0]["detail"]
    assert "Traceback" not in r.stderr
    failed = [x for x in results if not x["ok"]]
    assert not failed and r.returncode == 0, r.stdout + r.stderr


def test_selftest_prints_one_line_per_check() -> None:
    r = run_cli(["selftest"], timeout=180)
    lines = r.stdout.splitlines()
    for name in ("idna", "data", "setup", "store", "start", "ctl", "stop"):
        assert any(re.match(rf"ok +{name} ", line) for line in lines), r.stdout
    last = "selftest passed:" if r.returncode == 0 else "selftest FAILED:"
    assert lines[-1].startswith(last)


def test_failed_start_is_reported_and_cleaned_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selftest, "server_command", lambda: ["false"])
    seen: list[selftest.Result] = []
    results = selftest.selftest(seen.append)
    assert seen == results
    start = next(r for r in results if r.name == "start")
    assert not start.ok and "exited with 1" in start.detail
    assert "stop" not in [r.name for r in results]  # nothing to stop
    directory = Path(next(r for r in results if r.name == "setup").detail.split(":")[0])
    assert not directory.exists()


def test_config_puts_every_service_on_its_free_port() -> None:
    names = ["smtp", "submission", "submissions", "imap", "imaps", "http", "https", "admin_http"]
    ports = selftest.free_ports(names)
    assert len(set(ports.values())) == len(names)
    text = selftest.config_with_ports(localserve.config_text(names), ports, "127.0.0.1:5353")
    cfg = parse(text)
    lst = cfg.listeners["local"]
    assert lst.ips == ["127.0.0.1"]
    for name, port in ports.items():
        assert getattr(lst, name).enabled and lst.port(name) == port
    assert cfg.dns.servers == ["127.0.0.1:5353"]


def test_unknown_service_fails_instead_of_passing_unchecked(tmp_path: Path) -> None:
    run = selftest.Run(tmp_path, lambda r: None)
    assert not run.check("gopher", lambda: selftest.check_service(run, "gopher"))
    assert "no check for this service" in run.results[0].detail


# Stand-in servers for the service checks.


class Mailstore:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.logins: list[str] = []


class Line:
    """Line I/O over a socket that can be switched to TLS."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.f: BinaryIO = sock.makefile("rb")

    def send(self, text: str | bytes) -> None:
        self.sock.sendall(text.encode() if isinstance(text, str) else text)

    def read(self) -> bytes:
        return self.f.readline()

    def starttls(self, ctx: ssl.SSLContext) -> None:
        self.f.close()
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.f = self.sock.makefile("rb")


def smtp_session(io: Line, store: Mailstore, ctx: ssl.SSLContext, tls: bool) -> None:
    io.send("220 localhost ESMTP stand-in\r\n")
    while line := io.read():
        cmd = line.decode().strip()
        verb = cmd.split(" ")[0].upper()
        if verb == "EHLO":
            io.send(
                "250-localhost\r\n" + ("" if tls else "250-STARTTLS\r\n") + "250 AUTH PLAIN\r\n"
            )
        elif verb == "STARTTLS":
            io.send("220 go ahead\r\n")
            io.starttls(ctx)
            tls = True
        elif verb == "AUTH":
            assert tls, "login before TLS"
            store.logins.append(base64.b64decode(cmd.split(" ")[2]).decode())
            io.send("235 ok\r\n")
        elif verb == "DATA":
            io.send("354 go\r\n")
            data = b""
            while (chunk := io.read()) != b".\r\n":
                data += chunk
            store.messages.append(data)
            io.send("250 stored\r\n")
        elif verb == "QUIT":
            io.send("221 bye\r\n")
            return
        else:
            io.send("250 ok\r\n")


def imap_session(io: Line, store: Mailstore, ctx: ssl.SSLContext, tls: bool) -> None:
    io.send("* OK [CAPABILITY IMAP4rev1 STARTTLS] stand-in\r\n")
    while line := io.read():
        tag, _, rest = line.decode().strip().partition(" ")
        cmd = rest.upper()
        if cmd == "CAPABILITY":
            io.send("* CAPABILITY IMAP4rev1" + ("" if tls else " STARTTLS LOGINDISABLED") + "\r\n")
        elif cmd == "STARTTLS":
            io.send(f"{tag} OK begin TLS\r\n")
            io.starttls(ctx)
            tls = True
            continue
        elif cmd.startswith("LOGIN"):
            assert tls, "login before TLS"
            store.logins.append(rest)
        elif cmd.startswith("LIST"):
            io.send('* LIST (\\HasNoChildren) "/" INBOX\r\n* LIST (\\Junk) "/" "Junk"\r\n')
        elif cmd.startswith(("SELECT", "EXAMINE")):
            io.send(f"* {len(store.messages)} EXISTS\r\n")
        elif cmd.startswith("UID SEARCH"):
            want = rest.split('"')[1]
            uids = [str(i + 1) for i, m in enumerate(store.messages) if want.encode() in m]
            io.send("* SEARCH " + " ".join(uids) + "\r\n")
        elif cmd.startswith("UID FETCH"):
            uid = int(rest.split(" ")[2])
            body = store.messages[uid - 1]
            io.send(
                f"* {uid} FETCH (UID {uid} BODY[] {{{len(body)}}}\r\n".encode() + body + b")\r\n"
            )
        elif cmd == "LOGOUT":
            io.send(f"* BYE\r\n{tag} OK bye\r\n")
            return
        io.send(f"{tag} OK done\r\n")


class HTTPHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"not found")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stand_ins(tmp_path: Path) -> Iterator[tuple[selftest.Run, Mailstore]]:
    """A selftest run whose services are stand-ins sharing one mail store."""
    generate_self_signed(["localhost"], tmp_path / "localhost.crt", tmp_path / "localhost.key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "localhost.crt", tmp_path / "localhost.key")
    store = Mailstore()
    servers: list[Any] = []
    r = selftest.Run(tmp_path, lambda res: None)
    for name, session, implicit in [
        ("smtp", smtp_session, False),
        ("submission", smtp_session, False),
        ("submissions", smtp_session, True),
        ("imap", imap_session, False),
        ("imaps", imap_session, True),
    ]:

        class Handler(socketserver.BaseRequestHandler):
            def handle(self, session: Any = session, implicit: bool = implicit) -> None:
                sock = ctx.wrap_socket(self.request, server_side=True) if implicit else self.request
                session(Line(sock), store, ctx, implicit)

        srv: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        servers.append(srv)
        r.ports[name] = srv.server_address[1]
    for name in ("http", "https", "admin_http"):
        srv = HTTPServer(("127.0.0.1", 0), HTTPHandler)
        if name == "https":
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        servers.append(srv)
        r.ports[name] = srv.server_address[1]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield r, store
    for s in servers:
        s.shutdown()
        s.server_close()


def test_smtp_checks_deliver_with_tls_and_login(
    stand_ins: tuple[selftest.Run, Mailstore],
) -> None:
    run, store = stand_ins
    for name in ("submission", "smtp", "submissions"):
        assert run.check(name, partial(selftest.check_smtp, run, name)), run.results[-1]
    assert "STARTTLS" in run.results[0].detail and "logged in" in run.results[0].detail
    assert "STARTTLS" in run.results[1].detail and "logged in" not in run.results[1].detail
    assert "implicit TLS" in run.results[2].detail
    assert len(store.messages) == 3
    assert store.logins == ["\0you@localhost\0pillarbox"] * 2
    # The port 25 message is looked for first: it needs no queue to arrive.
    assert run.delivered[0].startswith("selftest-smtp-")


def test_imap_checks_fetch_the_delivered_message(
    stand_ins: tuple[selftest.Run, Mailstore],
) -> None:
    run, store = stand_ins
    assert run.check("smtp", lambda: selftest.check_smtp(run, "smtp"))
    for name in ("imap", "imaps"):
        assert run.check(name, partial(selftest.check_imap, run, name)), run.results[-1]
        assert "logged in, fetched" in run.results[-1].detail
    assert store.logins == ['LOGIN you@localhost "pillarbox"'] * 2


def test_imap_check_fails_when_the_message_is_missing(
    stand_ins: tuple[selftest.Run, Mailstore], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = stand_ins
    monkeypatch.setattr(selftest, "FIND_TIMEOUT_S", 0.0)
    run.delivered = ["never-sent@localhost"]
    assert not run.check("imap", lambda: selftest.check_imap(run, "imap"))
    assert "never-sent@localhost" in run.results[0].detail


def test_http_checks_accept_any_answer_but_a_server_error(
    stand_ins: tuple[selftest.Run, Mailstore],
) -> None:
    run, _ = stand_ins
    for name in ("http", "https", "admin_http"):
        assert run.check(name, partial(selftest.check_http, run, name)), run.results[-1]
        assert "GET / -> 404" in run.results[-1].detail
