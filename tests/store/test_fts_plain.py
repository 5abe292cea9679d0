"""Body search of plain single-part messages inside SQLite (``fts._plain_matches``)
gives exactly the answers of decoding each message in Python."""

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import apsw
import pytest

from app.message.summary import summarize
from app.store import AccountStore, fts
from app.store.schema import connect

_HEAD = (
    b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.org>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
)

# (extra header lines, body): plain and not-plain shapes, odd bytes, odd parameters.
CASES: tuple[tuple[bytes, bytes], ...] = (
    (b"", b"The Quick brown FOX jumps\r\n"),
    (b"Content-Type: text/plain; charset=US-ASCII\r\n", b"100% sure_thing a\\b\r\n"),
    (b"Content-Type: text/plain; charset=UTF-8\r\n", "Köln QUICK café fox\r\n".encode()),
    (b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n", b"quick flowed fox\r\n"),
    (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n",
        "K\xf6ln quick fox\r\n".encode("latin-1"),
    ),
    (b"Content-Type: text/html\r\n", b"<b>Quick</b> fox\r\n"),
    (
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n",
        b"\xff\xfequick\x80fox\r\n",
    ),
    (b"Content-Type: text/plain\r\n", b"before NUL\x00 after quick fox\r\n"),
    (b"Content-Type: text/plain\r\n", b"quick\x00fox\r\n"),
    (
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",
        base64.b64encode(b"base64 quick fox 100%") + b"\r\n",
    ),
    (
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n",
        b"qp qu=\r\nick f=4Fx\r\n",
    ),
    (
        b"Content-Type: multipart/alternative; boundary=b\r\n",
        b"--b\r\nContent-Type: text/plain\r\n\r\nquick fox in a part\r\n--b--\r\n",
    ),
    (b"Content-Type: application/octet-stream\r\n", b"quick fox binary\r\n"),
    (b'Content-Type: text/plain; charset=""\r\n', b"Empty charset QUICK\r\n"),
    (b"Content-Type: text/plain\r\n", b""),
)

NEEDLES = (
    "quick",
    "QUICK",
    "qUiCk fOx",
    "fox",
    "k f",
    "100%",
    "sure_thing",
    "sure%thing",
    "e_t",
    "a\\b",
    "%",
    "_",
    "\\",
    "after",
    "after quick",
    "NUL",
    "köln",
    "KÖLN",
    "caf",
    "café",
    "jörg",
    "grüße",
    "subject",
    "x" * 2000,
)


def _has(t: fts.TextTest, x: fts.IndexText) -> bool:
    return fts._text_has(x, t)


def _reference(data: bytes, needle: str) -> bool:
    """The answer of the Python path: raw plain body, else the extracted text."""
    structure = summarize(data).structure
    if needle.isascii():
        plain = fts._plain_body(data, structure)
        if plain is not None:
            return needle.lower().encode() in plain.lower()
    return needle.lower() in fts.extract(data, structure, header=False).body.lower()


@contextmanager
def _conn(store: AccountStore) -> Iterator[apsw.Connection]:
    conn = connect(store.path / "index.db")
    try:
        yield conn
    finally:
        conn.close()


def _message(n: int, headers: bytes, body: bytes) -> bytes:
    return _HEAD + b"Message-ID: <p%d@example.org>\r\n" % n + headers + b"\r\n" + body


async def _deliver_cases(store: AccountStore) -> tuple[list[bytes], int, set[int]]:
    """Deliver every case into Inbox: (messages, Inbox's id, all UIDs)."""
    datas = [_message(n, h, b) for n, (h, b) in enumerate(CASES)]
    for data in datas:
        await store.deliver("Inbox", data)
    return datas, store.mailbox("Inbox").id, set(range(1, len(datas) + 1))


async def test_sql_verification_equals_python(store: AccountStore) -> None:
    datas, mailbox_id, everything = await _deliver_cases(store)
    with _conn(store) as conn:
        for needle in NEEDLES:
            expected = {uid for uid, d in enumerate(datas, 1) if _reference(d, needle)}
            test = fts.TextTest(("body",), needle)
            got = fts._verify(
                conn,
                store.files.root,
                mailbox_id,
                set(everything),
                partial(_has, test),
                needle,
            )
            assert got == expected, needle
            found = await store.select_uids(mailbox_id, fts.TextTest(("body",), needle))
            assert set(found) == expected, needle


async def test_body_search_candidates_stay_in_sqlite(
    store: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A BODY key's candidates go from the index straight to the verifying query: a
    # Python set of them cost ~0.3 MiB of int objects per concurrent search of
    # 5,000 messages, which kept allocator arenas after a burst of searches.
    datas, mailbox_id, _ = await _deliver_cases(store)

    def no_python_set(*args: object) -> set[int]:
        raise AssertionError("body candidates built in Python")

    monkeypatch.setattr(fts, "_fts_uids", no_python_set)
    for needle in NEEDLES:
        if len(needle) <= fts.MIN_TEXT:
            continue
        expected = [uid for uid, d in enumerate(datas, 1) if _reference(d, needle)]
        found = await store.select_uids(mailbox_id, fts.TextTest(("body",), needle))
        assert found == expected, needle


async def test_sql_decides_plain_messages_only(store: AccountStore) -> None:
    datas, mailbox_id, everything = await _deliver_cases(store)
    with _conn(store) as conn:
        found, rest = fts._plain_matches(conn, mailbox_id, fts._json_list(everything), b"quick")
    plain = {
        uid
        for uid, d in enumerate(datas, 1)
        if fts._plain_body(d, summarize(d).structure) is not None
    }
    assert everything - plain <= rest  # nothing SQLite cannot read as plain is decided
    assert 8 in rest and 9 in found  # a LIKE miss past a NUL is left to Python
    assert found <= plain and found.isdisjoint(rest)
    assert {1, 3}.issubset(found)  # plain ASCII/UTF-8 bodies, case folded


async def test_file_backed_messages_are_verified_in_python(store: AccountStore) -> None:
    big = b"Subject: big\r\n\r\n" + b"filler line of text\r\n" * 30000 + b"Needle At End\r\n"
    await store.deliver("Inbox", big)
    await store.deliver("Inbox", _message(1, b"", b"needle at start\r\n"))
    mailbox_id = store.mailbox("Inbox").id
    with _conn(store) as conn:
        found, rest = fts._plain_matches(conn, mailbox_id, fts._json_list({1, 2}), b"needle at")
    assert found == {2} and rest == {1}  # the file-backed message is left to Python
    want = [1, 2]
    assert await store.select_uids(mailbox_id, fts.TextTest(("body",), "NEEDLE AT")) == want


async def test_header_keys_on_the_loop_equal_decoded_values(store: AccountStore) -> None:
    heads = (
        b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@example.org>\r\n"
        b"Subject: =?iso-8859-1?q?R=E9sum=E9?= and MORE\r\n",
        b'From: "Alice Example" <ALICE@Example.ORG>\r\nTo: Bob <bob@example.com>\r\n'
        b"Cc: carol@example.net\r\nSubject: re: resume\r\n",
        b"From: bob@example.com\r\nSubject: =?utf-8?b?S8O2bG4=?=\r\n",
    )
    datas = [h + b"\r\nbody\r\n" for h in heads]
    for data in datas:
        await store.deliver("Inbox", data)
    mailbox_id = store.mailbox("Inbox").id
    keys = {
        "subject": ("résumé", "RÉSUMÉ", "sum", "and more", "Köln", "re:"),
        "hfrom": ("jörg", "MÜLLER", "alice example", "alice@example.org", "bob", '"alice'),
        "hto": ("bob <bob", "BOB@"),
        "hcc": ("carol",),
    }
    attr = {"subject": "subject", "hfrom": "from_", "hto": "to", "hcc": "cc"}
    for column, values in keys.items():
        for value in values:
            test = fts.TextTest((column,), value)
            assert fts.index_only(test)
            expected = [
                uid
                for uid, d in enumerate(datas, 1)
                if value.lower()
                in getattr(fts.extract(d, summarize(d).structure), attr[column]).lower()
            ]
            assert await store.select_uids(mailbox_id, test) == expected, (column, value)
