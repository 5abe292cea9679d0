"""Bad input and limits: garbage, huge literals, long lines, connection limits, idle
timeout, clients that do not read, and shutdown with BYE; other sessions carry on."""

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.imap.clients.harness import (
    HOST,
    IMAPServer,
    Raw,
    imap_server,
    login,
    start_server,
    status,
)

__all__ = ["imap_server"]


@pytest.fixture
async def strict_server(tmp_path: Path) -> AsyncIterator[IMAPServer]:
    extra = (
        "[limits]\nidle_timeout_s = 1\nmax_bad_commands = 5\n[tuning]\nmax_connections_per_ip = 3\n"
    )
    srv = await start_server(tmp_path / "strict", extra)
    try:
        yield srv
    finally:
        await srv.server.shutdown()


async def test_garbage_gets_bad_and_session_continues(imap_server: IMAPServer) -> None:
    def run() -> None:
        r = Raw(imap_server)
        r.send(b"\x00\xff\xfe garbage\r\n")
        assert r.line().startswith(b"* BAD")
        r.send(b"a\r\n")
        assert r.line().startswith(b"a BAD")
        r.send(b"b SELECT\r\n")
        assert r.line().startswith(b"b BAD")
        r.send(b"c LOGIN {1000000}\r\n")
        assert r.line().startswith(b"c NO [TOOBIG]")
        assert status(r.cmd("NOOP")) == b"OK"
        r.login()
        assert status(r.cmd("SELECT INBOX")) == b"OK"
        assert status(r.cmd("FETCH 1:* (FLAGS")) == b"BAD"
        assert status(r.cmd("STORE 1 +FLAGS (\\Bogus)")) == b"BAD"
        r.close()

    await asyncio.to_thread(run)


async def test_fatal_input_closes_with_bye(imap_server: IMAPServer) -> None:
    def run() -> None:
        r = Raw(imap_server)
        r.send(b"a LOGIN {99999999+}\r\n")
        assert r.line().startswith(b"* BYE [TOOBIG]")
        assert r.line() == b""
        r.close()
        r = Raw(imap_server, tls=False)
        # Just over the 64 KiB line limit, so the server reads it all before closing.
        r.send(b"a NOOP " + b"x" * (64 * 1024 - 7 + 64))
        assert r.line().startswith(b"* BYE [TOOBIG]")
        r.close()
        other = login(imap_server)  # the server carries on
        other.logout()

    await asyncio.to_thread(run)


async def test_too_many_bad_commands(strict_server: IMAPServer) -> None:
    def run() -> None:
        r = Raw(strict_server)
        for _ in range(6):
            r.send(b"x BOGUS\r\n")
        lines = [r.line() for _ in range(7)]
        assert lines[-1].startswith(b"* BYE too many bad commands")
        r.close()

    await asyncio.to_thread(run)


async def test_connection_limit_per_ip(strict_server: IMAPServer) -> None:
    def run() -> None:
        open_ = [Raw(strict_server, tls=False) for _ in range(3)]
        extra = Raw(strict_server, tls=False)
        assert extra.greeting.startswith(b"* BYE [UNAVAILABLE]")
        extra.close()
        for r in open_:
            assert r.greeting.startswith(b"* OK")
            r.close()

    await asyncio.to_thread(run)


async def test_idle_timeout_says_bye(strict_server: IMAPServer) -> None:
    def run() -> None:
        r = Raw(strict_server, tls=False)
        assert r.line().startswith(b"* BYE autologout")
        assert r.line() == b""
        r.close()

    await asyncio.to_thread(run)


async def test_idle_timeout_counts_from_the_last_command(strict_server: IMAPServer) -> None:
    """A client that was active and then goes silent is still logged out: the idle
    timer, armed by an earlier wait, is pushed back by each command, not lost."""

    def run() -> None:
        r = Raw(strict_server, tls=False)
        for _ in range(3):
            assert status(r.cmd("NOOP")) == b"OK"
        assert r.line().startswith(b"* BYE autologout")
        assert r.line() == b""
        r.close()

    await asyncio.to_thread(run)


async def test_client_that_does_not_read_is_throttled(imap_server: IMAPServer) -> None:
    def run() -> int:
        s = socket.create_connection((HOST, imap_server.port))
        s.recv(4096)
        s.settimeout(3)
        chunk = b"a CAPABILITY\r\n" * 10_000
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:
                s.sendall(chunk)
                sent += len(chunk)
        except TimeoutError:
            pass
        # Another client is served normally meanwhile.
        other = login(imap_server)
        other.logout()
        s.close()
        return sent

    sent = await asyncio.to_thread(run)
    assert sent < 64 * 1024 * 1024, "the server kept reading although nobody read its replies"
    await asyncio.wait_for(asyncio.gather(*imap_server.services.tasks), 10)


async def test_shutdown_says_bye_to_idling_client(tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "s")
    idling = asyncio.Event()
    loop = asyncio.get_running_loop()

    def run() -> list[bytes]:
        r = Raw(srv)
        r.login()
        r.cmd("SELECT INBOX")
        r.send(b"i IDLE\r\n")
        r.line()
        loop.call_soon_threadsafe(idling.set)
        out = [r.line(), r.line()]
        r.close()
        return out

    task = asyncio.ensure_future(asyncio.to_thread(run))
    await idling.wait()
    t0 = loop.time()
    await srv.server.shutdown()
    got = await task
    assert got[0].startswith(b"* BYE server shutting down") and got[1] == b""
    assert loop.time() - t0 < 5
    assert os.path.exists(srv.directory)
