"""Email addresses: the :class:`Address` value, SMTP paths and local-part rules.

RFC 5321 4.1.2 (Path, Mailbox, Local-part), RFC 6531 3.3 (UTF-8 in addresses),
RFC 5321 4.5.3.1 (length limits). Local parts are kept decoded (no quotes or
escapes) in Unicode NFC, as mox does; domains are :class:`app.dns.domain.Domain`.
"""

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from app.dns.domain import Domain, DomainError
from app.message.errors import AddressError, AddressProblem

MAX_LOCALPART = 64  # RFC 5321 4.5.3.1.1, octets
MAX_DOMAIN = 255  # RFC 5321 4.5.3.1.2, octets
MAX_PATH = 256  # RFC 5321 4.5.3.1.3, octets including the angle brackets

_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_DOT_ATOM_ASCII = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_DOT_ATOM_UTF8 = re.compile(rf"[{_ATEXT}\u0080-\U0010ffff]+(?:\.[{_ATEXT}\u0080-\U0010ffff]+)*")
# RFC 5321 4.1.2 qtextSMTP / quoted-pairSMTP, RFC 6531 3.3 adds UTF-8.
_QUOTED = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*)"')
_UNESCAPE = re.compile(r"\\(.)")
_DOMAIN_CHARS = re.compile(r"[A-Za-z0-9\-._\u0080-\U0010ffff]+")
_LITERAL = re.compile(r"\[([^\[\]\\]*)\]")
_ROUTE = re.compile(r"@[^,:<>\s]+(?:,\s*@[^,:<>\s]+)*:")


def quote_localpart(localpart: str) -> str:
    """The local part as written in an address: dot-string when possible, else quoted."""
    if localpart and _DOT_ATOM_UTF8.fullmatch(localpart):
        return localpart
    return '"' + localpart.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class Address:
    """An email address. ``localpart`` is decoded and NFC-normalised.

    For an SMTP address literal (``user@[1.2.3.4]``) ``ip`` is set and ``domain``
    holds the bracketed literal text; it never equals a real DNS name.
    """

    localpart: str
    domain: Domain
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None

    def __str__(self) -> str:
        """Display form: quoted local part when needed, Unicode domain."""
        return quote_localpart(self.localpart) + "@" + self.domain.unicode

    def pack(self, utf8: bool) -> str:
        """Wire form; the domain in A-labels unless ``utf8`` (SMTPUTF8) is allowed."""
        return (
            quote_localpart(self.localpart)
            + "@"
            + (self.domain.unicode if utf8 else self.domain.ascii)
        )

    @property
    def is_international(self) -> bool:
        """True when the local part is not ASCII (needs SMTPUTF8, RFC 6531)."""
        return not self.localpart.isascii()


def _err(text: str, reason: str, problem: AddressProblem = AddressProblem.SYNTAX) -> AddressError:
    return AddressError(text, reason, problem)


def _localpart(text: str, i: int, utf8: bool, max_len: int) -> tuple[str, int]:
    """Parse an RFC 5321 Local-part at ``text[i]``: Dot-string or Quoted-string."""
    if text.startswith('"', i):
        m = _QUOTED.match(text, i)
        if m is None:
            raise _err(text, "bad quoted local part")
        lp = _UNESCAPE.sub(r"\1", m.group(1))
    else:
        m = _DOT_ATOM_UTF8.match(text, i)
        if m is None:
            raise _err(text, "missing or bad local part")
        lp = m.group(0)
    if not utf8 and not lp.isascii():
        raise _err(text, "non-ASCII local part without SMTPUTF8", AddressProblem.NEEDS_SMTPUTF8)
    lp = unicodedata.normalize("NFC", lp)
    if len(lp.encode("utf-8")) > max_len:  # RFC 5321 4.5.3.1.1
        raise _err(
            text, f"local part longer than {max_len} octets", AddressProblem.LOCALPART_TOO_LONG
        )
    return lp, m.end()


def _literal(
    text: str, i: int
) -> tuple[Domain, ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """Parse an RFC 5321 4.1.3 address literal at ``text[i] == "["``."""
    m = _LITERAL.match(text, i)
    if m is None:
        raise _err(text, "bad address literal", AddressProblem.BAD_LITERAL)
    inner = m.group(1)
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address
        if inner[:5].lower() == "ipv6:":
            ip = ipaddress.IPv6Address(inner[5:])
            lit = "[IPv6:" + str(ip) + "]"
        else:
            ip = ipaddress.IPv4Address(inner)
            lit = "[" + str(ip) + "]"
    except ValueError:
        raise _err(text, "unsupported or bad address literal", AddressProblem.BAD_LITERAL)
    return Domain(lit, lit), ip, m.end()


def _domain(text: str, i: int, utf8: bool) -> tuple[Domain, int]:
    m = _DOMAIN_CHARS.match(text, i)
    if m is None:
        raise _err(text, "missing domain", AddressProblem.BAD_DOMAIN)
    name = m.group(0)
    if len(name.encode("utf-8")) > MAX_DOMAIN:  # RFC 5321 4.5.3.1.2
        raise _err(text, f"domain longer than {MAX_DOMAIN} octets", AddressProblem.DOMAIN_TOO_LONG)
    if not utf8 and not name.isascii():  # RFC 6531 3.2: U-labels only with SMTPUTF8
        raise _err(text, "non-ASCII domain without SMTPUTF8", AddressProblem.NEEDS_SMTPUTF8)
    if name.endswith("."):
        raise _err(text, "domain ends with a dot", AddressProblem.BAD_DOMAIN)
    try:
        d = Domain.parse(name)
    except DomainError as e:
        raise _err(text, f"bad domain: {e.reason}", AddressProblem.BAD_DOMAIN)
    return d, m.end()


def _mailbox(text: str, i: int, utf8: bool, max_localpart: int) -> tuple[Address, int]:
    """RFC 5321 4.1.2 Mailbox = Local-part "@" ( Domain / address-literal )."""
    lp, i = _localpart(text, i, utf8, max_localpart)
    if not text.startswith("@", i):
        raise _err(text, "expected @ after local part")
    i += 1
    if text.startswith("[", i):
        d, ip, i = _literal(text, i)
        return Address(lp, d, ip), i
    d, i = _domain(text, i, utf8)
    return Address(lp, d), i


def parse_address(text: str, *, utf8: bool = True, max_localpart: int = MAX_LOCALPART) -> Address:
    """Parse a bare address ``localpart@domain`` (no display name, no brackets).

    Raises :class:`AddressError`.
    """
    t = text.strip()
    addr, i = _mailbox(t, 0, utf8, max_localpart)
    if i != len(t):
        raise _err(text, "unexpected text after address")
    return addr


def parse_smtp_path_prefix(
    text: str, *, utf8: bool, max_localpart: int = MAX_LOCALPART
) -> tuple[Address | None, str]:
    """Parse the path at the start of a MAIL FROM / RCPT TO argument.

    Returns the address (None for the null path ``<>``, RFC 5321 4.5.5) and the
    remaining text (the ESMTP parameters, leading spaces removed). A source route
    (``<@a,@b:user@c>``) is accepted and ignored (RFC 5321 4.1.2, appendix C).
    A path without angle brackets is tolerated. Raises :class:`AddressError`.
    """
    i = 0
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    bracket = text.startswith("<", i)
    start = i
    if bracket:
        i += 1
        if text.startswith(">", i):  # RFC 5321 4.1.2: Reverse-path = Path / "<>"
            return None, text[i + 1 :].lstrip(" ")
        if text.startswith("@", i):
            m = _ROUTE.match(text, i)
            if m is None:
                raise _err(text, "bad source route")
            i = m.end()
    addr, i = _mailbox(text, i, utf8, max_localpart)
    if bracket:
        if not text.startswith(">", i):
            raise _err(text, "expected > after address")
        i += 1
    if len(text[start:i].encode("utf-8")) > MAX_PATH:  # RFC 5321 4.5.3.1.3
        raise _err(text, f"path longer than {MAX_PATH} octets", AddressProblem.PATH_TOO_LONG)
    if i < n and text[i] != " ":
        raise _err(text, "unexpected text after path")
    return addr, text[i:].lstrip(" ")


def parse_smtp_path(text: str, *, utf8: bool, max_localpart: int = MAX_LOCALPART) -> Address | None:
    """Parse an SMTP reverse- or forward-path (RFC 5321 4.1.2, RFC 6531 3.3).

    ``utf8`` tells whether SMTPUTF8 was given: without it, non-ASCII local parts
    and U-label domains fail with problem ``NEEDS_SMTPUTF8``. Returns None for the
    null path ``<>``; raises :class:`AddressError` whose ``problem`` says why.
    """
    addr, rest = parse_smtp_path_prefix(text, utf8=utf8, max_localpart=max_localpart)
    if rest:
        raise _err(text, "unexpected text after path")
    return addr


def is_postmaster_path(text: str) -> bool:
    """True for ``<Postmaster>`` without a domain, which RCPT TO must accept (RFC 5321 4.1.1.3)."""
    return text.strip().lower() == "<postmaster>"


def strip_subaddress(localpart: str, separators: Iterable[str]) -> str:
    """Remove a subaddress: everything from the first of ``separators`` on (``user+tag`` -> ``user``)."""
    for sep in separators:
        if sep:
            localpart = localpart.split(sep, 1)[0]
    return localpart


def canonical_localpart(
    localpart: str, *, separators: Iterable[str] = (), case_sensitive: bool = False
) -> str:
    """The local part used to look up a local recipient, as mox does.

    The subaddress is stripped, and unless the domain is configured case
    sensitive the result is lower-cased (local parts of our own domains compare
    case-insensitively; RFC 5321 2.4 leaves this to the receiving host).
    """
    lp = strip_subaddress(unicodedata.normalize("NFC", localpart), separators)
    return lp if case_sensitive else lp.lower()
