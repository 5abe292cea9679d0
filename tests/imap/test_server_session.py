"""IMAP sessions over real sockets: greeting, capabilities, STARTTLS, login, states."""

import asyncio
import imaplib
import sys
from collections.abc import Callable

import pytest

from app.imap.session import SharedState
from tests.imap.clients.harness import (
    ADDRESS,
    HOST,
    PASSWORD,
    IMAPServer,
    Raw,
    client_context,
    connect,
    imap_server,
    login_tls,
    status,
)

__all__ = ["imap_server"]


def test_marker() -> None:
    assert imap_server is not None


def test_connection_ids_and_recent_marks_keep_no_int_objects() -> None:
    # Bookkeeping updated by every connection or SELECT must not hold the int made
    # by the last one: after a burst it sits among freed objects and keeps their
    # allocator arena (1 MiB) from being returned.
    state = SharedState()
    assert [state.new_cid() for _ in range(3)] == ["i1", "i2", "i3"]
    assert [v for v in vars(state).values() if type(v) is int] == []
    assert state.recent_mark("you", 1) is None
    for n in (5001, 5002):
        uid = int(str(n))  # a fresh int object
        refs = sys.getrefcount(uid)
        state.set_recent_mark("you", 1, uid)
        assert sys.getrefcount(uid) == refs
        assert state.recent_mark("you", 1) == n
    assert state.recent_mark("you", 2) is None and state.recent_mark("other", 1) is None


async def test_greeting_and_capabilities_before_tls(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = connect(imap_server, tls=False)
        caps = c.capabilities
        assert "STARTTLS" in caps and "LOGINDISABLED" in caps
        assert "AUTH=PLAIN" not in caps
        assert "AUTH=SCRAM-SHA-256" in caps and "AUTH=CRAM-MD5" in caps
        assert not any(x.endswith("-PLUS") for x in caps)
        assert "IMAP4REV2" in caps and "APPENDLIMIT=104857600" in caps
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            c.login(ADDRESS, PASSWORD)
        c.logout()

    await asyncio.to_thread(run)


async def test_starttls_then_login_and_logout(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = connect(imap_server)
        typ, data = c.capability()
        caps = data[0].decode().split()
        assert "AUTH=PLAIN" in caps and "STARTTLS" not in caps and "LOGINDISABLED" not in caps
        typ, data = c.login(ADDRESS, PASSWORD)
        assert typ == "OK" and b"[CAPABILITY" in data[0]
        assert c.logout()[0] == "BYE"

    await asyncio.to_thread(run)


async def test_implicit_tls_login_by_account_name(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = login_tls(imap_server)
        typ, data = c.select("INBOX")
        assert typ == "OK" and data == [b"0"]
        c.logout()
        c2 = connect(imap_server)
        c2.login("you", PASSWORD)
        c2.logout()
        c3 = connect(imap_server)
        c3.login("YOU@Example.COM", PASSWORD)
        c3.logout()

    await asyncio.to_thread(run)


async def test_wrong_password_is_authenticationfailed(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = connect(imap_server)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login(ADDRESS, "wrong")
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login("nobody@example.com", PASSWORD)
        c.login(ADDRESS, PASSWORD)
        c.logout()

    await asyncio.to_thread(run)


def _scram(mech: str, srv_sock: object, plus: bool) -> Callable[[bytes], bytes]:
    from app.auth.channelbinding import channel_binding_for
    from app.auth.scram import SHA1, SHA256, ScramClient

    cb = channel_binding_for(srv_sock) if plus else None  # type: ignore[arg-type]
    client = ScramClient(
        SHA256 if "256" in mech else SHA1, ADDRESS, PASSWORD, channel_binding=cb, plus=plus
    )
    state = {"step": 0}

    def answer(challenge: bytes) -> bytes:
        state["step"] += 1
        if state["step"] == 1:
            return client.client_first()
        if state["step"] == 2:
            return client.server_first(challenge)
        client.server_final(challenge)
        return b""

    return answer


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN", "CRAM-MD5"])
async def test_authenticate_mechanisms(imap_server: IMAPServer, mech: str) -> None:
    import hashlib
    import hmac

    def run() -> None:
        c = connect(imap_server)
        if mech == "PLAIN":
            auth = lambda _: f"\0{ADDRESS}\0{PASSWORD}".encode()  # noqa: E731
        elif mech == "CRAM-MD5":

            def auth(ch: bytes) -> bytes:
                digest = hmac.new(PASSWORD.encode(), ch, hashlib.md5).hexdigest()
                return f"{ADDRESS} {digest}".encode()
        else:
            auth = _scram(mech, c.sock, False)
        typ, _ = c.authenticate(mech, auth)
        assert typ == "OK"
        assert c.select("INBOX")[0] == "OK"
        c.logout()

    await asyncio.to_thread(run)


async def test_scram_plus_with_channel_binding(imap_server: IMAPServer) -> None:
    from app.auth.channelbinding import tls_exporter_available

    if not await asyncio.to_thread(tls_exporter_available):
        pytest.skip("tls-exporter not available here")

    def run() -> None:
        c = imaplib.IMAP4_SSL(HOST, imap_server.tls_port, ssl_context=client_context())
        assert "AUTH=SCRAM-SHA-256-PLUS" in c.capabilities
        typ, _ = c.authenticate("SCRAM-SHA-256-PLUS", _scram("SCRAM-SHA-256", c.sock, True))
        assert typ == "OK"
        c.logout()

    await asyncio.to_thread(run)


async def test_sasl_ir_and_cancel(imap_server: IMAPServer) -> None:
    import base64
    import socket

    def run() -> None:
        raw = socket.create_connection((HOST, imap_server.tls_port))
        s = client_context().wrap_socket(raw)
        f = s.makefile("rwb")
        assert f.readline().startswith(b"* OK [CAPABILITY")
        f.write(b"a AUTHENTICATE SCRAM-SHA-256\r\n")
        f.flush()
        assert f.readline() == b"+ \r\n"
        f.write(b"*\r\n")
        f.flush()
        assert f.readline().startswith(b"a BAD")
        ir = base64.b64encode(f"\0{ADDRESS}\0{PASSWORD}".encode())
        f.write(b"b AUTHENTICATE PLAIN " + ir + b"\r\n")
        f.flush()
        assert f.readline().startswith(b"b OK [CAPABILITY IMAP4rev2")
        s.close()

    await asyncio.to_thread(run)


async def test_commands_in_wrong_state(imap_server: IMAPServer) -> None:
    def run() -> None:
        c = Raw(imap_server)
        assert status(c.cmd("SELECT INBOX")) == b"BAD"
        c.login()
        assert status(c.cmd("EXPUNGE")) == b"BAD"
        assert status(c.cmd(f"LOGIN {ADDRESS} x")) == b"BAD"
        assert status(c.cmd("STARTTLS")) == b"BAD"
        assert status(c.cmd("FOO")) == b"BAD"
        assert status(c.cmd("NOOP")) == b"OK"
        c.close()

    await asyncio.to_thread(run)


async def test_auth_failures_are_rate_limited_and_logged(
    imap_server: IMAPServer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO)

    def run() -> None:
        c = connect(imap_server)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            c.login(ADDRESS, "wrong")
        c.logout()

    await asyncio.to_thread(run)
    lines = [r for r in caplog.records if r.getMessage() == "authentication failed"]
    assert lines and lines[0].remote_ip == "127.0.0.1"  # type: ignore[attr-defined]
    limiter = imap_server.services.auth_limiter
    for _ in range(20):
        limiter.record_failure("127.0.0.1")

    def refused() -> None:
        with pytest.raises(imaplib.IMAP4.error, match="too many"):
            c = connect(imap_server, tls=False)
            c.noop()

    await asyncio.to_thread(refused)
