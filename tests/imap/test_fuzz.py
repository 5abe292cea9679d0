"""Garbage never raises out of the parser (fixed seed, bounded count)."""

import ast
import random
from pathlib import Path

import pytest

from app.imap.commands import Command
from app.imap.errors import ParseError
from app.imap.parser import (
    AppendBegin,
    AppendData,
    AuthLine,
    CommandParser,
    IdleDone,
    LineTooLong,
    LiteralTooLarge,
    NeedContinuation,
)

from .helpers import drain

FUZZ = Path(__file__).parent.parent / "data" / "imap" / "fuzz"
EVENT_TYPES = (
    Command,
    ParseError,
    NeedContinuation,
    LiteralTooLarge,
    LineTooLong,
    AppendBegin,
    AppendData,
    AuthLine,
    IdleDone,
)


def load_dict(name: str) -> list[bytes]:
    """libFuzzer dictionary: one C-style quoted string per line."""
    out: list[bytes] = []
    for line in (FUZZ / name).read_text("utf-8").splitlines():
        line = line.strip()
        if not line.startswith('"'):
            continue
        out.append(ast.literal_eval("b" + line))
    return out


TOKENS = load_dict("imap.dict") + load_dict("terminals.dict")
NAUGHTY = load_dict("blns.dict")
EXTRA = [
    b" ",
    b"(",
    b")",
    b"[",
    b"]",
    b"{3}\r\n",
    b"{2+}\r\n",
    b"~{1+}\r\n",
    b"\r\n",
    b'"',
    b"\\",
    b"*",
    b"$",
    b"1:*",
    b"<0.5>",
    b"UID",
    b"a1",
    b"\x00",
    b"\xff",
    b"&",
    b"&-",
    b"-",
]


def run(data: bytes, rnd: random.Random, **kw: object) -> None:
    p = CommandParser(max_line=2000, max_string_literal=5000, **kw)  # type: ignore[arg-type]
    pos = 0
    while pos < len(data):
        step = rnd.randint(1, 64)
        p.receive_data(data[pos : pos + step])
        pos += step
        for ev in drain(p):
            assert isinstance(ev, EVENT_TYPES), ev
            if isinstance(ev, AppendBegin) and rnd.random() < 0.1:
                p.reject_literal()
            if isinstance(ev, Command) and rnd.random() < 0.05:
                p.expect_auth_line()
            if isinstance(ev, Command) and rnd.random() < 0.05:
                p.expect_idle_done(ev.tag)


def test_token_soup_never_raises() -> None:
    rnd = random.Random(9051)
    vocab = TOKENS + EXTRA
    for _ in range(2500):
        parts = [b"t" + str(rnd.randint(0, 99)).encode() + b" "]
        parts += [
            rnd.choice(vocab) + (b" " if rnd.random() < 0.6 else b"")
            for _ in range(rnd.randint(1, 25))
        ]
        parts.append(b"\r\n")
        run(b"".join(parts), rnd, utf8_enabled=rnd.random() < 0.5, literal_plus=rnd.random() < 0.7)


def test_naughty_strings_in_arguments_never_raise() -> None:
    rnd = random.Random(3501)
    templates = [
        b"a LOGIN %s %s\r\n",
        b"a SELECT %s\r\n",
        b"a SEARCH SUBJECT %s BODY %s\r\n",
        b"a LIST %s %s\r\n",
        b"a CREATE %s\r\n",
        b"a FETCH 1 BODY[HEADER.FIELDS (%s %s)]\r\n",
        b"a ID (%s %s)\r\n",
    ]
    for s in NAUGHTY:
        for t in templates:
            other = rnd.choice(NAUGHTY)
            if t.count(b"%s") == 2:
                line = t.replace(b"%s", s, 1).replace(b"%s", other, 1)
            else:
                line = t.replace(b"%s", s)
            run(line, rnd)
            quoted = b'"' + s.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            run(t.replace(b"%s", quoted), rnd)
            lit = b"{%d+}\r\n" % len(s) + s
            run(t.replace(b"%s", lit), rnd)


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_never_raise(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(300):
        n = rnd.randint(0, 600)
        alphabet = rnd.choice(
            [bytes(range(256)), b'{}+~0123456789\r\n a()[]<>.:*$"\\', b"a1 UID FETCH {5+}\r\n"]
        )
        data = bytes(rnd.choice(alphabet) for _ in range(n))
        run(data, rnd)


def test_parser_recovers_after_garbage_line() -> None:
    p = CommandParser()
    p.receive_data(b"\x00\xff((((]]]\r\nz NOOP\r\n")
    evs = drain(p)
    assert isinstance(evs[0], ParseError)
    assert isinstance(evs[-1], Command) and evs[-1].tag == "z"
