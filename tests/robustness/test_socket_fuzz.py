"""Garbage over real sockets: every service answers or closes cleanly, the log holds no
traceback, and the server still delivers and serves normally afterwards."""

import asyncio
import random
import smtplib

import pytest

from tests.mailserver import setup_server, start

SEED = 20261125
CONNECTIONS = 60  # per service, bounded
OPENERS = {
    "smtp": [
        b"EHLO x\r\n",
        b"MAIL FROM:<a@b>\r\nRCPT TO:<you@example.org>\r\nDATA\r\n",
        b"BDAT 10 LAST\r\n",
        b"AUTH PLAIN\r\n",
        b"STARTTLS\r\n",
    ],
    "submission": [b"EHLO x\r\n", b"AUTH LOGIN\r\n", b"STARTTLS\r\n", b"AUTH SCRAM-SHA-256\r\n"],
    "imap": [
        b"a CAPABILITY\r\n",
        b"a LOGIN {5}\r\n",
        b"a STARTTLS\r\n",
        b"a AUTHENTICATE SCRAM-SHA-256\r\n",
        b"a APPEND INBOX {100000}\r\n",
    ],
    "admin_http": [
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"POST /admin/login HTTP/1.1\r\nContent-Length: 999999\r\n\r\n",
        b"GET /metrics HTTP/1.0\r\n\r\n",
    ],
}


def garbage(rng: random.Random, service: str) -> list[bytes]:
    """A few chunks: maybe a plausible opener, then random bytes and CRLFs."""
    chunks = []
    if rng.random() < 0.7:
        chunks.append(rng.choice(OPENERS[service]))
    for _ in range(rng.randint(1, 4)):
        n = rng.choice([1, 10, 200, 5000])
        alphabet = rng.choice(
            [b"\r\n.:<>{}() *\x00\xff", b"AUTH FETCH DATA \r\n", bytes(range(256))]
        )
        chunks.append(bytes(rng.choice(alphabet) for _ in range(n)))
    return chunks


async def poke(port: int, chunks: list[bytes], rng: random.Random) -> None:
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except OSError:
        return  # refused by a connection limit: fine
    try:
        for chunk in chunks:
            w.write(chunk)
            await w.drain()
            if rng.random() < 0.5:  # sometimes read what came back, sometimes not
                try:
                    await asyncio.wait_for(r.read(65536), 0.2)
                except TimeoutError:
                    pass  # waiting for a literal or more input: the client gives up
    except (ConnectionError, OSError):
        pass  # the server closed on us: allowed
    finally:
        w.close()  # sometimes mid-command, mid-literal: the abrupt end is the test


async def storm(ports: dict[str, int]) -> None:
    rng = random.Random(SEED)
    jobs = [
        poke(port, garbage(rng, svc), rng)
        for svc, port in ports.items()
        for _ in range(CONNECTIONS)
    ]
    for i in range(0, len(jobs), 20):  # 20 at a time, bounded
        await asyncio.gather(*jobs[i : i + 20])


def test_garbage_on_every_service_leaves_no_traceback_and_server_serving(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start(
        setup_server(
            tmp_path_factory.mktemp("fuzz"),
            services=("smtp", "submission", "imap", "admin_http"),
            extra_config="[tuning]\nmax_connections_per_ip = 100\n",
        )
    )
    try:
        asyncio.run(storm(server.ports))
        with smtplib.SMTP(
            "127.0.0.1", server.ports["smtp"], local_hostname="c.example", timeout=30
        ) as c:
            assert (
                c.sendmail(
                    "a@remote.example", ["you@example.org"], b"Subject: after\r\n\r\nstill here\r\n"
                )
                == {}
            )
        assert any(b"still here" in m for m in server.messages("you"))
        assert server.proc is not None
        lines = server.proc.lines
        # The garbage really reached the sessions (not refused at the door).
        assert sum('msg="smtp connection"' in ln for ln in lines) >= 2 * CONNECTIONS
        assert sum('msg="imap connection"' in ln for ln in lines) >= CONNECTIONS
        assert server.proc.tracebacks() == [], "\n".join(lines[-40:])
        errors = [ln for ln in server.proc.lines if "level=error" in ln]
        assert errors == [], errors[:10]
    finally:
        assert server.stop() == 0
