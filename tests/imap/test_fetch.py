"""FETCH over a real AccountStore, through a stand-in CommandContext."""

import asyncio
import re
from array import array
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.imap import fetch as fetch_module
from app.imap.commands import Fetch, FetchAtt
from app.imap.context import MailboxView
from app.imap.errors import IMAPBad, IMAPNo
from app.imap.fetch import cmd_fetch
from app.store import AccountStore, StoreRuntime
from app.store.types import Flag
from tests.imap.helpers import command


@dataclass
class Ctx:
    """Stand-in for the session: the CommandContext protocol over a real store."""

    store: AccountStore
    view: MailboxView
    utf8: bool = False
    rev2: bool = False
    condstore: bool = False
    qresync: bool = False
    searchres: list[int] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    recent: set[int] = field(default_factory=set)

    def is_recent(self, uid: int) -> bool:
        return uid in self.recent

    def enable_condstore(self) -> None:
        self.condstore = True

    def set_searchres(self, uids: list[int]) -> None:
        self.searchres = list(uids)

    def untagged(self, line: bytes) -> None:
        self.lines.append(line)

    def untagged_block(self, data: bytes) -> None:
        assert data.endswith(b"\r\n")
        self.lines.extend(data.split(b"\r\n")[:-1])

    async def refresh(self) -> None:
        """Make the view show every message now in the mailbox (as after NOOP)."""
        self.view.uids = array(
            "I", [m.uid for m in await self.store.messages(self.view.mailbox_id)]
        )


@pytest.fixture
async def runtime() -> AsyncIterator[StoreRuntime]:
    rt = StoreRuntime(workers=2)
    yield rt
    await rt.close()


@pytest.fixture
async def store(runtime: StoreRuntime, tmp_path: Path) -> AsyncIterator[AccountStore]:
    s = await AccountStore.open(tmp_path / "acct", name="mjl", runtime=runtime)
    yield s
    await s.close(force=True)


async def make_ctx(store: AccountStore, messages: list[bytes], **kw: object) -> Ctx:
    """Deliver ``messages`` to Inbox (received 2024-01-0N) and select it."""
    for i, m in enumerate(messages):
        await store.deliver("Inbox", m, received=datetime(2024, 1, i + 1, 12, 0, tzinfo=UTC))
    mb = store.mailbox("Inbox")
    ctx = Ctx(store, MailboxView(mb.id, mb.name, mb.uidvalidity), **kw)  # type: ignore[arg-type]
    await ctx.refresh()
    return ctx


def parse_fetch(text: str) -> Fetch:
    cmd = command(text.encode() + b"\r\n")
    assert isinstance(cmd, Fetch)
    return cmd


async def fetch(ctx: Ctx, text: str) -> list[bytes]:
    ctx.lines.clear()
    await cmd_fetch(ctx, parse_fetch(text))
    return list(ctx.lines)


SIMPLE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: hello\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <simple@example.org>\r\n"
    b"\r\n"
    b"Hello Bob,\r\nthis is the body.\r\n"
)

MULTI = (
    b"From: a@example.org\r\n"
    b"Subject: multi\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=C3=A9\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
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
    b"--XX\r\n"
    b"Content-Type: application/x-weird\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644\r\n"
    b"--XX--\r\n"
)


async def test_flags_uid_internaldate_size(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    (line,) = await fetch(ctx, "a FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE UID)")
    assert line == (
        b'* 1 FETCH (FLAGS () INTERNALDATE "01-Jan-2024 12:00:00 +0000" '
        b"RFC822.SIZE %d UID 1)" % len(SIMPLE)
    )


async def test_uid_fetch_implies_uid_first(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE, SIMPLE])
    lines = await fetch(ctx, "a UID FETCH 2:* FLAGS")
    assert lines == [b"* 2 FETCH (UID 2 FLAGS ())"]


async def test_uid_star_beyond_last_gives_last(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE, SIMPLE])
    assert await fetch(ctx, "a UID FETCH 10:* FLAGS") == [b"* 2 FETCH (UID 2 FLAGS ())"]
    assert await fetch(ctx, "a UID FETCH 10:20 FLAGS") == []


async def test_bad_sequence_number(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    with pytest.raises(IMAPBad):
        await fetch(ctx, "a FETCH 2 FLAGS")


async def test_body_peek_does_not_set_seen(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    (line,) = await fetch(ctx, "a FETCH 1 BODY.PEEK[]")
    assert line == b"* 1 FETCH (BODY[] {%d}\r\n" % len(SIMPLE) + SIMPLE + b")"
    (m,) = await store.messages(ctx.view.mailbox_id)
    assert not m.flags


async def test_body_sets_seen_and_reports_flags(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    (line,) = await fetch(ctx, "a FETCH 1 BODY[TEXT]")
    body = SIMPLE.split(b"\r\n\r\n", 1)[1]
    assert line == b"* 1 FETCH (BODY[TEXT] {%d}\r\n" % len(body) + body + b" FLAGS (\\Seen))"
    (m,) = await store.messages(ctx.view.mailbox_id)
    assert "\\Seen" in m.flags
    # Already seen: no implicit FLAGS any more.
    (line,) = await fetch(ctx, "a FETCH 1 RFC822.TEXT")
    assert line.endswith(body + b")")


async def test_readonly_does_not_set_seen(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    ctx.view.readonly = True
    (line,) = await fetch(ctx, "a FETCH 1 RFC822")
    assert b"FLAGS" not in line
    (m,) = await store.messages(ctx.view.mailbox_id)
    assert not m.flags


async def test_header_and_fields(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    header = SIMPLE.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    (line,) = await fetch(ctx, "a FETCH 1 (BODY.PEEK[HEADER] RFC822.HEADER)")
    lit = b"{%d}\r\n" % len(header) + header
    assert line == b"* 1 FETCH (BODY[HEADER] " + lit + b" RFC822.HEADER " + lit + b")"
    (line,) = await fetch(ctx, "a FETCH 1 BODY.PEEK[HEADER.FIELDS (subject FROM)]")
    want = b"From: Alice <alice@example.org>\r\nSubject: hello\r\n\r\n"
    assert line == b"* 1 FETCH (BODY[HEADER.FIELDS (subject FROM)] {%d}\r\n%s)" % (
        len(want),
        want,
    )
    (line,) = await fetch(ctx, "a FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Subject From Date To)]")
    want = b"Message-ID: <simple@example.org>\r\n\r\n"
    assert line.endswith(b"{%d}\r\n%s)" % (len(want), want))


async def test_partial(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    (line,) = await fetch(ctx, "a FETCH 1 BODY.PEEK[]<6.5>")
    assert line == b"* 1 FETCH (BODY[]<6> {5}\r\nAlice)"
    (line,) = await fetch(ctx, "a FETCH 1 BODY.PEEK[]<100000.5>")
    assert line == b"* 1 FETCH (BODY[]<100000> {0}\r\n)"
    (line,) = await fetch(ctx, "a FETCH 1 BODY.PEEK[1]<0.5>")
    assert line == b"* 1 FETCH (BODY[1]<0> {5}\r\nHello)"


async def test_partial_reads_only_the_range(store: AccountStore, tmp_path: Path) -> None:
    big = SIMPLE + b"x" * (300 * 1024) + b"\r\n"  # stored as a file
    ctx = await make_ctx(store, [big])
    calls: list[tuple[int, int | None]] = []
    orig = store.read_range

    async def spy(msg, offset, length):  # type: ignore[no-untyped-def]
        calls.append((offset, length))
        return await orig(msg, offset, length)

    store.read_range = spy  # type: ignore[method-assign]
    try:
        (line,) = await fetch(ctx, "a FETCH 1 (BODY.PEEK[]<0.4> BODY.PEEK[HEADER])")
    finally:
        del store.read_range
    assert line.startswith(b"* 1 FETCH (BODY[]<0> {4}\r\nFrom BODY[HEADER] {")
    assert all(n is not None and n < 1024 for _, n in calls), calls


async def test_multipart_sections(store: AccountStore) -> None:
    ctx = await make_ctx(store, [MULTI])
    (line,) = await fetch(ctx, "a FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2])")
    assert b"BODY[1] {9}\r\ncaf=C3=A9 " in line
    assert b"BODY[1.MIME] {88}\r\nContent-Type: text/plain; charset=utf-8\r\n" in line
    assert b"BODY[2] {8}\r\nAAECAw==)" in line
    (line,) = await fetch(ctx, "a FETCH 1 (BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1])")
    inner_h = b"From: inner@example.org\r\nSubject: inner\r\n\r\n"
    assert b"BODY[3.HEADER] {%d}\r\n%s " % (len(inner_h), inner_h) in line
    assert b"BODY[3.TEXT] {10}\r\ninner body " in line
    assert line.endswith(b"BODY[3.1] {10}\r\ninner body)")
    (line,) = await fetch(ctx, "a FETCH 1 (BODY.PEEK[9] BODY.PEEK[1.HEADER])")
    assert line == b"* 1 FETCH (BODY[9] NIL BODY[1.HEADER] NIL)"


async def test_binary(store: AccountStore) -> None:
    ctx = await make_ctx(store, [MULTI])
    (line,) = await fetch(ctx, "a FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.SIZE[2])")
    assert line == (b"* 1 FETCH (BINARY[1] {5}\r\ncaf\xc3\xa9 BINARY.SIZE[1] 5 BINARY.SIZE[2] 4)")
    (line,) = await fetch(ctx, "a FETCH 1 BINARY.PEEK[2]")
    assert line == b"* 1 FETCH (BINARY[2] ~{4}\r\n\x00\x01\x02\x03)"
    (line,) = await fetch(ctx, "a FETCH 1 BINARY.PEEK[2]<1.2>")
    assert line == b"* 1 FETCH (BINARY[2]<1> {2}\r\n\x01\x02)"
    with pytest.raises(IMAPNo) as e:
        await fetch(ctx, "a FETCH 1 BINARY.PEEK[4]")
    assert e.value.code == "UNKNOWN-CTE"


async def test_binary_sets_seen(store: AccountStore) -> None:
    ctx = await make_ctx(store, [MULTI])
    (line,) = await fetch(ctx, "a FETCH 1 BINARY[1]")
    assert line.endswith(b" FLAGS (\\Seen))")


async def test_envelope_and_bodystructure(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    (line,) = await fetch(ctx, "a FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)")
    env = (
        b'("Mon, 1 Jan 2024 10:00:00 +0100" "hello" (("Alice" NIL "alice" "example.org")) '
        b'(("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) '
        b'((NIL NIL "bob" "example.com")) NIL NIL NIL "<simple@example.org>")'
    )
    body = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 31 2)'
    bs = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 31 2 NIL NIL NIL NIL)'
    assert line == b"* 1 FETCH (ENVELOPE " + env + b" BODY " + body + b" BODYSTRUCTURE " + bs + b")"


async def test_changedsince_and_modseq(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE, SIMPLE, SIMPLE])
    msgs = await store.messages(ctx.view.mailbox_id)
    await store.set_flags(ctx.view.mailbox_id, [2], add=["\\Flagged"])
    lines = await fetch(ctx, f"a FETCH 1:* (FLAGS) (CHANGEDSINCE {msgs[-1].modseq})")
    assert len(lines) == 1
    assert re.fullmatch(rb"\* 2 FETCH \(FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", lines[0])
    assert ctx.condstore
    (line,) = await fetch(ctx, "a FETCH 1 MODSEQ")
    assert line == b"* 1 FETCH (MODSEQ (%d))" % msgs[0].modseq


async def test_vanished(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE, SIMPLE, SIMPLE], qresync=True)
    before = store.mailbox("Inbox").highest_modseq
    await store.set_flags(ctx.view.mailbox_id, [2], add=["\\Deleted"])
    await store.expunge(ctx.view.mailbox_id)
    await ctx.refresh()
    lines = await fetch(ctx, f"a UID FETCH 1:* FLAGS (CHANGEDSINCE {before} VANISHED)")
    assert lines == [b"* VANISHED (EARLIER) 2"]
    (line,) = await fetch(ctx, "a UID FETCH 3 FLAGS")  # QRESYNC: MODSEQ with UID FETCH
    assert re.fullmatch(rb"\* 2 FETCH \(UID 3 FLAGS \(\) MODSEQ \(\d+\)\)", line)
    plain = parse_fetch("a UID FETCH 1:* FLAGS")
    with pytest.raises(IMAPBad):  # the parser refuses this too; the handler checks again
        await cmd_fetch(ctx, Fetch("a", True, plain.numbers, plain.attributes, vanished=True))


async def test_expunged_meanwhile_is_skipped(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE, SIMPLE])
    await store.set_flags(ctx.view.mailbox_id, [1], add=["\\Deleted"])
    await store.expunge(ctx.view.mailbox_id)  # the view still shows uid 1
    lines = await fetch(ctx, "a FETCH 1:2 (UID BODY[])")
    assert len(lines) == 1 and lines[0].startswith(b"* 2 FETCH (UID 2 BODY[]")


async def test_saved_result(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE, SIMPLE, SIMPLE])
    ctx.searchres = [3, 1]
    lines = await fetch(ctx, "a FETCH $ UID")
    assert lines == [b"* 1 FETCH (UID 1)", b"* 3 FETCH (UID 3)"]


async def test_unknown_attribute_is_bad(store: AccountStore) -> None:
    ctx = await make_ctx(store, [SIMPLE])
    numbers = parse_fetch("a FETCH 1 UID").numbers
    with pytest.raises(IMAPBad):
        await cmd_fetch(ctx, Fetch("a", False, numbers, (FetchAtt("X-UNKNOWN"),)))


# --- metadata-only FETCH: rows rendered directly must equal the general path ---------

VARIED_COUNT = 450  # more than the store reads on the loop thread (LOOP_READ_ROWS)
SYSTEM = (Flag.SEEN, Flag.ANSWERED, Flag.FLAGGED, Flag.DELETED, Flag.DRAFT)
KEYWORDS = ("$junk", "$forwarded", "work", "$label1")


def varied_message(i: int) -> bytes:
    return b"Subject: m%d\r\n\r\n" % i + b"x" * (i * 37 % 1500) + b"\r\n"


async def varied_ctx(store: AccountStore) -> Ctx:
    """A mailbox with mixed flags, keywords and sizes; some of the messages the view
    shows are expunged in the store, and some in the store are not in the view yet."""

    async def one(i: int) -> None:
        flags = [f for b, f in enumerate(SYSTEM) if i * 7 % 32 & (1 << b)]
        keywords = [k for b, k in enumerate(KEYWORDS) if i * 5 % 11 & (1 << b)]
        received = datetime(2024, 1 + i % 12, 1 + i % 28, i % 24, i % 60, tzinfo=UTC)
        await store.deliver(
            "Inbox", varied_message(i), flags=flags, keywords=keywords, received=received
        )

    await asyncio.gather(*(one(i) for i in range(VARIED_COUNT)))
    mb = store.mailbox("Inbox")
    ctx = Ctx(store, MailboxView(mb.id, mb.name, mb.uidvalidity), condstore=True)
    await ctx.refresh()
    await store.set_flags(mb.id, range(1, VARIED_COUNT, 9), add=["$MDNSent", "\\Flagged"])
    await store.set_flags(mb.id, range(3, VARIED_COUNT, 10), remove=["$junk"])
    deleted = [m.uid for m in await store.messages(mb.id) if Flag.DELETED in m.flags]
    await store.expunge(mb.id, deleted[::3])  # gone from the store, still in the view
    await one(VARIED_COUNT)  # in the store, not in the view
    return ctx


async def both_paths(ctx: Ctx, text: str, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The responses of the row path; asserts the general path sends the same."""
    with monkeypatch.context() as m:
        m.setattr(fetch_module, "BLOCK", 7)  # several blocks, one of them short
        rows = await fetch(ctx, text)
    with monkeypatch.context() as m:
        m.setattr(fetch_module, "METADATA_ONLY", frozenset())
        general = await fetch(ctx, text)
    assert rows == general
    return rows


METADATA_FETCHES = [
    "a FETCH 1:* (FLAGS UID RFC822.SIZE)",
    "a UID FETCH 1:* (FLAGS RFC822.SIZE)",
    "a FETCH 1:* (UID FLAGS RFC822.SIZE MODSEQ)",
    "a FETCH 1:* FAST",
    "a FETCH 1:* (RFC822.SIZE RFC822.SIZE FLAGS)",
    "a FETCH 1:50,60,200:* (FLAGS)",
    "a FETCH 5,90,400 (FLAGS INTERNALDATE)",
    "a UID FETCH 2:300 (FLAGS)",
    "a UID FETCH 1,100,440:* (MODSEQ UID)",
    "a UID FETCH 1:* (UID) (CHANGEDSINCE 100)",
    "a FETCH 1:* (FLAGS) (CHANGEDSINCE 300)",
    "a FETCH 2 (FLAGS UID)",
]


@pytest.mark.parametrize("text", METADATA_FETCHES)
async def test_metadata_rows_match_general_path(
    store: AccountStore, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    ctx = await varied_ctx(store)
    lines = await both_paths(ctx, text, monkeypatch)
    assert lines
    assert all(b"MODSEQ (" in line for line in lines) == (
        "CHANGEDSINCE" in text or "MODSEQ" in text
    )


async def test_metadata_rows_cover_the_varied_mailbox(
    store: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = await varied_ctx(store)
    lines = await both_paths(ctx, "a FETCH 1:* (FLAGS UID RFC822.SIZE)", monkeypatch)
    present = {m.uid for m in await store.messages(ctx.view.mailbox_id)}
    assert len(lines) == len(present & set(ctx.view.uids)) < len(ctx.view.uids)
    joined = b"\n".join(lines)
    for word in (b"\\Seen", b"\\Draft", b"$junk", b"$mdnsent", b"work", b"FLAGS ()"):
        assert word in joined
    assert b"FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft" in joined


async def test_metadata_rows_with_qresync_and_saved_result(
    store: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = await varied_ctx(store)
    ctx.qresync = True
    lines = await both_paths(ctx, "a UID FETCH 1:* (FLAGS)", monkeypatch)
    assert all(b" MODSEQ (" in line for line in lines)
    ctx.searchres = ctx.view.uids[::3]
    assert len(await both_paths(ctx, "a FETCH $ (RFC822.SIZE)", monkeypatch)) > 100
