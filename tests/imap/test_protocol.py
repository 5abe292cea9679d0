"""Response formatting: string forms, mailbox names, sets, dates, status lines."""

import datetime

import pytest

from app.imap import protocol as P
from app.imap.commands import Login
from app.imap.parser import CommandParser

from .helpers import drain


@pytest.mark.parametrize(
    "value,expected",
    [
        ("joe", b"joe"),
        ("", b'""'),
        ("two words", b'"two words"'),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ("a]b", b"a]b"),
        ("a(b", b'"a(b"'),
        ('quo"te', b'{6}\r\nquo"te'),
        ("back\\slash", b"{10}\r\nback\\slash"),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("ümlaut", b"{7}\r\n\xc3\xbcmlaut"),
    ],
)
def test_astring_chooses_atom_quoted_or_literal(value: str, expected: bytes) -> None:
    assert P.astring(value) == expected


def test_utf8_mode_quotes_utf8() -> None:
    assert P.astring("ümlaut", utf8=True) == '"ümlaut"'.encode()
    assert P.string(b"\xff", utf8=True) == b"{1}\r\n\xff"


def test_long_string_becomes_literal() -> None:
    assert P.string("x" * 2000).startswith(b"{2000}\r\n")


def test_quoted_escapes_and_refuses_crlf() -> None:
    assert P.quoted('a"b\\c') == b'"a\\"b\\\\c"'
    with pytest.raises(ValueError):
        P.quoted("a\r\nb")


def test_nstring_and_literal8() -> None:
    assert P.nstring(None) == b"NIL"
    assert P.nstring("x") == b'"x"'
    assert P.literal8(b"\x00\x01") == b"~{2}\r\n\x00\x01"


@pytest.mark.parametrize("value", ["joe", "", "a b", 'q"', "\\", "x\r\ny", "ü", "NIL", "{5}"])
def test_rendered_strings_parse_back(value: str) -> None:
    p = CommandParser()
    p.receive_data(b"a LOGIN " + P.astring(value) + b" " + P.string(value) + b"\r\n")
    evs = [e for e in drain(p) if isinstance(e, Login)]
    assert evs == [Login("a", value, value)]


def test_mailbox_is_utf7_unless_utf8_enabled() -> None:
    assert P.mailbox("Entwürfe") == b"Entw&APw-rfe"
    assert P.mailbox("Entwürfe", utf8=True) == '"Entwürfe"'.encode()
    assert P.mailbox("a&b") == b"a&-b"
    assert P.mailbox("INBOX") == b"INBOX"
    assert P.mailbox("") == b'""'


@pytest.mark.parametrize(
    "numbers,expected",
    [
        ([], b""),
        ([5], b"5"),
        ([1, 2, 3, 5], b"1:3,5"),
        ([5, 3, 1, 2, 2], b"1:3,5"),
        ([1, 3, 5, 6, 7, 9], b"1,3,5:7,9"),
    ],
)
def test_number_set_compression(numbers: list[int], expected: bytes) -> None:
    assert P.number_set(numbers) == expected


def test_copyuid_keeps_order() -> None:
    assert P.copyuid(7, [3, 4, 9], [10, 11, 12]).render() == b"[COPYUID 7 3:4,9 10:12]"
    assert P.appenduid(1, [2]).render() == b"[APPENDUID 1 2]"


def test_date_time_format() -> None:
    tz = datetime.timezone(datetime.timedelta(hours=-7))
    assert (
        P.date_time(datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=tz))
        == b'"17-Jul-1996 02:44:25 -0700"'
    )
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    assert (
        P.date_time(datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz))
        == b'"02-Jan-2024 03:04:05 +0530"'
    )
    assert P.date_time(datetime.datetime(2024, 1, 2, 3, 4, 5)) == b'"02-Jan-2024 03:04:05 +0000"'


def test_date_time_round_trips_through_parser() -> None:
    from app.imap.commands import Append

    tz = datetime.timezone(datetime.timedelta(hours=-8))
    dt = datetime.datetime(1994, 2, 7, 21, 52, 25, tzinfo=tz)
    p = CommandParser()
    p.receive_data(b"a APPEND INBOX " + P.date_time(dt) + b" {1+}\r\nx\r\n")
    cmd = drain(p)[-1]
    assert isinstance(cmd, Append) and cmd.messages[0].date == dt


@pytest.mark.parametrize(
    "args,expected",
    [
        (("a1", "OK", "done", P.uidnext(5)), b"a1 OK [UIDNEXT 5] done\r\n"),
        (("a1", "NO", "quota", P.OVERQUOTA), b"a1 NO [OVERQUOTA] quota\r\n"),
        (("a1", "NO", "too big", P.TOOBIG), b"a1 NO [TOOBIG] too big\r\n"),
        (("a1", "NO", "no", P.CANNOT), b"a1 NO [CANNOT] no\r\n"),
        (("a1", "NO", "no", P.NONEXISTENT), b"a1 NO [NONEXISTENT] no\r\n"),
        (("a1", "NO", "no", P.ALREADYEXISTS), b"a1 NO [ALREADYEXISTS] no\r\n"),
        (("a1", "OK", "x", P.appenduid(1, [2])), b"a1 OK [APPENDUID 1 2] x\r\n"),
        ((None, "BYE", "bye"), b"* BYE bye\r\n"),
        ((None, "PREAUTH", "hi"), b"* PREAUTH hi\r\n"),
        (
            (None, "OK", "x", P.permanentflags(["\\Seen", "\\*"])),
            b"* OK [PERMANENTFLAGS (\\Seen \\*)] x\r\n",
        ),
        ((None, "OK", "x", P.READ_WRITE), b"* OK [READ-WRITE] x\r\n"),
        ((None, "NO", "x", P.badcharset(["UTF-8"])), b"* NO [BADCHARSET (UTF-8)] x\r\n"),
    ],
)
def test_status_lines_with_codes(args: tuple[object, ...], expected: bytes) -> None:
    assert P.status_line(*args) == expected  # type: ignore[arg-type]


def test_status_text_cannot_inject_lines() -> None:
    assert P.tagged("a", "NO", "evil\r\n* OK injected") == b"a NO evil  * OK injected\r\n"
    assert P.continuation() == b"+ Ready\r\n"


def test_builder_lines() -> None:
    b = P.ResponseBuilder()
    b.exists(3).recent(0).flags(["\\Seen"]).expunge(2).vanished([1, 2, 3, 7], earlier=True)
    b.search([1, 5], modseq=9).esearch("t", True, [("MIN", 1), ("ALL", P.number_set([1, 2, 3]))])
    b.list_item(["\\HasNoChildren"], "/", "Entwürfe").status("INBOX", [("MESSAGES", 3)])
    b.ok("t", "done")
    assert b.getvalue() == (
        b"* 3 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Seen)\r\n* 2 EXPUNGE\r\n"
        b"* VANISHED (EARLIER) 1:3,7\r\n* SEARCH 1 5 (MODSEQ 9)\r\n"
        b'* ESEARCH (TAG "t") UID MIN 1 ALL 1:3\r\n'
        b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n* STATUS INBOX (MESSAGES 3)\r\n'
        b"t OK done\r\n"
    )


def test_list_item_nil_delimiter() -> None:
    assert P.ResponseBuilder().list_item([], None, "x").getvalue() == b"* LIST () NIL x\r\n"
