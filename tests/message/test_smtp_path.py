"""SMTP MAIL FROM / RCPT TO paths (RFC 5321 4.1.2, 4.5.3.1; RFC 6531 3.3)."""

import ipaddress

import pytest

from app.dns.domain import Domain
from app.message.address import (
    Address,
    is_postmaster_path,
    parse_smtp_path,
    parse_smtp_path_prefix,
)
from app.message.errors import AddressError, AddressProblem


def problem(text: str, utf8: bool = False) -> AddressProblem:
    with pytest.raises(AddressError) as e:
        parse_smtp_path(text, utf8=utf8)
    return e.value.problem


def test_plain_and_null_path() -> None:
    assert parse_smtp_path("<user@example.com>", utf8=False) == Address(
        "user", Domain.parse("example.com")
    )
    assert parse_smtp_path("<>", utf8=False) is None
    assert parse_smtp_path_prefix("<> BODY=8BITMIME", utf8=False) == (None, "BODY=8BITMIME")


def test_missing_brackets_tolerated() -> None:
    assert parse_smtp_path("user@example.com", utf8=False) is not None


def test_quoted_local_part() -> None:
    a = parse_smtp_path('<"john doe"@example.com>', utf8=False)
    assert a is not None and a.localpart == "john doe"
    a = parse_smtp_path('<"a\\\\b\\"c"@example.com>', utf8=False)
    assert a is not None and a.localpart == 'a\\b"c'
    assert problem('<"bad\x01"@example.com>') is AddressProblem.SYNTAX


def test_dot_string_rules() -> None:
    assert problem("<.a@example.com>") is AddressProblem.SYNTAX
    assert problem("<a.@example.com>") is AddressProblem.SYNTAX
    assert problem("<a..b@example.com>") is AddressProblem.SYNTAX
    assert problem("<a b@example.com>") is AddressProblem.SYNTAX
    assert problem("<@example.com>") is AddressProblem.SYNTAX


def test_source_route_ignored() -> None:
    a = parse_smtp_path("<@relay1.test,@relay2.test:user@example.com>", utf8=False)
    assert a == Address("user", Domain.parse("example.com"))


def test_address_literals() -> None:
    a = parse_smtp_path("<postmaster@[192.0.2.1]>", utf8=False)
    assert a is not None and a.ip == ipaddress.IPv4Address("192.0.2.1")
    assert str(a) == "postmaster@[192.0.2.1]"
    a = parse_smtp_path("<u@[IPv6:2001:db8::1]>", utf8=False)
    assert a is not None and a.ip == ipaddress.IPv6Address("2001:db8::1")
    assert problem("<u@[192.0.2]>") is AddressProblem.BAD_LITERAL
    assert problem("<u@[x-tag:stuff]>") is AddressProblem.BAD_LITERAL
    assert problem("<u@[IPv6:zz]>") is AddressProblem.BAD_LITERAL


def test_utf8_needs_smtputf8() -> None:
    assert problem("<jörg@example.com>") is AddressProblem.NEEDS_SMTPUTF8
    assert problem("<a@bücher.example>") is AddressProblem.NEEDS_SMTPUTF8
    assert problem('<"jörg"@example.com>') is AddressProblem.NEEDS_SMTPUTF8
    a = parse_smtp_path("<jörg@bücher.example>", utf8=True)
    assert a is not None and a.domain.ascii == "xn--bcher-kva.example"
    # an A-label domain needs no SMTPUTF8
    assert parse_smtp_path("<a@xn--bcher-kva.example>", utf8=False) is not None


def test_length_limits() -> None:
    ok = "a" * 64
    assert parse_smtp_path(f"<{ok}@example.com>", utf8=False) is not None
    assert problem(f"<{ok}a@example.com>") is AddressProblem.LOCALPART_TOO_LONG
    # 64 octets counted in UTF-8: 33 two-octet characters is too long
    assert problem("<" + "é" * 33 + "@example.com>", True) is AddressProblem.LOCALPART_TOO_LONG
    long_domain = ".".join(["a" * 63] * 4) + ".example"
    assert problem(f"<a@{long_domain}>") is AddressProblem.DOMAIN_TOO_LONG
    assert problem(f"<a@{'b' * 64}.example>") is AddressProblem.BAD_DOMAIN  # label > 63
    assert parse_smtp_path(f"<{'a' * 100}@example.com>", utf8=False, max_localpart=128)


def test_bad_domains_and_syntax() -> None:
    assert problem("<a@example..com>") is AddressProblem.BAD_DOMAIN
    assert problem("<a@-example.com>") is AddressProblem.BAD_DOMAIN
    assert problem("<a@example.com.>") is AddressProblem.BAD_DOMAIN
    assert problem("<a@>") is AddressProblem.BAD_DOMAIN
    assert problem("<a@example.com") is AddressProblem.SYNTAX
    assert problem("<a@example.com>x") is AddressProblem.SYNTAX
    assert problem("<a@example.com> SIZE=10") is AddressProblem.SYNTAX
    assert problem("<user>") is AddressProblem.SYNTAX


def test_prefix_returns_parameters() -> None:
    a, rest = parse_smtp_path_prefix('<"a b"@example.com>  SIZE=100 BODY=8BITMIME', utf8=False)
    assert a is not None and a.localpart == "a b"
    assert rest == "SIZE=100 BODY=8BITMIME"


def test_postmaster_without_domain() -> None:
    assert is_postmaster_path("<Postmaster>")
    assert not is_postmaster_path("<postmaster@example.com>")


def test_error_carries_data() -> None:
    with pytest.raises(AddressError) as e:
        parse_smtp_path("<a@b..c>", utf8=False)
    assert e.value.text == "<a@b..c>" and e.value.reason
