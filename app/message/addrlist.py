"""Address lists in message headers (RFC 5322 3.4, 4.4; RFC 6532 3.2).

The parser is tolerant: it understands display names (with RFC 2047 encoded
words), groups, comments, quoted local parts, obsolete routes and CFWS around
dots, and skips what it cannot read instead of failing.
"""

import re
from dataclasses import dataclass

from app.message.address import Address, parse_address, quote_localpart
from app.message.encoded import decode_words
from app.message.errors import AddressError, AddressProblem

# Tokens: whitespace, an encoded word (may hold specials), an atom, a quoted
# string, a domain literal, a comment opener, or any other single character.
_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
    |(?P<ew>=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)
    |(?P<atom>[^ \t\r\n()<>\[\]:;@\\,."]+)
    |(?P<qs>"(?:[^"\\]|\\.)*"?)
    |(?P<lit>\[(?:[^\]\\]|\\.)*\]?)
    |(?P<other>.)""",
    re.X | re.S,
)
_UNESCAPE = re.compile(r"\\(.)", re.S)
# Fast path for the common list of plain mailboxes: "Name <a@b>", "\"N, M\" <a@b>", "a@b".
_C = r"[^\x00-\x20\"(),:;<>@\[\]\\\x7f]+"
_SIMPLE = re.compile(
    rf"""(?:
        [ ]*(?P<q>"(?:[^"\\\x00-\x1f]|\\.)*")[ ]*<(?P<l0>{_C})@(?P<h0>{_C})>
        |(?P<n>[^\x00-\x1f"(),:;<>@\[\]\\]*)<(?P<l1>{_C})@(?P<h1>{_C})>
        |[ ]*(?P<l2>{_C})@(?P<h2>{_C})
    )[ ]*(?:,|$)""",
    re.X,
)


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One mailbox from a header, kept as written (nothing validated).

    ``name`` is the display name with encoded words decoded, ``raw_name`` as
    written (unquoted); ``adl`` an obsolete route (``@a,@b``); ``host`` is the
    domain text, empty when missing.
    """

    name: str
    localpart: str
    host: str
    adl: str = ""
    raw_name: str = ""

    def address(self) -> Address | None:
        """The validated :class:`Address`, or None when the mailbox is not valid."""
        if not self.host:
            return None
        try:
            return parse_address(quote_localpart(self.localpart) + "@" + self.host)
        except AddressError:
            return None

    def __str__(self) -> str:
        addr = quote_localpart(self.localpart) + "@" + self.host
        if not self.name:
            return addr
        return f'"{self.name}" <{addr}>' if not self.name.isalnum() else f"{self.name} <{addr}>"


@dataclass(frozen=True, slots=True)
class Group:
    """A named group of mailboxes (RFC 5322 3.4), e.g. ``undisclosed-recipients:;``."""

    name: str
    members: tuple[Mailbox, ...]
    raw_name: str = ""


# Token kinds: "w" word (atom/encoded word), "q" quoted string, "l" domain
# literal, "c" comment, "s" special; value; whether whitespace preceded it.
_Tok = tuple[str, str, bool]


def _tokens(s: str, toks: list[_Tok], ws: bool) -> bool:
    """Append tokens of comment-free text ``s``; returns whether it ended in whitespace."""
    for m in _TOKEN.finditer(s):
        kind = m.lastgroup
        v = m.group(0)
        if kind == "ws":
            ws = True
            continue
        if kind == "atom" or kind == "ew":
            toks.append(("w", v, ws))
        elif kind == "qs":
            body = v[1:-1] if len(v) > 1 and v.endswith('"') else v[1:]
            toks.append(("q", _UNESCAPE.sub(r"\1", body) if "\\" in body else body, ws))
        elif kind == "lit":
            toks.append(("l", v, ws))
        else:
            toks.append(("s", v, ws))
        ws = False
    return ws


def _tokenize(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    if "(" not in s:
        _tokens(s, toks, False)
        return toks
    i = 0
    n = len(s)
    ws = False
    c = q = -2
    while i < n:
        # Positions are cached so hostile input cannot make this quadratic.
        if -1 != c < i:
            c = s.find("(", i)
        if -1 != q < i:
            q = s.find('"', i)
        if 0 <= q < c:  # a quoted string comes first: it may contain "("
            m = _TOKEN.match(s, q)
            assert m is not None
            ws = _tokens(s[i : m.end()], toks, ws)
            i = m.end()
            continue
        if c < 0:
            _tokens(s[i:], toks, ws)
            break
        ws = _tokens(s[i:c], toks, ws)
        depth = 0  # RFC 5322 3.2.2: comments nest
        j = c
        while j < n:
            ch = s[j]
            if ch == "\\":
                j += 2
                continue
            depth += ch == "("
            depth -= ch == ")"
            j += 1
            if depth == 0:
                break
        toks.append(("c", _UNESCAPE.sub(r"\1", s[c + 1 : j - 1]).strip(), ws))
        ws = True
        i = j
    return toks


def _phrase(toks: list[_Tok]) -> str:
    """Join display-name words, keeping single spaces where the input had whitespace."""
    out: list[str] = []
    for kind, v, ws in toks:
        if kind == "c":
            continue
        if out and ws:
            out.append(" ")
        out.append(v)
    return "".join(out).strip()


def _addr_spec(toks: list[_Tok]) -> tuple[str, str, str]:
    """(adl, localpart, host) from the tokens of an addr-spec or angle-addr content."""
    adl = ""
    toks = [t for t in toks if t[0] != "c"]
    if toks and toks[0][1] == "@":
        # RFC 5322 4.4 obs-route: "@a,@b:" before the address
        for k, t in enumerate(toks):
            if t[0] == "s" and t[1] == ":":
                adl = "".join(x[1] for x in toks[:k])
                toks = toks[k + 1 :]
                break
    at = -1
    for k in range(len(toks) - 1, -1, -1):
        if toks[k][0] == "s" and toks[k][1] == "@":
            at = k
            break
    local = toks if at < 0 else toks[:at]
    host = [] if at < 0 else toks[at + 1 :]
    # RFC 5322 4.4 obs-local-part: CFWS around the dots is dropped.
    lp = "".join(v for _, v, _ in local)
    return adl, lp, "".join(v for _, v, _ in host)


def _mailbox(toks: list[_Tok]) -> Mailbox | None:
    lt = next((k for k, t in enumerate(toks) if t[0] == "s" and t[1] == "<"), -1)
    if lt >= 0:
        gt = next((k for k in range(lt + 1, len(toks)) if toks[k][1] == ">"), len(toks))
        raw = _phrase(toks[:lt])
        adl, lp, host = _addr_spec(toks[lt + 1 : gt])
    else:
        adl, lp, host = _addr_spec(toks)
        # An old-style "addr (Name)": use the comment as display name.
        raw = next((t[1] for t in reversed(toks) if t[0] == "c" and t[1]), "")
    if not lp.strip("@"):  # nothing usable, e.g. "<>" or "@@"
        return None
    return Mailbox(decode_words(raw), lp, host, adl, raw)


def _simple_list(text: str) -> tuple[Mailbox | Group, ...] | None:
    out: list[Mailbox | Group] = []
    pos = 0
    n = len(text)
    match = _SIMPLE.match
    while pos < n:
        m = match(text, pos)
        if m is None or m.end() == pos:
            return None
        pos = m.end()
        q = m.group("q")
        if q is not None:
            raw = _UNESCAPE.sub(r"\1", q[1:-1]) if "\\" in q else q[1:-1]
            out.append(Mailbox(decode_words(raw), m.group("l0"), m.group("h0"), "", raw))
            continue
        lp = m.group("l1")
        if lp is None:
            out.append(Mailbox("", m.group("l2"), m.group("h2")))
            continue
        # The name's whitespace may be long (hostile input): split() is linear.
        raw = " ".join(m.group("n").split())
        out.append(Mailbox(decode_words(raw), lp, m.group("h1"), "", raw))
    return tuple(out)


def parse_address_list(text: str) -> tuple[Mailbox | Group, ...]:
    """Parse an RFC 5322 3.4 address-list tolerantly; never raises.

    Garbage between commas is dropped; a missing ``;`` closes a group at the end.
    """
    simple = _simple_list(text)
    if simple is not None:
        return simple
    return _parse_list(text)


def _parse_list(text: str) -> tuple[Mailbox | Group, ...]:
    out: list[Mailbox | Group] = []
    cur: list[_Tok] = []
    group: tuple[str, str] | None = None
    members: list[Mailbox] = []
    angle = False
    for tok in [*_tokenize(text), ("s", ",", False)]:
        kind, v, _ = tok
        if kind == "s":
            if v == "<":
                angle = True
            elif v == ">":
                angle = False
            elif not angle and v == ":" and group is None and not any(t[1] == "@" for t in cur):
                raw = _phrase(cur)
                group = (decode_words(raw), raw)
                members = []
                cur = []
                continue
            elif (v == "," and not angle) or (v == ";" and group is not None):
                mb = _mailbox(cur)
                cur = []
                angle = False
                if group is not None:
                    if mb is not None:
                        members.append(mb)
                    if v == ";":
                        out.append(Group(group[0], tuple(members), group[1]))
                        group = None
                elif mb is not None:
                    out.append(mb)
                continue
        cur.append(tok)
    if group is not None:
        out.append(Group(group[0], tuple(members), group[1]))
    return tuple(out)


def mailboxes(items: tuple[Mailbox | Group, ...]) -> list[Mailbox]:
    """All mailboxes of an address list, group members included."""
    out: list[Mailbox] = []
    for it in items:
        if isinstance(it, Group):
            out.extend(it.members)
        else:
            out.append(it)
    return out


def parse_mailbox(text: str) -> Mailbox:
    """Parse exactly one mailbox (e.g. a Sender header); raises :class:`AddressError`."""
    items = parse_address_list(text)
    if len(items) != 1 or not isinstance(items[0], Mailbox):
        raise AddressError(text, "expected exactly one mailbox", AddressProblem.SYNTAX)
    return items[0]
