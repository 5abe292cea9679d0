"""The full-text index: exact case-insensitive substring search, maintenance with
deliver/copy/move/expunge/delete, consistency check and backfill."""

import base64
from pathlib import Path

from app.store import AccountStore, check_account, fts
from app.store.schema import connect


def msg(subject: str, body: bytes, *, headers: bytes = b"") -> bytes:
    return (
        b"From: Alice Example <alice@example.org>\r\nTo: bob@example.com\r\n"
        + b"Subject: "
        + subject.encode()
        + b"\r\n"
        + headers
        + b"\r\n"
        + body
    )


async def uids(store: AccountStore, test: fts.Test, mailbox: str = "Inbox") -> list[int]:
    return await store.select_uids(store.mailbox(mailbox).id, test, None)


def body(value: str) -> fts.TextTest:
    return fts.TextTest(("body",), value)


async def test_body_substring_case_insensitive(store: AccountStore) -> None:
    await store.deliver("Inbox", msg("one", b"The Quick brown fox\r\n"))
    await store.deliver("Inbox", msg("two", b"lazy dogs sleep\r\n"))
    assert await uids(store, body("quick BROWN")) == [1]
    assert await uids(store, body("uic")) == [1]  # 3 characters: one trigram
    assert await uids(store, body("azy do")) == [2]  # inside words
    assert await uids(store, body("fox lazy")) == []
    assert await uids(store, body("o")) == [1, 2]  # shorter than a trigram: scanned
    assert await uids(store, body("")) == [1, 2]
    assert await uids(store, body("Alice")) == []  # BODY is not the header


async def test_long_query_candidates_are_verified(store: AccountStore) -> None:
    # Both bodies contain every trigram of "abcdef"; only one contains the string.
    await store.deliver("Inbox", msg("a", b"abcd xx cdef\r\n"))
    await store.deliver("Inbox", msg("b", b"zzabcdefzz\r\n"))
    assert await uids(store, body("abcdef")) == [2]


async def test_decoding_of_parts(store: AccountStore) -> None:
    qp = msg(
        "qp",
        b"caf=C3=A9 au lait, long soft=\r\nbreak\r\n",
        headers=b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n",
    )
    b64 = msg(
        "b64",
        base64.b64encode("Grüße aus Köln".encode("latin-1")) + b"\r\n",
        headers=b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: base64\r\n",
    )
    await store.deliver("Inbox", qp)
    await store.deliver("Inbox", b64)
    assert await uids(store, body("CAFÉ")) == [1]
    assert await uids(store, body("softbreak")) == [1]
    assert await uids(store, body("grüSSe")) == []  # no ß -> ss folding, as Dovecot
    assert await uids(store, body("aus köln")) == [2]


async def test_header_columns(store: AccountStore) -> None:
    await store.deliver(
        "Inbox",
        msg("=?utf-8?q?Caf=C3=A9?= meeting", b"x\r\n", headers=b"X-Tag: blue sky\r\n"),
    )
    await store.deliver("Inbox", msg("other", b"x\r\n", headers=b"Cc: carol@example.net\r\n"))
    assert await uids(store, fts.TextTest(("subject",), "café MEET")) == [1]
    assert await uids(store, fts.TextTest(("hfrom",), "alice@EXAMPLE")) == [1, 2]
    assert await uids(store, fts.TextTest(("hcc",), "carol")) == [2]
    assert await uids(store, fts.TextTest(("hto",), "b")) == [1, 2]  # short: scanned
    assert await uids(store, fts.TextTest(("header", "body"), "blue sky")) == [1]
    assert await uids(store, fts.HeaderTest("x-tag", "SKY")) == [1]
    assert await uids(store, fts.HeaderTest("X-Tag", "")) == [1]
    assert await uids(store, fts.HeaderTest("subject", "blue")) == []
    assert await uids(store, fts.HeaderTest("cc", "")) == [2]


async def test_within_restricts(store: AccountStore) -> None:
    for i in range(3):
        await store.deliver("Inbox", msg(f"m{i}", b"common words here\r\n"))
    mbid = store.mailbox("Inbox").id
    assert await store.select_uids(mbid, body("common"), [1, 3]) == [1, 3]
    assert await store.select_uids(mbid, body("co"), [2]) == [2]


def _count(path: Path, sql: str) -> int:
    conn = connect(path / "index.db")
    try:
        value: int = conn.execute(sql).fetchall()[0][0]  # type: ignore[assignment]
        return value
    finally:
        conn.close()


async def test_copy_move_expunge_delete_maintain_index(store: AccountStore) -> None:
    inbox = store.mailbox("Inbox").id
    await store.deliver("Inbox", msg("a", b"needle in a haystack\r\n"))
    archive = store.mailbox("Archive").id
    await store.copy(inbox, [1], archive)
    assert await uids(store, body("needle"), "Archive") == [1]
    # The copy shares the original's index rows.
    assert _count(store.path, "SELECT count(DISTINCT text_id) FROM message_text") == 1
    await store.set_flags(inbox, [1], add=["\\Deleted"])
    await store.expunge(inbox)
    assert await uids(store, body("needle")) == []
    assert await uids(store, body("needle"), "Archive") == [1]
    await store.move(archive, [1], store.mailbox("Trash").id)
    assert await uids(store, body("needle"), "Trash") == [1]
    await store.create_mailbox("Box")
    await store.copy(store.mailbox("Trash").id, [1], store.mailbox("Box").id)
    await store.delete_mailbox("Box")
    await store.set_flags(store.mailbox("Trash").id, [1], add=["\\Deleted"])
    await store.expunge(store.mailbox("Trash").id)
    assert _count(store.path, "SELECT count(*) FROM message_text") == 0
    assert _count(store.path, "SELECT count(*) FROM message_fts_body WHERE rowid > 0") == 0
    assert check_account(store.path) == []
    # A new delivery reuses the text id safely.
    await store.deliver("Inbox", msg("b", b"fresh needle\r\n"))
    assert await uids(store, body("needle")) == [2]
    assert check_account(store.path) == []


async def test_large_file_message_is_indexed(store: AccountStore) -> None:
    big = msg("big", b"filler line\r\n" * 20000 + b"the unique token zyxwv\r\n")
    assert len(big) > store.inline_threshold
    await store.deliver("Inbox", big)
    assert (await store.messages(store.mailbox("Inbox").id))[0].file is not None
    assert await uids(store, body("unique token zyxwv")) == [1]
    assert await uids(store, body("zy")) == [1]  # scan path over a file


async def test_unindexed_messages_are_scanned_then_backfilled(store: AccountStore) -> None:
    await store.deliver("Inbox", msg("a", b"old message text\r\n"))
    await store.deliver("Inbox", msg("b", b"new message text\r\n"))
    # Simulate a message stored before the index existed.
    conn = connect(store.path / "index.db")
    with conn:
        fts.remove(conn, [1])
    conn.close()
    problems = check_account(store.path)
    assert [p.detail for p in problems] == ["1 messages not in the full-text index"]
    assert await uids(store, body("old message")) == [1]
    assert await uids(store, fts.TextTest(("subject",), "a")) == [1]
    assert await store.index_missing() == 1
    assert await store.index_missing() == 0
    assert check_account(store.path) == []
    assert await uids(store, body("old message")) == [1]


def test_extract_structure_walk() -> None:
    from app.message.summary import summarize

    data = (
        b"Subject: =?iso-8859-1?q?r=E9sum=E9?=\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n"
        b"--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n"
        b"--b--\r\n"
    )
    x = fts.extract(data, summarize(data).structure)
    assert x.subject == "résumé"
    assert "<p>hello</p>" in x.body and "inner text" in x.body and "Subject: inner" in x.body
    assert "iVBOR" not in x.body
    assert fts.extract(data, "not json").header.startswith("Subject: résumé")
