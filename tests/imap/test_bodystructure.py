"""ENVELOPE/BODY/BODYSTRUCTURE rendering: hand-checked outputs, and every corpus message
checked against the RFC 9051 grammar and parsed by an independent client (imapclient)."""

from pathlib import Path

import pytest
from imapclient.response_parser import parse_fetch_response  # type: ignore[import-untyped]

from app.imap.bodystructure import body, bodystructure, envelope
from app.message.part import Part, parse
from app.message.summary import summarize

CORPUS = sorted(
    p
    for p in (Path(__file__).parent.parent / "data" / "mime").rglob("*")
    if p.is_file() and p.suffix not in (".md",) and p.name != "NOTICE.txt"
)


def tree(data: bytes) -> Part:
    return Part.from_json(summarize(data).structure)


# --- a small reader for IMAP data, strict enough to check the grammar -------------------

Item = bytes | int | None | list["Item"]


def _read(data: bytes, i: int) -> tuple[Item, int]:
    c = data[i : i + 1]
    if c == b"(":
        out: list[Item] = []
        i += 1
        while data[i : i + 1] != b")":
            if out and data[i : i + 1] == b" ":
                i += 1
            item, i = _read(data, i)
            out.append(item)
        return out, i + 1
    if c == b'"':
        j = i + 1
        buf = bytearray()
        while data[j : j + 1] != b'"':
            if data[j : j + 1] == b"\\":
                j += 1
            assert data[j : j + 1] not in (b"\r", b"\n", b"")
            buf += data[j : j + 1]
            j += 1
        return bytes(buf), j + 1
    if c in (b"{", b"~"):
        j = data.index(b"}", i)
        n = int(data[i + (2 if c == b"~" else 1) : j])
        assert data[j + 1 : j + 3] == b"\r\n"
        return data[j + 3 : j + 3 + n], j + 3 + n
    if data.startswith(b"NIL", i):
        return None, i + 3
    j = i
    while data[j : j + 1].isdigit():
        j += 1
    assert j > i, data[i : i + 20]
    return int(data[i:j]), j


def read_all(data: bytes) -> Item:
    item, i = _read(data, 0)
    assert i == len(data), (i, len(data))
    return item


def _nstring(x: Item) -> bool:
    return x is None or isinstance(x, bytes)


def _params(x: Item) -> bool:
    return x is None or (
        isinstance(x, list)
        and len(x) % 2 == 0
        and len(x) > 0
        and all(isinstance(v, bytes) for v in x)
    )


def _dsp(x: Item) -> bool:
    return x is None or (
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], bytes) and _params(x[1])
    )


def _lang(x: Item) -> bool:
    return _nstring(x) or (isinstance(x, list) and all(isinstance(v, bytes) for v in x))


def check_envelope(x: Item) -> None:
    assert isinstance(x, list) and len(x) == 10
    assert _nstring(x[0]) and _nstring(x[1]) and _nstring(x[8]) and _nstring(x[9])
    for addrs in x[2:8]:
        assert addrs is None or isinstance(addrs, list)
        for a in addrs or []:
            assert isinstance(a, list) and len(a) == 4 and all(_nstring(v) for v in a)


def check_body(x: Item, ext: bool) -> None:
    """RFC 9051 9: body, body-type-1part / body-type-mpart, with or without extensions."""
    assert isinstance(x, list) and x
    if isinstance(x[0], list):
        n = 0
        while n < len(x) and isinstance(x[n], list):
            check_body(x[n], ext)
            n += 1
        rest = x[n:]
        assert isinstance(rest[0], bytes)  # media-subtype
        if ext:
            assert len(rest) == 5, rest
            assert _params(rest[1]) and _dsp(rest[2]) and _lang(rest[3]) and _nstring(rest[4])
        else:
            assert len(rest) == 1
        return
    t, st = x[0], x[1]
    assert isinstance(t, bytes) and isinstance(st, bytes)
    assert _params(x[2]) and _nstring(x[3]) and _nstring(x[4]) and isinstance(x[5], bytes)
    assert isinstance(x[6], int)
    i = 7
    if (t, st) in ((b"MESSAGE", b"RFC822"), (b"MESSAGE", b"GLOBAL")):
        check_envelope(x[7])
        check_body(x[8], ext)
        assert isinstance(x[9], int)
        i = 10
    elif t == b"TEXT":
        assert isinstance(x[7], int)
        i = 8
    rest = x[i:]
    if ext:
        assert len(rest) == 4, x
        assert _nstring(rest[0]) and _dsp(rest[1]) and _lang(rest[2]) and _nstring(rest[3])
    else:
        assert rest == []


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("utf8", [False, True])
def test_corpus_renders_valid_structures(path: Path, utf8: bool) -> None:
    data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    root = tree(data)
    bs = bodystructure(root, utf8=utf8)
    b = body(root, extensions=False, utf8=utf8)
    env = envelope(root.envelope, utf8=utf8)
    check_body(read_all(bs), True)
    check_body(read_all(b), False)
    check_envelope(read_all(env))
    if not utf8:
        assert all(c < 0x80 for c in bs), "8-bit data outside a literal"
    # An independent client library parses the whole FETCH response.
    resp = b"1 (UID 1 ENVELOPE " + env + b" BODYSTRUCTURE " + bs + b" BODY " + b + b")"
    parsed = parse_fetch_response(_split_literals(resp))
    assert b"BODYSTRUCTURE" in parsed[1]


def _split_literals(resp: bytes) -> list[bytes | tuple[bytes, bytes]]:
    """imapclient's input form: literals as (line-with-{n}, data) tuples."""
    out: list[bytes | tuple[bytes, bytes]] = []
    i = 0
    start = 0
    while True:
        j = resp.find(b"}\r\n", i)
        if j < 0:
            break
        k = resp.rindex(b"{", 0, j)
        n = int(resp[k + 1 : j])
        out.append((resp[start : j + 1], resp[j + 3 : j + 3 + n]))
        start = i = j + 3 + n
    out.append(resp[start:])
    return out


MULTI = (
    b"From: a@example.org\r\n"
    b"Subject: multi\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"Content-Language: en, de\r\n"
    b"\r\n"
    b"caf=C3=A9\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-ID: <c1@x>\r\n"
    b'Content-Disposition: attachment; filename="a.bin"\r\n'
    b"\r\n"
    b"AAECAw==\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@example.org\r\n"
    b"Subject: inner\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--XX--\r\n"
)


def test_multipart_by_hand() -> None:
    root = tree(MULTI)
    inner_env = (
        b'(NIL "inner" ((NIL NIL "inner" "example.org")) ((NIL NIL "inner" "example.org")) '
        b'((NIL NIL "inner" "example.org")) NIL NIL NIL NIL NIL)'
    )
    want = (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 9 1 NIL NIL ("en" "de") NIL)'
        b'("APPLICATION" "OCTET-STREAM" NIL "<c1@x>" NIL "BASE64" 8 NIL ("ATTACHMENT" ("FILENAME" "a.bin")) NIL NIL)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 53 '
        + inner_env
        + b' ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)'
        b' "MIXED" ("BOUNDARY" "XX") NIL NIL NIL)'
    )
    assert bodystructure(root) == want
    want_body = (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 9 1)'
        b'("APPLICATION" "OCTET-STREAM" NIL "<c1@x>" NIL "BASE64" 8)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 53 '
        + inner_env
        + b' ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 1) 4)'
        b' "MIXED")'
    )
    assert body(root, extensions=False) == want_body


def test_envelope_groups_and_quoting() -> None:
    data = (
        b'From: "Joe \\"Q\\" Public" <joe@example.org>\r\n'
        b"To: undisclosed:;\r\n"
        b"Cc: team: a@x.org, b@y.org;\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
        b"In-Reply-To: <p@x>\r\n"
        b"\r\n"
        b"x\r\n"
    )
    env = envelope(parse(data).envelope)
    joe = b'(("Joe \\"Q\\" Public" NIL "joe" "example.org"))'  # RFC 9051 9: quoted-specials
    assert env == (
        b'(NIL "=?utf-8?q?caf=C3=A9?=" ' + joe + b" " + joe + b" " + joe + b" "
        b'((NIL NIL "undisclosed" NIL)(NIL NIL NIL NIL)) '
        b'((NIL NIL "team" NIL)(NIL NIL "a" "x.org")(NIL NIL "b" "y.org")(NIL NIL NIL NIL)) '
        b'NIL "<p@x>" NIL)'
    )


def test_non_ascii_parameter_is_encoded_without_utf8() -> None:
    data = (
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.pdf\r\n"
        b"\r\nx\r\n"
    )
    root = tree(data)
    assert b'("FILENAME" "=?utf-8?b?w6l0w6kucGRm?=")' in bodystructure(root)
    assert '("FILENAME" "été.pdf")'.encode() in bodystructure(root, utf8=True)


def test_missing_envelope_renders_nil_envelope() -> None:
    assert envelope(None) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
