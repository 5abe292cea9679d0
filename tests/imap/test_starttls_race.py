"""A command sent right behind the TLS 1.3 handshake after STARTTLS is answered.

asyncio can hand the decrypted command to the protocol before start_tls() returns;
the parser must already be the fresh one by then (plaintext sent after STARTTLS is
still dropped: see test_server_session)."""

import asyncio
import ssl

import pytest

from tests.mailserver import setup_server, start


async def starttls_then_noop(port: int, ctx: ssl.SSLContext) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        await r.readline()
        w.write(b"a STARTTLS\r\n")
        assert (await r.readline()).startswith(b"a OK")
        await w.start_tls(ctx)
        w.write(b"b NOOP\r\n")  # at once, no round trip in between
        return await asyncio.wait_for(r.readline(), 10)
    finally:
        w.close()


async def test_first_command_after_tls13_handshake_is_not_lost(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start(setup_server(tmp_path_factory.mktemp("starttls"), services=("imap",)))
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        for _ in range(30):
            assert (await starttls_then_noop(server.ports["imap"], ctx)).startswith(b"b OK")
    finally:
        assert server.stop() == 0
