"""Random input never raises out of the protocol core (fixed seeds, bounded counts)."""

import random

import pytest

from app.smtp.protocol import Limits

from .helpers import Shell

FRAGMENTS = [
    b"EHLO c.example\r\n",
    b"HELO c\r\n",
    b"MAIL FROM:<a@b.example>\r\n",
    b"MAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n",
    b"RCPT TO:<x@y.example>\r\n",
    b"RCPT TO:<x@y.example> NOTIFY=NEVER\r\n",
    b"DATA\r\n",
    b"BDAT 5\r\n",
    b"BDAT 0 LAST\r\n",
    b"BDAT 99999999999999999999 LAST\r\n",
    b"AUTH PLAIN AHUAcA==\r\n",
    b"AUTH LOGIN\r\n",
    b"*\r\n",
    b"STARTTLS\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"VRFY x\r\n",
    b"\r\n.\r\n",
    b".\r\n",
    b"\n.\n",
    b"\r.\r",
    b"\r\n\x00.\r\n",
    b"..\r\n",
    b"\r",
    b"\n",
    b"\x00",
    b"\xff\xfe",
    b"x" * 3000,
    b"QUIT\r\n",
]


def run(data: bytes, rng: random.Random, **kw: object) -> None:
    s = Shell(limits=Limits(data_chunk_size=64, max_message_size=500, max_recipients=3), **kw)  # type: ignore[arg-type]
    s.feed(b"EHLO fuzz.example\r\n")
    i = 0
    while i < len(data) and not s.closed:
        n = rng.randint(1, 64)
        s.feed(data[i : i + n])
        i += n
        if rng.random() < 0.05 and s.p._mode.value == "tls-handshake":
            s.p.start_tls_done()
    s.feed(b"")
    assert s.closed


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 400)))
        run(data, rng)


@pytest.mark.parametrize("submission", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_random_command_soup_never_raises(seed: int, submission: bool) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(150):
        parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 30))]
        if rng.random() < 0.3:
            parts.insert(
                rng.randrange(len(parts) + 1), bytes(rng.randrange(256) for _ in range(20))
            )
        run(
            b"".join(parts),
            rng,
            submission=submission,
            tls_active=submission,
            auth_mechanisms=("PLAIN", "LOGIN"),
        )
