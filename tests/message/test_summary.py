"""summarize(): fields for the store, and never an exception on garbage."""

import random
from datetime import UTC, datetime, timedelta, timezone

from app.message.fixup import crlf
from app.message.part import Part
from app.message.summary import Summary, summarize
from tests.message.mime_corpus import corpus, corpus_files

MSG = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: Re: [list] =?utf-8?q?Fwd:_caf=C3=A9?= (fwd)\r\n"
    b"Date: Mon, 20 Mar 2017 05:12:54 +0600\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"In-Reply-To: <p1@example.com>\r\n"
    b"References: <r0@example.com>\r\n <p1@example.com>\r\n"
    b"\r\n"
    b"hello\r\n"
)


def test_fields() -> None:
    s = summarize(MSG)
    assert isinstance(s, Summary)
    assert s.message_id == "m1@example.org"
    assert s.in_reply_to == ("p1@example.com",)
    assert s.references == ("r0@example.com", "p1@example.com")
    assert s.subject_base == "café"
    assert s.date == datetime(2017, 3, 20, 5, 12, 54, tzinfo=timezone(timedelta(hours=6)))
    p = Part.from_json(s.structure)
    assert p.media_type == "text/plain" and p.envelope is not None
    assert p.envelope.message_id == "<m1@example.org>"


def test_missing_fields() -> None:
    s = summarize(b"\r\nbody")
    assert (s.message_id, s.in_reply_to, s.references, s.subject_base, s.date) == (
        "",
        (),
        (),
        "",
        None,
    )
    assert summarize(b"Date: not a date\r\n\r\n").date is None
    assert summarize(b"Date: 1 Jan 2020 00:00 GMT\r\n\r\n").date == datetime(2020, 1, 1, tzinfo=UTC)


def _check(data: bytes) -> None:
    s = summarize(data)
    assert isinstance(s.structure, str)
    Part.from_json(s.structure)


def test_random_garbage_never_raises() -> None:
    rng = random.Random(5322)
    alphabet = b"\r\n\t :;<>@,\"()[]=?-abcXYZ\x00\xff\xc3\xa9/\\*'%"
    pieces = [
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"\r\n",
        b"From: =?utf-8?q?x?= <a@b>, (c\r\n",
        b"Subject: =?x?b?=?=\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Date: 99 Foo 12345 99:99\r\n",
        b" folded\r\n",
    ]
    for i in range(2500):
        if i % 2:
            data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        else:
            data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
        _check(data)


def test_truncated_corpus_messages_never_raise() -> None:
    rng = random.Random(2045)
    files = corpus_files()
    for path in files:
        data = path.read_bytes()
        cuts = {0, 1, len(data) // 2, len(data) - 1} | {
            rng.randrange(len(data) + 1) for _ in range(8)
        }
        for cut in sorted(cuts):
            _check(data[:cut])
            _check(crlf(data[:cut]))


def test_corpus_summaries() -> None:
    s = summarize(crlf(corpus("msg_46.txt")))
    assert s.subject_base == "GroupwiseForwardingTest"
    assert s.date is not None and s.date.year == 2010


def test_hostile_long_headers_stay_linear() -> None:
    # Each of these made an earlier regex or loop quadratic; they must finish quickly
    # (the pytest timeout is the guard, no timed assert).
    n = 20000
    for v in [" " * n, " ," * n, "(fwd)" * n, ";a*=" * n, "a;" * n, "[x]" * n, '"a" ' * n + "("]:
        data = (
            f"To: {v}\r\nFrom: {v}\r\nSubject: {v}\r\nDate: {v}\r\n"
            f"Content-Type: text/plain{v}\r\n\r\n"
        ).encode()
        _check(data)
