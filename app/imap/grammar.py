"""Token-level IMAP grammar (RFC 9051 9, RFC 3501 9) over an already framed command.

A framed command is a list of line segments with the literals that followed
each one. :class:`Reader` walks it; every ``x``-function consumes one grammar
element or raises :class:`Syntax`. Nothing here does I/O or knows about
connections: the framing (and the decision when to ask for literal bytes)
lives in :mod:`app.imap.parser`.
"""

import codecs
import datetime
import re
from dataclasses import dataclass

from app.imap import utf7
from app.imap.commands import (
    FetchAtt,
    NumRange,
    NumSet,
    Partial,
    SearchAge,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchState,
    SearchText,
    Section,
)

MAX_NUMBER = 2**32 - 1  # RFC 9051 9: number
MAX_NUMBER64 = 2**63 - 1  # RFC 9051 9: number64
MAX_NESTING = 32  # parenthesised search keys; deeper is refused, not recursed into

_CTL = set(range(0x00, 0x20)) | {0x7F}
# RFC 9051 9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials
_ATOM_SPECIALS = _CTL | set(b'(){ %*"\\]')
ATOM_CHARS = frozenset(c for c in range(0x01, 0x80) if c not in _ATOM_SPECIALS)
ASTRING_CHARS = ATOM_CHARS | {ord("]")}  # RFC 9051 9: ASTRING-CHAR
LIST_CHARS = ATOM_CHARS | set(b"%*]")  # RFC 9051 9: list-char
TAG_CHARS = ASTRING_CHARS - {ord("+")}  # RFC 9051 9: tag
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DIGITS = re.compile(rb"[0-9]*")


def _class_pattern(chars: frozenset[int]) -> "re.Pattern[bytes]":
    """A regex matching a run of ``chars`` (a C loop instead of a Python one)."""
    return re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(chars)) + b"]*")


# Runs of the character classes the grammar scans most (tags, atoms, astrings, list
# patterns); Reader.chars falls back to a loop for any other set.
_RUNS: dict[frozenset[int], "re.Pattern[bytes]"] = {
    cs: _class_pattern(cs) for cs in (ATOM_CHARS, ASTRING_CHARS, LIST_CHARS, TAG_CHARS)
}
SYSTEM_FLAGS = {
    "\\ANSWERED": "\\Answered",
    "\\FLAGGED": "\\Flagged",
    "\\DELETED": "\\Deleted",
    "\\SEEN": "\\Seen",
    "\\DRAFT": "\\Draft",
}


class Syntax(Exception):
    """A grammar violation; ``message`` is client-safe."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal that was received in full."""

    data: bytes
    binary: bool  # literal8 "~{N}"


@dataclass(frozen=True, slots=True)
class Pending:
    """A literal announced at the end of the last segment but not received yet."""

    size: int
    binary: bool


class ReachedPending(Exception):
    """The grammar wants the pending literal: the prefix so far is valid."""


Piece = Literal | Pending


class Reader:
    """Cursor over ``segments`` (line text without literal markers) and ``literals``.

    ``literals[k]`` follows ``segments[k]``; there are as many literals as
    segments, or one less. Matching is ASCII case-insensitive via ``upper``.
    """

    def __init__(self, segments: list[bytes], literals: list[Piece], *, utf8: bool) -> None:
        self.segments = segments
        self.literals = literals
        self.utf8 = utf8
        self.k = 0
        self.i = 0
        self.s = segments[0]
        self.u = self.s.upper()
        self.depth = 0

    # --- position -------------------------------------------------------

    def peek(self) -> int | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def at_literal(self) -> bool:
        return self.i == len(self.s) and self.k < len(self.literals)

    def at_end(self) -> bool:
        return self.i == len(self.s) and self.k >= len(self.literals)

    def xend(self) -> None:
        if not self.at_end():
            raise Syntax("unexpected data at end of command")

    def take_literal(self) -> Literal:
        if not self.at_literal():
            raise Syntax("expected literal")
        lit = self.literals[self.k]
        if isinstance(lit, Pending):
            raise ReachedPending()
        self.k += 1
        self.s = self.segments[self.k]
        self.u = self.s.upper()
        self.i = 0
        return lit

    def has(self, word: bytes) -> bool:
        return self.u.startswith(word, self.i)

    def take(self, word: bytes) -> bool:
        """Take ``word`` (upper-case ASCII) if next, case-insensitively."""
        if self.u.startswith(word, self.i):
            self.i += len(word)
            return True
        return False

    def xtake(self, word: bytes, what: str | None = None) -> None:
        if not self.take(word):
            raise Syntax(f"expected {what or word.decode()}")

    def take_word(self, words: tuple[str, ...]) -> str | None:
        """Take the first of ``words`` that matches and is not followed by an atom char."""
        for w in words:
            b = w.encode()
            end = self.i + len(b)
            if self.u.startswith(b, self.i) and (
                end == len(self.u) or self.u[end] not in ATOM_CHARS
            ):
                self.i = end
                return w
        return None

    def space(self) -> bool:
        return self.take(b" ")

    def xspace(self) -> None:
        if not self.take(b" "):
            raise Syntax("expected space")

    def chars(self, allowed: frozenset[int]) -> bytes:
        start = self.i
        s = self.s
        run = _RUNS.get(allowed)
        if run is not None:
            m = run.match(s, start)
            assert m is not None  # a "*" pattern always matches
            self.i = m.end()
            return m.group()
        while self.i < len(s) and s[self.i] in allowed:
            self.i += 1
        return s[start : self.i]

    def xchars(self, allowed: frozenset[int], what: str) -> bytes:
        got = self.chars(allowed)
        if not got:
            raise Syntax(f"expected {what}")
        return got

    # --- atoms, numbers, strings ----------------------------------------

    def xatom(self) -> str:
        return self.xchars(ATOM_CHARS, "atom").decode("ascii")

    def digits(self) -> bytes:
        m = _DIGITS.match(self.s, self.i)
        assert m is not None  # "[0-9]*" always matches
        self.i = m.end()
        return m.group()

    def xnumber(self, maximum: int = MAX_NUMBER, what: str = "number") -> int:
        d = self.digits()
        if not d or len(d) > 20 or int(d) > maximum:
            raise Syntax(f"expected {what}")
        return int(d)

    def xnznumber(self, maximum: int = MAX_NUMBER) -> int:
        n = self.xnumber(maximum, "non-zero number")
        if n == 0:
            raise Syntax("expected non-zero number")
        return n

    def xnumber64(self) -> int:
        return self.xnumber(MAX_NUMBER64, "number64")

    def xquoted_bytes(self) -> bytes:
        # RFC 9051 9: quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR allows UTF8-2..4.
        self.xtake(b'"')
        out = bytearray()
        s = self.s
        i = self.i
        while i < len(s):
            c = s[i]
            if c == 0x22:
                self.i = i + 1
                return bytes(out)
            if c == 0x5C:
                if i + 1 < len(s) and s[i + 1] in (0x22, 0x5C):
                    out.append(s[i + 1])
                    i += 2
                    continue
                raise Syntax("invalid escape in quoted string")
            if c in (0x00, 0x0A, 0x0D):
                raise Syntax("invalid character in quoted string")
            out.append(c)
            i += 1
        raise Syntax("unterminated quoted string")

    def xstring_bytes(self, *, allow_binary: bool = False) -> bytes:
        if self.peek() == 0x22:
            return self.xquoted_bytes()
        lit = self.take_literal()
        if lit.binary and not allow_binary:
            raise Syntax("literal8 not allowed here")
        if not lit.binary and b"\x00" in lit.data:
            # RFC 9051 9: literal = "{" number64 "}" CRLF *CHAR8 (CHAR8 excludes NUL).
            raise Syntax("NUL in literal")
        return lit.data

    def xastring_bytes(self) -> bytes:
        c = self.peek()
        if c == 0x22 or self.at_literal():
            return self.xstring_bytes()
        return self.xchars(ASTRING_CHARS, "astring")

    def xastring(self) -> str:
        return text(self.xastring_bytes())

    def xstring(self) -> str:
        return text(self.xstring_bytes())

    def xnstring(self) -> str | None:
        if self.take_word(("NIL",)):
            return None
        return self.xstring()

    # --- mailboxes --------------------------------------------------------

    def decode_mailbox(self, raw: bytes) -> str:
        name = text(raw)
        if not self.utf8:
            # RFC 3501 5.1.3; RFC 6855 3: no UTF-7 once UTF8=ACCEPT is enabled.
            try:
                name = utf7.decode(name)
            except utf7.UTF7Error as e:
                raise Syntax(f"invalid modified UTF-7 mailbox name: {e.reason}") from None
        return name

    def xmailbox(self) -> str:
        """RFC 9051 9: mailbox = "INBOX" / astring, INBOX case-insensitive."""
        return normalize_inbox(self.decode_mailbox(self.xastring_bytes()))

    def xlist_mailbox(self) -> str:
        """RFC 9051 9: list-mailbox = 1*list-char / string."""
        if self.peek() == 0x22 or self.at_literal():
            raw = self.xstring_bytes()
        else:
            raw = self.xchars(LIST_CHARS, "list-mailbox")
        return self.decode_mailbox(raw)

    # --- flags ------------------------------------------------------------

    def xflag(self) -> str:
        """RFC 9051 9: flag; system flags are returned in canonical case."""
        if self.take(b"\\"):
            name = "\\" + self.xatom()
            canonical = SYSTEM_FLAGS.get(name.upper())
            if canonical is None:
                raise Syntax("unknown system flag")
            return canonical
        return self.xatom()

    def xflag_list(self) -> tuple[str, ...]:
        """RFC 9051 9: flag-list = "(" [flag *(SP flag)] ")"."""
        self.xtake(b"(")
        flags: list[str] = []
        if not self.take(b")"):
            flags.append(self.xflag())
            while not self.take(b")"):
                self.xspace()
                flags.append(self.xflag())
        return tuple(flags)

    # --- sequence sets ----------------------------------------------------

    def xseq_number(self) -> int | None:
        if self.take(b"*"):
            return None
        return self.xnznumber()

    def xnumset(self, *, allow_saved: bool = True) -> NumSet:
        """RFC 9051 9: sequence-set; ``$`` per RFC 5182 2.1."""
        if allow_saved and self.take(b"$"):
            return NumSet(saved=True)
        ranges: list[NumRange] = []
        while True:
            first = self.xseq_number()
            last = self.xseq_number() if self.take(b":") else first
            ranges.append(NumRange(first, last))
            if not self.take(b","):
                return NumSet(tuple(ranges))

    def xuid_set(self) -> NumSet:
        """RFC 9051 9: uid-set (no ``$``, used in QRESYNC known-uids)."""
        return self.xnumset(allow_saved=False)

    # --- dates ------------------------------------------------------------

    def xmonth(self) -> int:
        m = self.u[self.i : self.i + 3].decode("ascii", "replace")
        if m not in MONTHS:
            raise Syntax("expected month")
        self.i += 3
        return MONTHS.index(m) + 1

    def xdate(self) -> datetime.date:
        """RFC 9051 9: date = date-text / DQUOTE date-text DQUOTE."""
        quoted = self.take(b'"')
        day = self.digits()
        if not 1 <= len(day) <= 2:
            raise Syntax("expected date")
        self.xtake(b"-", "date")
        month = self.xmonth()
        self.xtake(b"-", "date")
        year = self.digits()
        if len(year) != 4:
            raise Syntax("expected date")
        if quoted:
            self.xtake(b'"')
        return make_date(int(year), month, int(day))

    def xdate_time(self) -> datetime.datetime:
        """RFC 9051 9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE."""
        self.xtake(b'"')
        if self.take(b" "):
            day = self.digits()
            if len(day) != 1:
                raise Syntax("expected date-time")
        else:
            day = self.digits()
            if len(day) != 2:
                raise Syntax("expected date-time")
        self.xtake(b"-", "date-time")
        month = self.xmonth()
        self.xtake(b"-", "date-time")
        year = self.digits()
        if len(year) != 4:
            raise Syntax("expected date-time")
        self.xspace()
        hms = self.xchars(frozenset(b"0123456789:"), "time")
        if len(hms) != 8 or hms[2:3] != b":" or hms[5:6] != b":":
            raise Syntax("expected time")
        self.xspace()
        sign = self.peek()
        self.i += 1
        zone = self.digits()
        if sign not in (0x2B, 0x2D) or len(zone) != 4:
            raise Syntax("expected zone")
        self.xtake(b'"')
        hh, mm, ss = int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
        offset = datetime.timedelta(hours=int(zone[:2]), minutes=int(zone[2:]))
        if sign == 0x2D:
            offset = -offset
        if hh > 23 or mm > 59 or ss > 60 or int(zone[2:]) > 59:
            raise Syntax("invalid time")
        d = make_date(int(year), month, int(day))
        # A leap second is clamped: Python cannot represent :60.
        return datetime.datetime(
            d.year, d.month, d.day, hh, mm, min(ss, 59), tzinfo=datetime.timezone(offset)
        )


def text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Syntax("invalid UTF-8") from None


def normalize_inbox(name: str) -> str:
    """RFC 9051 5.1: INBOX is case-insensitive; so is its use as a hierarchy prefix (as mox)."""
    if name.upper() == "INBOX":
        return "INBOX"
    if name[:6].upper() == "INBOX/":
        return "INBOX/" + name[6:]
    return name


def make_date(year: int, month: int, day: int) -> datetime.date:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        raise Syntax("invalid date") from None


# ---------------------------------------------------------------------------
# SEARCH keys (RFC 9051 6.4.4 and 9; RFC 3501 9; RFC 7162 3.1.5; RFC 5032)

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_TEXT_KEYS = ("BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO")
_DATE_KEYS = ("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE")
_KEY_WORDS = (
    "ALL",
    *_FLAG_KEYS,
    *_TEXT_KEYS,
    *_DATE_KEYS,
    "KEYWORD",
    "UNKEYWORD",
    "NEW",
    "OLD",
    "RECENT",
    "HEADER",
    "LARGER",
    "SMALLER",
    "NOT",
    "OR",
    "UID",
    "MODSEQ",
    "OLDER",
    "YOUNGER",
)
# Longest first so that e.g. SENTBEFORE is not read as SEEN... (take_word checks boundaries too).
_KEY_WORDS_SORTED = tuple(sorted(_KEY_WORDS, key=len, reverse=True))


class SearchParser:
    """Parses search keys; ``decode`` turns string bytes into ``str`` per CHARSET."""

    def __init__(self, r: Reader, charset: str | None) -> None:
        self.r = r
        self.codec = "utf-8"
        self.known_charset = True
        if charset is not None:
            try:
                self.codec = codecs.lookup(charset).name
            except LookupError:
                # Unknown charset: the server answers NO [BADCHARSET]; keep bytes lossless.
                self.codec = "latin-1"
                self.known_charset = False

    def string(self) -> str:
        raw = self.r.xastring_bytes()
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            raise Syntax("string not valid in charset") from None

    def keys(self) -> SearchKey:
        """RFC 9051 9: 1*(SP search-key) after the command; one key or an implicit AND."""
        keys = [self.key()]
        while self.r.space():
            keys.append(self.key())
        return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))

    def key(self) -> SearchKey:
        r = self.r
        if r.take(b"("):
            r.depth += 1
            if r.depth > MAX_NESTING:
                raise Syntax("search keys nested too deeply")
            keys = [self.key()]
            while not r.take(b")"):
                r.xspace()
                keys.append(self.key())
            r.depth -= 1
            return SearchAnd(tuple(keys))
        word = r.take_word(_KEY_WORDS_SORTED)
        if word is None:
            c = r.peek()
            if c is not None and (0x30 <= c <= 0x39 or c in b"*$"):
                return SearchSet(r.xnumset(), uid=False)
            raise Syntax("unknown search key")
        return self._keyword(word)

    def _keyword(self, word: str) -> SearchKey:
        r = self.r
        if word == "ALL":
            return SearchAll()
        if word in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[word]
            return SearchFlag(flag, present)
        if word in ("NEW", "OLD", "RECENT"):
            return SearchState(word)
        r.xspace()
        if word in _TEXT_KEYS:
            return SearchText(word, self.string())
        if word in _DATE_KEYS:
            return SearchDate(word, r.xdate())
        if word in ("KEYWORD", "UNKEYWORD"):
            return SearchFlag(r.xflag(), word == "KEYWORD")
        if word == "HEADER":
            name = self.string()
            r.xspace()
            return SearchHeader(name, self.string())
        if word in ("LARGER", "SMALLER"):
            return SearchSize(word == "LARGER", r.xnumber64())
        if word == "NOT":
            return SearchNot(self._nested())
        if word == "OR":
            left = self._nested()
            r.xspace()
            return SearchOr(left, self._nested())
        if word == "UID":
            return SearchSet(r.xnumset(), uid=True)
        if word in ("OLDER", "YOUNGER"):
            return SearchAge(word == "OLDER", r.xnznumber())
        return self._modseq()

    def _nested(self) -> SearchKey:
        self.r.depth += 1
        if self.r.depth > MAX_NESTING:
            raise Syntax("search keys nested too deeply")
        key = self.key()
        self.r.depth -= 1
        return key

    def _modseq(self) -> SearchKey:
        # RFC 7162 3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer
        r = self.r
        entry = entry_type = None
        if r.peek() == 0x22:
            entry = r.xquoted_bytes().decode("ascii", "replace")
            if not entry.startswith("/flags/"):
                raise Syntax("invalid MODSEQ entry name")
            r.xspace()
            entry_type = r.take_word(("PRIV", "SHARED", "ALL"))
            if entry_type is None:
                raise Syntax("expected entry type")
            r.xspace()
        return SearchModSeq(r.xnumber64(), entry, entry_type)


# ---------------------------------------------------------------------------
# FETCH attributes (RFC 9051 6.4.5 and 9; RFC 3516 4; RFC 7162 3.1.4)

_FETCH_WORDS = (
    "BINARY.PEEK",
    "BINARY.SIZE",
    "BINARY",
    "BODY.PEEK",
    "BODYSTRUCTURE",
    "BODY",
    "ENVELOPE",
    "FLAGS",
    "INTERNALDATE",
    "MODSEQ",
    "RFC822.HEADER",
    "RFC822.SIZE",
    "RFC822.TEXT",
    "RFC822",
    "UID",
)
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


# Every fetch word is a run of these characters, so the word at the cursor is the
# longest such run, and it must be followed by the end or one of " )[<".
_FETCH_WORD_RUN = re.compile(rb"[A-Z0-9.]+")
_FETCH_WORD_SET = {w.encode(): w for w in _FETCH_WORDS}


def _take_fetch_word(r: Reader) -> str:
    m = _FETCH_WORD_RUN.match(r.u, r.i)
    if m is not None:
        w = _FETCH_WORD_SET.get(m.group())
        end = m.end()
        if w is not None and (end == len(r.u) or r.u[end] in b" )[<"):
            r.i = end
            return w
    raise Syntax("unknown fetch attribute")


def xsection_msgtext(r: Reader, *, allow_mime: bool) -> Section | tuple[str, tuple[str, ...]]:
    """RFC 9051 9: section-msgtext (and "MIME" after a part number)."""
    if allow_mime and r.take_word(("MIME",)):
        return ("MIME", ())
    word = None
    for w in ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT"):
        if r.take(w.encode()):
            word = w
            break
    if word is None:
        raise Syntax("expected section text")
    if word.startswith("HEADER.FIELDS"):
        # RFC 9051 9: header-list = "(" header-fld-name *(SP header-fld-name) ")"
        r.xspace()
        r.xtake(b"(")
        names = [r.xastring()]
        while not r.take(b")"):
            r.xspace()
            names.append(r.xastring())
        return (word, tuple(names))
    return (word, ())


def xsection(r: Reader) -> Section:
    """RFC 9051 9: section = "[" [section-spec] "]"."""
    r.xtake(b"[")
    if r.take(b"]"):
        return Section()
    parts: list[int] = []
    textspec: tuple[str, tuple[str, ...]] | None = None
    c = r.peek()
    if c is not None and 0x31 <= c <= 0x39:
        parts.append(r.xnznumber())
        while r.take(b"."):
            c = r.peek()
            if c is not None and 0x30 <= c <= 0x39:
                parts.append(r.xnznumber())
                continue
            got = xsection_msgtext(r, allow_mime=True)
            assert isinstance(got, tuple)
            textspec = got
            break
    else:
        got = xsection_msgtext(r, allow_mime=False)
        assert isinstance(got, tuple)
        textspec = got
    r.xtake(b"]")
    if textspec is None:
        return Section(tuple(parts))
    return Section(tuple(parts), textspec[0], textspec[1])


def xpartial(r: Reader) -> Partial:
    """RFC 9051 9: partial = "<" number64 "." nz-number64 ">"."""
    r.xtake(b"<")
    offset = r.xnumber64()
    r.xtake(b".")
    count = r.xnznumber(MAX_NUMBER64)
    r.xtake(b">")
    return Partial(offset, count)


def xsection_binary(r: Reader) -> tuple[int, ...]:
    """RFC 9051 9: section-binary = "[" [section-part] "]"."""
    r.xtake(b"[")
    parts: list[int] = []
    if not r.take(b"]"):
        parts.append(r.xnznumber())
        while r.take(b"."):
            parts.append(r.xnznumber())
        r.xtake(b"]")
    return tuple(parts)


def xfetch_att(r: Reader) -> FetchAtt:
    word = _take_fetch_word(r)
    peek = word.endswith(".PEEK")
    name = word.removesuffix(".PEEK")
    if name == "BODY":
        if r.peek() != 0x5B:
            if peek:
                raise Syntax("BODY.PEEK needs a section")
            return FetchAtt("BODY")
        section = xsection(r)
        partial = xpartial(r) if r.peek() == 0x3C else None
        return FetchAtt("BODY", peek, section=section, partial=partial)
    if name == "BINARY":
        binsec = xsection_binary(r)
        partial = xpartial(r) if r.peek() == 0x3C else None
        return FetchAtt("BINARY", peek, binary_section=binsec, partial=partial)
    if name == "BINARY.SIZE":
        return FetchAtt("BINARY.SIZE", binary_section=xsection_binary(r))
    return FetchAtt(name)


def xfetch_atts(r: Reader) -> tuple[FetchAtt, ...]:
    """RFC 9051 9: "ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"."""
    macro = r.take_word(("ALL", "FAST", "FULL"))
    if macro is not None:
        return tuple(FetchAtt(n) for n in MACROS[macro])
    if not r.take(b"("):
        return (xfetch_att(r),)
    atts = [xfetch_att(r)]
    while not r.take(b")"):
        r.xspace()
        atts.append(xfetch_att(r))
    return tuple(atts)
