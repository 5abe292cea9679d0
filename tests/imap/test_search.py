"""SEARCH over a real AccountStore through the stand-in context of test_fetch."""

import pytest

from app.imap.commands import Search
from app.imap.errors import IMAPBad, IMAPNo
from app.imap.search import cmd_search
from app.store import AccountStore
from tests.imap.helpers import command
from tests.imap.test_fetch import Ctx, make_ctx, runtime, store

__all__ = ["runtime", "store"]  # fixtures used here


def m(n: int, subject: str, body: str, *, extra: str = "", date: str = "") -> bytes:
    date = date or f"Mon, {n} Jan 2024 10:00:00 +0000"
    return (
        f"From: Sender{n} <s{n}@example.org>\r\nTo: r@example.com\r\n"
        f"Subject: {subject}\r\nDate: {date}\r\n{extra}\r\n{body}\r\n"
    ).encode()


MESSAGES = [
    m(1, "invoice 2024", "Please pay the invoice."),
    m(2, "holiday", "See you at the beach", extra="Cc: carol@example.net\r\n"),
    m(3, "Re: invoice", "Paid. Thanks!", extra="X-Priority: 1\r\n"),
    m(4, "big", "x" * 5000, date="Sun, 31 Dec 2023 23:30:00 -0500"),
    m(5, "no date", "body five"),
]


async def setup(store: AccountStore, **kw: object) -> Ctx:
    ctx = await make_ctx(store, MESSAGES, **kw)  # received 2024-01-01 .. 2024-01-05 12:00
    mbid = ctx.view.mailbox_id
    await store.set_flags(mbid, [1, 3], add=["\\Seen"])
    await store.set_flags(mbid, [2], add=["\\Flagged", "$Important"])
    await store.set_flags(mbid, [3], add=["\\Answered", "\\Deleted"])
    await store.set_flags(mbid, [4], add=["\\Draft"])
    return ctx


async def search(ctx: Ctx, text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    cmd = command(raw + b"\r\n")
    assert isinstance(cmd, Search)
    ctx.lines.clear()
    await cmd_search(ctx, cmd)
    assert len(ctx.lines) <= 1
    return ctx.lines[0] if ctx.lines else b""


CASES = [
    ("ALL", "1 2 3 4 5"),
    ("SEEN", "1 3"),
    ("UNSEEN", "2 4 5"),
    ("ANSWERED", "3"),
    ("UNANSWERED", "1 2 4 5"),
    ("DELETED", "3"),
    ("UNDELETED", "1 2 4 5"),
    ("DRAFT", "4"),
    ("UNDRAFT", "1 2 3 5"),
    ("FLAGGED", "2"),
    ("UNFLAGGED", "1 3 4 5"),
    ("KEYWORD $important", "2"),
    ("UNKEYWORD $Important", "1 3 4 5"),
    ("KEYWORD \\Seen", "1 3"),
    ("NEW", ""),
    ("OLD", "1 2 3 4 5"),
    ("RECENT", ""),
    ("LARGER 1000", "4"),
    ("SMALLER 1000", "1 2 3 5"),
    ("BEFORE 3-Jan-2024", "1 2"),
    ("ON 3-Jan-2024", "3"),
    ("SINCE 3-Jan-2024", "3 4 5"),
    ("SENTBEFORE 2-Jan-2024", "1 4"),
    ("SENTON 31-Dec-2023", "4"),  # the Date header's own day, zone disregarded
    ("SENTSINCE 3-Jan-2024", "3 5"),
    ("FROM sender2", "2"),
    ("FROM S", "1 2 3 4 5"),
    ("TO r@EXAMPLE.com", "1 2 3 4 5"),
    ("CC carol", "2"),
    ("BCC carol", ""),
    ("SUBJECT invoice", "1 3"),
    ("SUBJECT re:", "3"),
    ("BODY invoice", "1"),
    ("BODY paid.", "3"),
    ("TEXT invoice", "1 3"),
    ('TEXT "body five"', "5"),
    ("HEADER X-Priority 1", "3"),
    ('HEADER X-Priority ""', "3"),
    ("HEADER Subject holi", "2"),
    ("UID 2:3", "2 3"),
    ("UID 4:*", "4 5"),
    ("2,4:*", "2 4 5"),
    ("NOT SEEN", "2 4 5"),
    ("OR FLAGGED ANSWERED", "2 3"),
    ("OR (SEEN SUBJECT re) DRAFT", "3 4"),
    ("(UNSEEN NOT DRAFT) SMALLER 500", "2 5"),
    ("NOT (OR BODY invoice BODY beach)", "3 4 5"),
    ("SUBJECT invoice NOT BODY pay", "3"),
]


@pytest.mark.parametrize(("criteria", "expected"), CASES)
async def test_search_keys(store: AccountStore, criteria: str, expected: str) -> None:
    ctx = await setup(store)
    line = await search(ctx, f"a SEARCH {criteria}")
    assert line == f"* SEARCH {expected}".rstrip().encode()


async def test_sequence_numbers_vs_uids(store: AccountStore) -> None:
    ctx = await setup(store)
    mbid = ctx.view.mailbox_id
    await store.set_flags(mbid, [1, 2], add=["\\Deleted"])
    await store.expunge(mbid, [1, 2])
    await ctx.refresh()  # uids 3 4 5 are now sequence numbers 1 2 3
    assert await search(ctx, "a SEARCH UNSEEN") == b"* SEARCH 2 3"
    assert await search(ctx, "a UID SEARCH UNSEEN") == b"* SEARCH 4 5"
    assert await search(ctx, "a SEARCH 2:*") == b"* SEARCH 2 3"
    assert await search(ctx, "a UID SEARCH 1:2") == b"* SEARCH 3 4"
    assert await search(ctx, "a SEARCH UID 1:3") == b"* SEARCH 1"
    with pytest.raises(IMAPBad):
        await search(ctx, "a SEARCH 7")


async def test_messages_not_yet_in_view_are_excluded(store: AccountStore) -> None:
    ctx = await setup(store)
    await store.deliver("Inbox", m(6, "invoice late", "x"))
    assert await search(ctx, "a SEARCH SUBJECT invoice") == b"* SEARCH 1 3"


async def test_esearch_return_options(store: AccountStore) -> None:
    ctx = await setup(store)
    line = await search(ctx, "t1 SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
    assert line == b'* ESEARCH (TAG "t1") MIN 2 MAX 5 COUNT 3 ALL 2,4:5'
    line = await search(ctx, "t2 UID SEARCH RETURN () SEEN")
    assert line == b'* ESEARCH (TAG "t2") UID ALL 1,3'
    line = await search(ctx, "t3 SEARCH RETURN (COUNT MIN) SUBJECT nothing-like-this")
    assert line == b'* ESEARCH (TAG "t3") COUNT 0'


async def test_rev2_always_esearch(store: AccountStore) -> None:
    ctx = await setup(store, rev2=True)
    assert await search(ctx, "t SEARCH SEEN") == b'* ESEARCH (TAG "t") ALL 1,3'
    assert await search(ctx, "t SEARCH SUBJECT zzzz") == b'* ESEARCH (TAG "t")'


async def test_save_and_reuse(store: AccountStore) -> None:
    ctx = await setup(store)
    assert await search(ctx, "t UID SEARCH RETURN (SAVE) UNSEEN") == b""
    assert ctx.searchres == [2, 4, 5]
    assert await search(ctx, "t SEARCH $ SMALLER 1000") == b"* SEARCH 2 5"
    line = await search(ctx, "t SEARCH RETURN (SAVE MIN) SUBJECT invoice")
    assert line == b'* ESEARCH (TAG "t") MIN 1'
    assert ctx.searchres == [1]
    await search(ctx, "t SEARCH RETURN (SAVE MIN MAX) ALL")
    assert ctx.searchres == [1, 5]
    await search(ctx, "t SEARCH RETURN (SAVE COUNT MIN) ALL")
    assert ctx.searchres == [1, 2, 3, 4, 5]


async def test_modseq(store: AccountStore) -> None:
    ctx = await setup(store)
    msgs = await store.messages(ctx.view.mailbox_id)
    flagged = max(x.modseq for x in msgs)
    line = await search(ctx, f"a SEARCH MODSEQ {flagged}")
    assert line == b"* SEARCH 4 (MODSEQ %d)" % flagged
    assert ctx.condstore
    line = await search(ctx, "t SEARCH RETURN (ALL) MODSEQ 1")
    assert line.endswith(b" MODSEQ %d" % flagged)
    assert await search(ctx, f"a SEARCH MODSEQ {flagged + 100}") == b"* SEARCH"


async def test_charsets(store: AccountStore) -> None:
    ctx = await setup(store)
    assert await search(ctx, "a SEARCH CHARSET UTF-8 SUBJECT holiday") == b"* SEARCH 2"
    assert await search(ctx, "a SEARCH CHARSET us-ascii SUBJECT holiday") == b"* SEARCH 2"
    with pytest.raises(IMAPNo) as e:
        await search(ctx, "a SEARCH CHARSET KOI8-R SUBJECT holiday")
    assert e.value.code == "BADCHARSET (UTF-8 US-ASCII)"


async def test_utf8_substring(store: AccountStore) -> None:
    ctx = await make_ctx(store, [m(1, "=?utf-8?q?Gr=C3=BC=C3=9Fe?=", "Straße nach Köln")])

    def lit(s: str) -> bytes:
        data = s.encode()
        return b"{%d+}\r\n" % len(data) + data  # RFC 7888 LITERAL+

    assert await search(ctx, b"a SEARCH CHARSET UTF-8 SUBJECT " + lit("grüße")) == b"* SEARCH 1"
    assert await search(ctx, b"a SEARCH CHARSET UTF-8 BODY " + lit("KÖLN")) == b"* SEARCH 1"
    assert await search(ctx, b"a SEARCH CHARSET UTF-8 BODY " + lit("ö")) == b"* SEARCH 1"


async def test_older_younger(store: AccountStore) -> None:
    ctx = await setup(store)
    assert await search(ctx, "a SEARCH YOUNGER 60") == b"* SEARCH"
    assert await search(ctx, "a SEARCH OLDER 60") == b"* SEARCH 1 2 3 4 5"
