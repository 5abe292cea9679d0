"""Literal framing: continuation events, LITERAL+/-, literal8, streaming APPEND, limits."""

import pytest

from app.imap import commands as c
from app.imap.errors import ParseError
from app.imap.parser import (
    NEED_DATA,
    AppendBegin,
    AppendData,
    AuthLine,
    CommandParser,
    IdleDone,
    LineTooLong,
    LiteralTooLarge,
    NeedContinuation,
)

from .helpers import drain, events, events_split, merge_append_data


def test_synchronising_literal_asks_for_continuation_before_reading() -> None:
    p = CommandParser()
    p.receive_data(b"a LOGIN {3}\r\n")
    assert p.next_event() == NeedContinuation("a", 3)
    assert p.next_event() is NEED_DATA
    p.receive_data(b"joe {2}\r\n")
    assert p.next_event() == NeedContinuation("a", 2)
    p.receive_data(b"pw\r\n")
    assert p.next_event() == c.Login("a", "joe", "pw")
    assert p.next_event() is NEED_DATA


def test_non_synchronising_literal_needs_no_continuation() -> None:
    assert events(b"a LOGIN {3+}\r\njoe pw\r\n") == [c.Login("a", "joe", "pw")]


def test_zero_length_literal() -> None:
    assert events(b"a LOGIN {0}\r\n {0+}\r\n\r\n") == [
        NeedContinuation("a", 0),
        c.Login("a", "", ""),
    ]


def test_literal_may_contain_crlf_and_specials() -> None:
    assert events(b'a LOGIN joe {6+}\r\n\r\n"{1}\r\n') == [c.Login("a", "joe", '\r\n"{1}')]


def test_literal8_only_where_allowed() -> None:
    (ev,) = events(b"a LOGIN ~{3+}\r\njoe pw\r\n")
    assert isinstance(ev, ParseError) and ev.tag == "a"


def test_nul_in_plain_literal_is_bad() -> None:
    (ev,) = events(b"a LOGIN {3+}\r\nj\x00e pw\r\n")
    assert isinstance(ev, ParseError)


def test_literal_minus_allows_small_non_sync_literals_only() -> None:
    assert events(b"a LOGIN {3+}\r\njoe pw\r\n", literal_plus=False) == [c.Login("a", "joe", "pw")]
    p = CommandParser(literal_plus=False)
    p.receive_data(b"a APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\n")
    assert drain(p) == [LiteralTooLarge("a", 5000, 4096, True)]
    assert p.closed


def test_syntax_error_before_sync_literal_is_reported_without_continuation() -> None:
    p = CommandParser()
    p.receive_data(b"a BLURDYBLOOP {5}\r\n")
    (ev,) = drain(p)
    assert isinstance(ev, ParseError) and ev.tag == "a"
    p.receive_data(b"b NOOP\r\n")
    assert drain(p) == [c.Noop("b")]


def test_syntax_error_before_non_sync_literal_skips_it_and_stays_in_sync() -> None:
    evs = events(b"a BLURDYBLOOP {5+}\r\nb NOO {3+}\r\nxyz\r\nc NOOP\r\n")
    assert len(evs) == 2
    assert isinstance(evs[0], ParseError) and evs[0].tag == "a"
    assert evs[1] == c.Noop("c")


def test_string_literal_over_limit_sync_is_toobig_and_not_read() -> None:
    p = CommandParser(max_string_literal=10)
    p.receive_data(b"a LOGIN {11}\r\n")
    assert drain(p) == [LiteralTooLarge("a", 11, 10, False)]
    assert not p.closed
    p.receive_data(b"b NOOP\r\n")
    assert drain(p) == [c.Noop("b")]


def test_string_literal_over_limit_non_sync_is_fatal() -> None:
    p = CommandParser(max_string_literal=10)
    p.receive_data(b"a LOGIN {11+}\r\nxxxxxxxxxxx x\r\nb NOOP\r\n")
    assert drain(p) == [LiteralTooLarge("a", 11, 10, True)]
    assert p.closed
    p.receive_data(b"c NOOP\r\n")
    assert drain(p) == []


def test_huge_literal_size_does_not_overflow() -> None:
    p = CommandParser()
    p.receive_data(b"a LOGIN {99999999999999999999999999}\r\n")
    (ev,) = drain(p)
    assert isinstance(ev, LiteralTooLarge) and not ev.fatal


def test_too_many_literals_is_refused() -> None:
    line = b"a SEARCH" + b" SUBJECT {1+}\r\nx" * 5 + b"\r\n"
    p = CommandParser(max_literals=3)
    p.receive_data(line)
    evs = drain(p)
    assert isinstance(evs[0], LiteralTooLarge) and evs[0].fatal


def test_command_size_limit_counts_literals() -> None:
    p = CommandParser(max_command=100, max_string_literal=80)
    p.receive_data(b"a LOGIN {60}\r\n")
    assert drain(p) == [NeedContinuation("a", 60)]
    p.receive_data(b"x" * 60 + b" {60}\r\n")
    (ev,) = drain(p)
    assert isinstance(ev, LiteralTooLarge) and not ev.fatal


# --- line limits ---------------------------------------------------------------


def test_line_too_long_is_fatal_by_default_like_mox() -> None:
    p = CommandParser(max_line=20)
    p.receive_data(b"a LOGIN " + b"x" * 30)
    assert drain(p) == [LineTooLong("a", True)]
    assert p.closed


def test_line_too_long_non_fatal_consumes_to_end_of_line() -> None:
    p = CommandParser(max_line=20, line_too_long_fatal=False)
    p.receive_data(b"a LOGIN " + b"x" * 30)
    assert drain(p) == []
    p.receive_data(b"y" * 1000)
    assert drain(p) == []
    p.receive_data(b"zz\r\nb NOOP\r\n")
    assert drain(p) == [LineTooLong("a", False), c.Noop("b")]


def test_line_too_long_non_fatal_with_non_sync_literal_marker_is_fatal() -> None:
    p = CommandParser(max_line=20, line_too_long_fatal=False)
    p.receive_data(b"a LOGIN " + b"x" * 30 + b" {5+}\r\nhello\r\n")
    assert drain(p) == [LineTooLong("a", True)]
    assert p.closed


def test_line_exactly_at_limit_is_accepted() -> None:
    line = b"a LOGIN " + b"x" * 10 + b" y"
    assert events(line + b"\r\n", max_line=len(line)) == [c.Login("a", "x" * 10, "y")]
    (ev,) = events(line + b"\r\n", max_line=len(line) - 1)
    assert isinstance(ev, LineTooLong)


def test_invalid_tag_in_long_line_gives_untagged() -> None:
    (ev,) = events(b"*" * 100, max_line=20)
    assert ev == LineTooLong(None, True)


# --- APPEND streaming ----------------------------------------------------------


def test_append_streams_message_in_bounded_chunks() -> None:
    body = bytes(range(256)) * 40  # 10240 bytes with CR, LF, NUL
    p = CommandParser(chunk_size=1000)
    p.receive_data(b"a APPEND Drafts (\\Draft) {%d}\r\n" % len(body))
    begin, cont = drain(p)
    assert isinstance(begin, AppendBegin)
    assert (begin.mailbox, begin.flags, begin.size, begin.synchronizing) == (
        "Drafts",
        ("\\Draft",),
        len(body),
        True,
    )
    assert cont == NeedContinuation("a", len(body))
    p.receive_data(body + b"\r\n")
    evs = drain(p)
    chunks = [e for e in evs if isinstance(e, AppendData)]
    assert all(len(ch.data) <= 1000 for ch in chunks)
    assert b"".join(ch.data for ch in chunks) == body
    assert evs[-1] == c.Append(
        "a", "Drafts", (c.AppendMessage(("\\Draft",), None, len(body), False, False),)
    )


def test_append_literal_is_not_buffered_in_parser() -> None:
    p = CommandParser(chunk_size=4096, max_literal=10**9)
    p.receive_data(b"a APPEND INBOX {100000000+}\r\n")
    assert isinstance(p.next_event(), AppendBegin)
    for _ in range(10):
        p.receive_data(b"x" * 4096)
        ev = p.next_event()
        assert isinstance(ev, AppendData) and len(ev.data) == 4096
        assert p.next_event() is NEED_DATA
        assert len(p._buf) == 0


def test_multiappend_and_utf8_forms() -> None:
    data = b'a APPEND INBOX (\\Seen) {3+}\r\none UTF8 (~{4+}\r\ntw\x00o) "01-Jan-2020 00:00:00 +0000" ~{5+}\r\nthree\r\n'
    evs = merge_append_data(events(data))
    begins = [e for e in evs if isinstance(e, AppendBegin)]
    assert [b.index for b in begins] == [0, 1, 2]
    assert [(b.utf8, b.binary) for b in begins] == [(False, False), (True, True), (False, True)]
    assert [e for e in evs if isinstance(e, bytes)] == [b"one", b"tw\x00o", b"three"]
    final = evs[-1]
    assert isinstance(final, c.Append) and len(final.messages) == 3


def test_append_mailbox_as_literal() -> None:
    evs = events(b"a APPEND {5+}\r\ninbox {2+}\r\nhi\r\n")
    assert isinstance(evs[0], AppendBegin) and evs[0].mailbox == "INBOX"
    assert evs[-1] == c.Append("a", "INBOX", (c.AppendMessage((), None, 2, False, False),))


def test_append_over_limit_sync_is_toobig_without_reading() -> None:
    p = CommandParser(max_literal=100)
    p.receive_data(b"a APPEND INBOX {101}\r\n")
    assert drain(p) == [LiteralTooLarge("a", 101, 100, False)]
    p.receive_data(b"b NOOP\r\n")
    assert drain(p) == [c.Noop("b")]


def test_append_over_limit_non_sync_is_fatal() -> None:
    p = CommandParser(max_literal=100)
    p.receive_data(b"a APPEND INBOX {101+}\r\n")
    assert drain(p) == [LiteralTooLarge("a", 101, 100, True)]
    assert p.closed


def test_append_trailing_garbage_is_bad_after_streaming() -> None:
    evs = events(b"a APPEND INBOX {2+}\r\nhi junk\r\nb NOOP\r\n")
    assert isinstance(evs[-2], ParseError) and evs[-2].tag == "a"
    assert evs[-1] == c.Noop("b")


def test_append_reject_literal_before_continuation() -> None:
    p = CommandParser()
    p.receive_data(b"a APPEND Nonexistent {5}\r\n")
    ev = p.next_event()
    assert isinstance(ev, AppendBegin)
    p.reject_literal()
    assert p.next_event() is NEED_DATA
    p.receive_data(b"b NOOP\r\n")
    assert drain(p) == [c.Noop("b")]


def test_append_bad_flag_before_literal_is_bad() -> None:
    (ev,) = events(b"a APPEND INBOX (\\Bogus) {5}\r\n")
    assert isinstance(ev, ParseError) and ev.tag == "a"


# --- split at every byte boundary -------------------------------------------------

COMPLEX = [
    b"a1 UID FETCH 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (DATE {4+}\r\nFROM)]<0.100> BINARY[1.2]) (CHANGEDSINCE 5 VANISHED)\r\n",
    b"a2 SEARCH RETURN (MIN) CHARSET UTF-8 OR (SUBJECT {3+}\r\nabc UID 1:*) NOT HEADER X-Y {1+}\r\nz\r\n",
    b'a3 APPEND {5+}\r\nINBOX (\\Seen $x) "01-Jan-2020 10:00:00 +0100" {10+}\r\n0123\r\n6789 UTF8 (~{3+}\r\n\x00\x01\x02)\r\n',
    b"a4 SELECT INBOX (QRESYNC (1 2 1:5 (1:3 4:6)))\r\na5 STORE 1 +FLAGS.SILENT (\\Seen)\r\n",
    b'a6 LIST (SUBSCRIBED) "" ("*" {3+}\r\n&-x) RETURN (CHILDREN STATUS (MESSAGES))\r\n',
    b"a7 LOGIN {3}\r\njoe {2}\r\npw\r\n",
]


@pytest.mark.parametrize("data", COMPLEX, ids=[d[:3].decode() for d in COMPLEX])
def test_split_at_every_byte_boundary_gives_same_events(data: bytes) -> None:
    whole = merge_append_data(events(data))
    assert not any(isinstance(e, ParseError) for e in whole), whole
    for i in range(len(data) + 1):
        assert merge_append_data(events_split([data[:i], data[i:]])) == whole, i


@pytest.mark.parametrize("data", COMPLEX, ids=[d[:3].decode() for d in COMPLEX])
def test_byte_by_byte_feeding_gives_same_events(data: bytes) -> None:
    whole = merge_append_data(events(data))
    assert merge_append_data(events_split([data[i : i + 1] for i in range(len(data))])) == whole


# --- AUTHENTICATE and IDLE modes ---------------------------------------------------


def test_auth_lines_are_raw() -> None:
    p = CommandParser()
    p.receive_data(b"a AUTHENTICATE PLAIN\r\nAGpvZQBwdw==\r\n*\r\n")
    assert p.next_event() == c.Authenticate("a", "PLAIN")
    p.expect_auth_line()
    ev = p.next_event()
    assert isinstance(ev, AuthLine) and ev.data == b"AGpvZQBwdw==" and not ev.cancelled
    p.expect_auth_line()
    ev = p.next_event()
    assert isinstance(ev, AuthLine) and ev.cancelled


def test_auth_line_is_not_parsed_for_literals() -> None:
    p = CommandParser()
    p.expect_auth_line()
    p.receive_data(b"{5+}\r\nb NOOP\r\n")
    assert drain(p) == [AuthLine(b"{5+}"), c.Noop("b")]


def test_idle_done_case_insensitive_and_other_line_is_bad() -> None:
    p = CommandParser()
    p.receive_data(b"a IDLE\r\ndone\r\nb IDLE\r\nNOOP\r\n")
    assert p.next_event() == c.Idle("a")
    p.expect_idle_done("a")
    assert p.next_event() == IdleDone()
    assert p.next_event() == c.Idle("b")
    p.expect_idle_done("b")
    ev = p.next_event()
    assert isinstance(ev, ParseError) and ev.tag == "b"


def test_pipelined_commands_come_out_in_order() -> None:
    evs = events(b"a NOOP\r\nb CAPABILITY\r\nc LOGOUT\r\n")
    assert evs == [c.Noop("a"), c.Capability("b"), c.Logout("c")]
