"""Header address lists (RFC 5322 3.4, 4.4) and the Address value."""

import pytest

from app.dns.domain import Domain
from app.message.address import (
    Address,
    canonical_localpart,
    parse_address,
    quote_localpart,
    strip_subaddress,
)
from app.message.addrlist import Group, Mailbox, mailboxes, parse_address_list, parse_mailbox
from app.message.errors import AddressError, AddressProblem


def one(text: str) -> Mailbox:
    (m,) = parse_address_list(text)
    assert isinstance(m, Mailbox)
    return m


def test_plain_list_with_display_names() -> None:
    got = parse_address_list("Mary Smith <mary@x.test>, jdoe@one.test, Who? <one@y.test>")
    assert got == (
        Mailbox("Mary Smith", "mary", "x.test", "", "Mary Smith"),
        Mailbox("", "jdoe", "one.test"),
        Mailbox("Who?", "one", "y.test", "", "Who?"),
    )


def test_groups() -> None:
    got = parse_address_list(
        'A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, "x, y" <xy@z.test>'
    )
    assert isinstance(got[0], Group)
    assert got[0].name == "A Group"
    assert [m.localpart for m in got[0].members] == ["c", "joe", "jdoe"]
    assert got[1] == Mailbox("x, y", "xy", "z.test", "", "x, y")
    assert parse_address_list("undisclosed-recipients:;") == (
        Group("undisclosed-recipients", (), "undisclosed-recipients"),
    )
    assert len(mailboxes(got)) == 4


def test_group_without_semicolon_is_closed_at_end() -> None:
    (g,) = parse_address_list("friends: a@b.test, c@d.test")
    assert isinstance(g, Group) and len(g.members) == 2


def test_comments_and_cfws() -> None:
    # RFC 5322 A.5
    m = one("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>")
    assert (m.name, m.localpart, m.host) == ("Pete", "pete", "silly.test")
    m = one("john.q.public@example.com (John Public)")
    assert (m.name, m.localpart) == ("John Public", "john.q.public")
    m = one("john . doe @ example . com")  # RFC 5322 4.4 obs-local-part
    assert (m.localpart, m.host) == ("john.doe", "example.com")


def test_quoted_local_part_and_display_name() -> None:
    m = one('"Joe Q. Public" <"john doe"@example.com>')
    assert (m.name, m.localpart) == ("Joe Q. Public", "john doe")
    assert m.address() == Address("john doe", Domain.parse("example.com"))
    assert str(m.address()) == '"john doe"@example.com'


def test_encoded_word_display_name() -> None:
    m = one("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>")
    assert m.name == "Keld Jørn Simonsen"
    assert m.raw_name == "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?="
    m = one("=?utf-8?q?a?= =?utf-8?q?b?= (c) <x@y.test>")
    assert m.name == "ab"


def test_eai_and_idna() -> None:
    m = one("Jörg <jörg@bücher.example>")
    a = m.address()
    assert a is not None
    assert a.localpart == "jörg" and a.domain.ascii == "xn--bcher-kva.example"
    assert str(a) == "jörg@bücher.example"
    assert a.pack(False) == "jörg@xn--bcher-kva.example"
    assert a.is_international
    m = one("x@xn--bcher-kva.example")
    assert m.address() == Address("x", Domain.parse("bücher.example"))


def test_obsolete_route() -> None:
    m = one("Route <@r1.test,@r2.test:user@example.com>")
    assert (m.adl, m.localpart, m.host) == ("@r1.test,@r2.test", "user", "example.com")


def test_garbage_is_skipped_never_raises() -> None:
    got = parse_address_list('garbage,,, <>, @@, "unterminated <a@b.test')
    assert next(m.localpart for m in mailboxes(got)) == "garbage"
    for junk in ["<", ">", ":", ";", '"', "(", "\\", "@", ",,,", "a@", "@b", "<<a@b>>", "=?"]:
        parse_address_list(junk)
    m = one("nobody")
    assert m.host == "" and m.address() is None


def test_parse_mailbox() -> None:
    assert parse_mailbox("A <a@b.test>").localpart == "a"
    with pytest.raises(AddressError):
        parse_mailbox("a@b.test, c@d.test")


def test_parse_address_and_quoting() -> None:
    assert parse_address("user@example.com") == Address("user", Domain.parse("example.com"))
    assert parse_address('"a\\"b c"@example.com').localpart == 'a"b c'
    assert quote_localpart('a"b c') == '"a\\"b c"'
    assert quote_localpart("a.b+c") == "a.b+c"
    assert quote_localpart("a..b") == '"a..b"'
    assert quote_localpart("") == '""'
    with pytest.raises(AddressError) as e:
        parse_address("a@b@c")
    assert e.value.problem is AddressProblem.SYNTAX


def test_localpart_is_nfc() -> None:
    decomposed = "jo\u0308rg"
    assert parse_address(decomposed + "@x.test").localpart == "jörg"


def test_subaddress_and_canonical_localpart() -> None:
    assert strip_subaddress("user+tag", ["+"]) == "user"
    assert strip_subaddress("user-tag+x", ["+", "-"]) == "user"
    assert strip_subaddress("user", []) == "user"
    assert canonical_localpart("User+Tag", separators=["+"]) == "user"
    assert canonical_localpart("User+Tag", separators=["+"], case_sensitive=True) == "User"
    assert canonical_localpart("ÉMILE") == "émile"
