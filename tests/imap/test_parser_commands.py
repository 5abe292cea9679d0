"""Every command form parses into the expected typed value."""

import datetime

import pytest

from app.imap import commands as c
from app.imap.errors import ParseError
from app.imap.parser import CommandParser

from .helpers import command, events

S = c.NumSet
R = c.NumRange


def ns(*ranges: tuple[int | None, int | None]) -> c.NumSet:
    return S(tuple(R(a, b) for a, b in ranges))


CASES: list[tuple[bytes, c.Command]] = [
    (b"a CAPABILITY", c.Capability("a")),
    (b"a capability", c.Capability("a")),
    (b"a NOOP", c.Noop("a")),
    (b"a LOGOUT", c.Logout("a")),
    (b"a STARTTLS", c.StartTLS("a")),
    (b"a CHECK", c.Check("a")),
    (b"a CLOSE", c.Close("a")),
    (b"a UNSELECT", c.Unselect("a")),
    (b"a EXPUNGE", c.Expunge("a")),
    (b"a IDLE", c.Idle("a")),
    (b"a NAMESPACE", c.Namespace("a")),
    (b"a UID EXPUNGE 3:5,7", c.Expunge("a", ns((3, 5), (7, 7)))),
    (b"a AUTHENTICATE PLAIN", c.Authenticate("a", "PLAIN")),
    (b"a AUTHENTICATE plain =", c.Authenticate("a", "PLAIN", b"")),
    (b"a AUTHENTICATE PLAIN AGpvZQBwdw==", c.Authenticate("a", "PLAIN", b"\x00joe\x00pw")),
    (b"a AUTHENTICATE SCRAM-SHA-256-PLUS", c.Authenticate("a", "SCRAM-SHA-256-PLUS")),
    (b"a LOGIN joe secret", c.Login("a", "joe", "secret")),
    (b'a LOGIN "joe" "se\\"cr\\\\et"', c.Login("a", "joe", 'se"cr\\et')),
    (b"a LOGIN {3+}\r\njoe {2+}\r\npw", c.Login("a", "joe", "pw")),
    (b"a ENABLE CONDSTORE utf8=accept", c.Enable("a", ("CONDSTORE", "UTF8=ACCEPT"))),
    (b"a SELECT inbox", c.Select("a", "INBOX")),
    (b"a EXAMINE INBOX", c.Select("a", "INBOX", readonly=True)),
    (b"a SELECT Inbox/Sub", c.Select("a", "INBOX/Sub")),
    (b"a SELECT INBOXES", c.Select("a", "INBOXES")),
    (b"a SELECT Archive (CONDSTORE)", c.Select("a", "Archive", condstore=True)),
    (b"a SELECT &ZeVnLIqe-", c.Select("a", "日本語")),
    (
        b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1:10 41:50)))",
        c.Select(
            "a",
            "INBOX",
            qresync=c.QResync(
                67890007, 20050715194045000, ns((41, 41), (43, 211)), (ns((1, 10)), ns((41, 50)))
            ),
        ),
    ),
    (
        b"a EXAMINE INBOX (QRESYNC (1 2 (1 5)))",
        c.Select(
            "a", "INBOX", readonly=True, qresync=c.QResync(1, 2, None, (ns((1, 1)), ns((5, 5))))
        ),
    ),
    (b"a SELECT INBOX (QRESYNC (1 0))", c.Select("a", "INBOX", qresync=c.QResync(1, 0))),
    (b"a CREATE owatagusiam/", c.Create("a", "owatagusiam/")),
    (b"a CREATE Sent (USE (\\Sent))", c.Create("a", "Sent", ("\\Sent",))),
    (b"a CREATE x (USE (\\Junk \\Archive))", c.Create("a", "x", ("\\Junk", "\\Archive"))),
    (b"a DELETE foo", c.Delete("a", "foo")),
    (b"a RENAME blurdybloop sarasoop", c.Rename("a", "blurdybloop", "sarasoop")),
    (b"a RENAME inbox old-mail", c.Rename("a", "INBOX", "old-mail")),
    (b"a SUBSCRIBE #news.comp.mail.mime", c.Subscribe("a", "#news.comp.mail.mime")),
    (b"a UNSUBSCRIBE x", c.Unsubscribe("a", "x")),
    (b'a LIST "" *', c.List("a", "", ("*",))),
    (b"a LIST ~/Mail/ %", c.List("a", "~/Mail/", ("%",))),
    (b'a LIST "" "&ZeVnLIqe-*"', c.List("a", "", ("日本語*",))),
    (
        b'a LIST (SUBSCRIBED REMOTE) "" ("INBOX" "Drafts/%")',
        c.List("a", "", ("INBOX", "Drafts/%"), ("SUBSCRIBED", "REMOTE"), extended=True),
    ),
    (
        b'a LIST "" % RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)',
        c.List("a", "", ("%",), (), ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE"), extended=True),
    ),
    (
        b'a LIST "" % RETURN (STATUS (MESSAGES UNSEEN SIZE))',
        c.List("a", "", ("%",), (), (), ("MESSAGES", "UNSEEN", "SIZE"), extended=True),
    ),
    (b'a LIST () "" % RETURN ()', c.List("a", "", ("%",), extended=True)),
    (b'a LSUB "news." "comp.mail.*"', c.Lsub("a", "news.", "comp.mail.*")),
    (
        b"a STATUS blurdybloop (UIDNEXT MESSAGES)",
        c.Status("a", "blurdybloop", ("UIDNEXT", "MESSAGES")),
    ),
    (
        b"a STATUS x (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT DELETED-STORAGE)",
        c.Status(
            "a",
            "x",
            (
                "MESSAGES",
                "UIDNEXT",
                "UIDVALIDITY",
                "UNSEEN",
                "DELETED",
                "SIZE",
                "RECENT",
                "HIGHESTMODSEQ",
                "APPENDLIMIT",
                "DELETED-STORAGE",
            ),
        ),
    ),
    (
        b"a STORE 2:4 +FLAGS (\\Deleted)",
        c.Store("a", False, ns((2, 4)), "+", False, ("\\Deleted",)),
    ),
    (b"a STORE 1 -flags.silent \\seen", c.Store("a", False, ns((1, 1)), "-", True, ("\\Seen",))),
    (b"a STORE 1 FLAGS ()", c.Store("a", False, ns((1, 1)), "", False, ())),
    (
        b"a STORE 1 FLAGS \\Seen $Junk",
        c.Store("a", False, ns((1, 1)), "", False, ("\\Seen", "$Junk")),
    ),
    (
        b"a UID STORE 1:* (UNCHANGEDSINCE 12345) +FLAGS.SILENT (\\Flagged)",
        c.Store("a", True, ns((1, None)), "+", True, ("\\Flagged",), 12345),
    ),
    (b"a COPY 2:4 MEETING", c.Copy("a", False, ns((2, 4)), "MEETING")),
    (b"a UID COPY $ Trash", c.Copy("a", True, S(saved=True), "Trash")),
    (b"a MOVE 1,3 Archive", c.Move("a", False, ns((1, 1), (3, 3)), "Archive")),
    (b"a UID MOVE 5:3 inbox", c.Move("a", True, ns((5, 3)), "INBOX")),
    (b'a GETQUOTA ""', c.GetQuota("a", "")),
    (b"a GETQUOTAROOT INBOX", c.GetQuotaRoot("a", "INBOX")),
    (b'a SETQUOTA "" (STORAGE 512)', c.SetQuota("a", "", (("STORAGE", 512),))),
    (b'a SETQUOTA "" ()', c.SetQuota("a", "", ())),
    (b"a ID NIL", c.Id("a", None)),
    (
        b'a ID ("name" "sodr" "version" NIL)',
        c.Id("a", (("name", "sodr"), ("version", None))),
    ),
    (b"a ID ()", c.Id("a", ())),
]


@pytest.mark.parametrize(
    "line,expected", CASES, ids=[x[0].decode(errors="replace")[:60] for x in CASES]
)
def test_command_parses(line: bytes, expected: c.Command) -> None:
    assert command(line + b"\r\n") == expected


DATE = datetime.date


SEARCH_CASES: list[tuple[bytes, c.SearchKey]] = [
    (b"ALL", c.SearchAll()),
    (b"1:3,5", c.SearchSet(ns((1, 3), (5, 5)), uid=False)),
    (b"*", c.SearchSet(ns((None, None)), uid=False)),
    (b"$", c.SearchSet(S(saved=True), uid=False)),
    (b"UID 1:*", c.SearchSet(ns((1, None)), uid=True)),
    (b"ANSWERED", c.SearchFlag("\\Answered", True)),
    (b"unanswered", c.SearchFlag("\\Answered", False)),
    (b"DELETED", c.SearchFlag("\\Deleted", True)),
    (b"UNDELETED", c.SearchFlag("\\Deleted", False)),
    (b"DRAFT", c.SearchFlag("\\Draft", True)),
    (b"UNDRAFT", c.SearchFlag("\\Draft", False)),
    (b"FLAGGED", c.SearchFlag("\\Flagged", True)),
    (b"UNFLAGGED", c.SearchFlag("\\Flagged", False)),
    (b"SEEN", c.SearchFlag("\\Seen", True)),
    (b"UNSEEN", c.SearchFlag("\\Seen", False)),
    (b"KEYWORD $Junk", c.SearchFlag("$Junk", True)),
    (b"UNKEYWORD $Junk", c.SearchFlag("$Junk", False)),
    (b"NEW", c.SearchState("NEW")),
    (b"OLD", c.SearchState("OLD")),
    (b"RECENT", c.SearchState("RECENT")),
    (b'BCC "x"', c.SearchText("BCC", "x")),
    (b"BODY hello", c.SearchText("BODY", "hello")),
    (b"CC a", c.SearchText("CC", "a")),
    (b'FROM "Smith"', c.SearchText("FROM", "Smith")),
    (b"SUBJECT {5+}\r\nhello", c.SearchText("SUBJECT", "hello")),
    (b'TEXT "string not in mailbox"', c.SearchText("TEXT", "string not in mailbox")),
    (b"TO b", c.SearchText("TO", "b")),
    (b"HEADER Message-ID <a@b>", c.SearchHeader("Message-ID", "<a@b>")),
    (b"BEFORE 1-Feb-1994", c.SearchDate("BEFORE", DATE(1994, 2, 1))),
    (b'ON "01-feb-1994"', c.SearchDate("ON", DATE(1994, 2, 1))),
    (b"SINCE 31-Dec-2023", c.SearchDate("SINCE", DATE(2023, 12, 31))),
    (b"SENTBEFORE 1-Jan-2000", c.SearchDate("SENTBEFORE", DATE(2000, 1, 1))),
    (b"SENTON 1-Jan-2000", c.SearchDate("SENTON", DATE(2000, 1, 1))),
    (b"SENTSINCE 1-Jan-2000", c.SearchDate("SENTSINCE", DATE(2000, 1, 1))),
    (b"LARGER 1000", c.SearchSize(True, 1000)),
    (b"SMALLER 9999999999", c.SearchSize(False, 9999999999)),
    (b"NOT SEEN", c.SearchNot(c.SearchFlag("\\Seen", True))),
    (
        b"OR SEEN (FLAGGED DRAFT)",
        c.SearchOr(
            c.SearchFlag("\\Seen", True),
            c.SearchAnd((c.SearchFlag("\\Flagged", True), c.SearchFlag("\\Draft", True))),
        ),
    ),
    (
        b"OR OR SEEN DRAFT NOT (1:2 DELETED)",
        c.SearchOr(
            c.SearchOr(c.SearchFlag("\\Seen", True), c.SearchFlag("\\Draft", True)),
            c.SearchNot(
                c.SearchAnd((c.SearchSet(ns((1, 2)), uid=False), c.SearchFlag("\\Deleted", True)))
            ),
        ),
    ),
    (b"MODSEQ 620162338", c.SearchModSeq(620162338)),
    (
        b'MODSEQ "/flags/\\\\draft" all 620162338',
        c.SearchModSeq(620162338, "/flags/\\draft", "ALL"),
    ),
    (b"OLDER 3600", c.SearchAge(True, 3600)),
    (b"YOUNGER 60", c.SearchAge(False, 60)),
]


@pytest.mark.parametrize(
    "text,key", SEARCH_CASES, ids=[x[0].decode(errors="replace") for x in SEARCH_CASES]
)
def test_search_key_parses(text: bytes, key: c.SearchKey) -> None:
    cmd = command(b"t SEARCH " + text + b"\r\n")
    assert cmd == c.Search("t", False, key)


def test_search_top_level_keys_are_anded() -> None:
    cmd = command(b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n')
    assert cmd == c.Search(
        "A282",
        False,
        c.SearchAnd(
            (
                c.SearchFlag("\\Flagged", True),
                c.SearchDate("SINCE", DATE(1994, 2, 1)),
                c.SearchNot(c.SearchText("FROM", "Smith")),
            )
        ),
    )


def test_uid_search_with_esearch_return_and_charset() -> None:
    cmd = command(
        b"t UID SEARCH RETURN (MIN MAX COUNT SAVE) CHARSET UTF-8 TEXT {4+}\r\n\xc3\xa4\xc3\xb6\r\n"
    )
    assert cmd == c.Search(
        "t", True, c.SearchText("TEXT", "äö"), "UTF-8", ("MIN", "MAX", "COUNT", "SAVE")
    )


def test_search_return_empty_means_all() -> None:
    cmd = command(b"t SEARCH RETURN () ALL\r\n")
    assert isinstance(cmd, c.Search) and cmd.return_options == ()


def test_search_charset_latin1_decodes_strings() -> None:
    cmd = command(b"t SEARCH CHARSET ISO-8859-1 SUBJECT {1+}\r\n\xe4\r\n")
    assert cmd == c.Search("t", False, c.SearchText("SUBJECT", "ä"), "ISO-8859-1")


def test_search_unknown_charset_still_parses_for_badcharset_reply() -> None:
    cmd = command(b"t SEARCH CHARSET X-UNKNOWN SUBJECT x\r\n")
    assert isinstance(cmd, c.Search) and cmd.charset == "X-UNKNOWN"


def test_search_nesting_is_bounded() -> None:
    deep = b"t SEARCH " + b"(" * 100 + b"ALL" + b")" * 100 + b"\r\n"
    (ev,) = events(deep)
    assert isinstance(ev, ParseError) and ev.tag == "t"
    deep_not = b"t SEARCH " + b"NOT " * 100 + b"ALL\r\n"
    (ev,) = events(deep_not)
    assert isinstance(ev, ParseError)


def F(name: str, **kw: object) -> c.FetchAtt:
    return c.FetchAtt(name, **kw)  # type: ignore[arg-type]


FETCH_CASES: list[tuple[bytes, tuple[c.FetchAtt, ...]]] = [
    (b"ALL", (F("FLAGS"), F("INTERNALDATE"), F("RFC822.SIZE"), F("ENVELOPE"))),
    (b"FAST", (F("FLAGS"), F("INTERNALDATE"), F("RFC822.SIZE"))),
    (b"full", (F("FLAGS"), F("INTERNALDATE"), F("RFC822.SIZE"), F("ENVELOPE"), F("BODY"))),
    (b"FLAGS", (F("FLAGS"),)),
    (b"(UID RFC822.SIZE INTERNALDATE)", (F("UID"), F("RFC822.SIZE"), F("INTERNALDATE"))),
    (b"(RFC822 RFC822.HEADER RFC822.TEXT)", (F("RFC822"), F("RFC822.HEADER"), F("RFC822.TEXT"))),
    (
        b"(ENVELOPE BODY BODYSTRUCTURE MODSEQ)",
        (F("ENVELOPE"), F("BODY"), F("BODYSTRUCTURE"), F("MODSEQ")),
    ),
    (b"BODY[]", (F("BODY", section=c.Section()),)),
    (
        b"BODY.PEEK[]<0.100>",
        (F("BODY", peek=True, section=c.Section(), partial=c.Partial(0, 100)),),
    ),
    (b"BODY[HEADER]", (F("BODY", section=c.Section((), "HEADER")),)),
    (b"BODY[TEXT]", (F("BODY", section=c.Section((), "TEXT")),)),
    (
        b"BODY.PEEK[HEADER.FIELDS (DATE FROM)]",
        (F("BODY", peek=True, section=c.Section((), "HEADER.FIELDS", ("DATE", "FROM"))),),
    ),
    (
        b'BODY[HEADER.FIELDS.NOT ("Subject" {2+}\r\nTo)]',
        (F("BODY", section=c.Section((), "HEADER.FIELDS.NOT", ("Subject", "To"))),),
    ),
    (b"BODY[1]", (F("BODY", section=c.Section((1,))),)),
    (b"BODY[1.2.3]", (F("BODY", section=c.Section((1, 2, 3))),)),
    (b"BODY[2.MIME]", (F("BODY", section=c.Section((2,), "MIME")),)),
    (b"BODY[4.2.HEADER]", (F("BODY", section=c.Section((4, 2), "HEADER")),)),
    (
        b"BODY[3.TEXT]<5.10>",
        (F("BODY", section=c.Section((3,), "TEXT"), partial=c.Partial(5, 10)),),
    ),
    (b"BODY[1.HEADER.FIELDS (X)]", (F("BODY", section=c.Section((1,), "HEADER.FIELDS", ("X",))),)),
    (b"BINARY[]", (F("BINARY", binary_section=()),)),
    (
        b"BINARY.PEEK[1.2]<0.10>",
        (F("BINARY", peek=True, binary_section=(1, 2), partial=c.Partial(0, 10)),),
    ),
    (b"BINARY.SIZE[1]", (F("BINARY.SIZE", binary_section=(1,)),)),
]


@pytest.mark.parametrize(
    "text,atts", FETCH_CASES, ids=[x[0].decode(errors="replace") for x in FETCH_CASES]
)
def test_fetch_attributes_parse(text: bytes, atts: tuple[c.FetchAtt, ...]) -> None:
    assert command(b"t FETCH 1 " + text + b"\r\n") == c.Fetch("t", False, ns((1, 1)), atts)


def test_uid_fetch_with_changedsince_and_vanished() -> None:
    cmd = command(b"t UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
    assert cmd == c.Fetch("t", True, ns((300, 500)), (F("FLAGS"),), 12345, True)


def test_fetch_saved_result() -> None:
    cmd = command(b"t FETCH $ FLAGS\r\n")
    assert isinstance(cmd, c.Fetch) and cmd.numbers.saved


@pytest.mark.parametrize(
    "line",
    [
        b"t FETCH 0 FLAGS",  # 0 is not a valid sequence number
        b"t FETCH 1:0 FLAGS",
        b"t FETCH 1, FLAGS",
        b"t FETCH 4294967296 FLAGS",  # above number range
        b"t FETCH 1 (FLAGS",
        b"t FETCH 1 BODY.PEEK",
        b"t FETCH 1 BODY[0]",
        b"t FETCH 1 BODY[]<1.0>",
        b"t FETCH 1 BODY[HEADER.FIELDS ()]",
        b"t FETCH 1 FOO",
        b"t FETCH 1 (FLAGS) (VANISHED)",  # VANISHED needs UID FETCH + CHANGEDSINCE
        b"t FETCH 1:$ FLAGS",
        b"t STORE 1 FLAGS (\\Recent)",
        b"t STORE 1 +FLAGS (\\Bogus)",
        b"t STORE 1 XFLAGS (\\Seen)",
        b"t SELECT",
        b"t SELECT INBOX (FOO)",
        b"t SELECT &Jjo",  # invalid modified UTF-7
        b"t SELECT &AGE-",
        b"t LOGIN a",
        b"t LOGIN a b c",
        b"t SEARCH",
        b"t SEARCH FOO",
        b"t SEARCH SINCE 32-Jan-2000",
        b"t SEARCH SINCE 1-Foo-2000",
        b"t SEARCH OR SEEN",
        b"t SEARCH (SEEN",
        b"t STATUS x (MESSAGES BOGUS)",
        b"t STATUS x ()",
        b"t APPEND INBOX",
        b"t UID",
        b"t UID NOOP",
        b"t BLURDYBLOOP",
        b"t NOOP extra",
        b't LOGIN "unterminated',
        b't LOGIN "bad\\escape" x',
        b't ID ("a")',
        b"t ENABLE",
        b"t CREATE x (USE (Sent))",
        b"t AUTHENTICATE PLAIN !!!",
        b"t AUTHENTICATE PLAIN abc",  # bad base64 padding
    ],
)
def test_invalid_command_is_bad_with_tag(line: bytes) -> None:
    evs = events(line + b"\r\n")
    assert len(evs) == 1, evs
    assert isinstance(evs[0], ParseError)
    assert evs[0].tag == "t"


@pytest.mark.parametrize(
    "line", [b"* NOOP", b"+ NOOP", b"a+b NOOP", b"(x NOOP", b" NOOP", b"{1} NOOP"]
)
def test_invalid_tag_is_untagged_bad(line: bytes) -> None:
    evs = events(line + b"\r\n")
    assert len(evs) == 1
    assert isinstance(evs[0], ParseError) and evs[0].tag is None


def test_empty_line_is_untagged_bad() -> None:
    (ev,) = events(b"\r\n")
    assert isinstance(ev, ParseError) and ev.tag is None


def test_bare_lf_line_ending_is_accepted() -> None:
    assert command(b"a NOOP\n") == c.Noop("a")


def test_mailbox_names_are_raw_utf8_after_enable_utf8() -> None:
    p = CommandParser(utf8_enabled=True)
    p.receive_data('a SELECT "Entwürfe"\r\nb SELECT &ZeVnLIqe-\r\n'.encode())
    assert p.next_event() == c.Select("a", "Entwürfe")
    assert p.next_event() == c.Select("b", "&ZeVnLIqe-")


def test_utf8_flag_takes_effect_for_following_commands() -> None:
    p = CommandParser()
    p.receive_data(b"a SELECT &-x\r\nb SELECT &-x\r\n")
    assert p.next_event() == c.Select("a", "&x")
    p.utf8_enabled = True
    assert p.next_event() == c.Select("b", "&-x")


def test_eight_bit_quoted_name_without_utf8_must_be_utf7() -> None:
    (ev,) = events('a SELECT "Entwürfe"\r\n'.encode())
    assert isinstance(ev, ParseError) and ev.tag == "a"


def test_append_date_time_is_parsed_with_zone() -> None:
    evs = events(b'a APPEND INBOX (\\Seen) " 7-Feb-1994 21:52:25 -0800" {1+}\r\nx\r\n')
    cmd = evs[-1]
    assert isinstance(cmd, c.Append)
    dt = cmd.messages[0].date
    assert dt == datetime.datetime(
        1994, 2, 7, 21, 52, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-8))
    )
    assert cmd.messages[0].flags == ("\\Seen",)


@pytest.mark.parametrize(
    "dt",
    [
        b'"7-Feb-1994 21:52:25 -0800"',
        b'"07-Feb-1994 21:52 -0800"',
        b'"07-Feb-1994 25:00:00 +0000"',
        b'"30-Feb-1994 01:00:00 +0000"',
    ],
)
def test_append_bad_date_time_is_bad(dt: bytes) -> None:
    evs = events(b"a APPEND INBOX " + dt + b" {1+}\r\nx\r\n")
    assert isinstance(evs[-1], ParseError) and evs[-1].tag == "a"


def test_sort_and_thread_parse() -> None:
    cmd = command(b"A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n")
    assert cmd == c.Sort("A283", False, ("SUBJECT", "REVERSE DATE"), "UTF-8", c.SearchAll())
    cmd = command(b"A283 UID THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n")
    assert cmd == c.Thread(
        "A283", True, "ORDEREDSUBJECT", "UTF-8", c.SearchDate("SINCE", DATE(2000, 3, 5))
    )


def test_numset_helpers() -> None:
    s = ns((5, 3), (None, 10))
    assert s.ranges[0].bounds(100) == (3, 5)
    assert s.ranges[1].bounds(7) == (7, 10)
    assert s.contains(4, 100) and not s.contains(6, 9) and s.contains(9, 9)


def test_login_password_not_in_repr() -> None:
    assert "secret" not in repr(c.Login("a", "joe", "secret"))
