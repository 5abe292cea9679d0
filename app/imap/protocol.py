"""IMAP response formatting (RFC 9051 7 and 9), sans-I/O.

Everything here returns ``bytes`` ready to be written. Strings choose their
own representation: an atom when every byte is an ASTRING-CHAR, a quoted
string when the bytes are safe (printable 7-bit without ``"`` and ``\\``, or
UTF-8 once UTF8=ACCEPT is enabled), and a literal otherwise; ``literal8`` is
for binary data (RFC 3516). Text after a status is cleaned of CR/LF so a reply
can never be split into two by its content.

ENVELOPE/BODYSTRUCTURE serialisation is not here (see the FETCH module).
"""

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from app.imap import utf7
from app.imap.grammar import ASTRING_CHARS, ATOM_CHARS, MONTHS

CRLF = b"\r\n"
_QUOTED_SAFE = frozenset(c for c in range(0x20, 0x7F) if c not in b'"\\')
MAX_QUOTED = 1024  # longer strings go as literals: keeps lines short


class Status:
    """Status condition words (RFC 9051 7.1)."""

    OK = "OK"
    NO = "NO"
    BAD = "BAD"
    BYE = "BYE"
    PREAUTH = "PREAUTH"


# --- strings -------------------------------------------------------------------


def _b(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def can_quote(data: bytes, *, utf8: bool = False) -> bool:
    """Whether ``data`` may be sent as a quoted string (RFC 9051 9: quoted)."""
    if len(data) > MAX_QUOTED:
        return False
    if utf8:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return all(c in _QUOTED_SAFE or c >= 0x80 for c in data)
    return all(c in _QUOTED_SAFE for c in data)


def quoted(value: str | bytes) -> bytes:
    """A quoted string; raises ValueError for data that cannot be quoted safely."""
    data = _b(value)
    if any(c in (0x00, 0x0A, 0x0D) for c in data):
        raise ValueError("CR, LF and NUL cannot be quoted")
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(value: str | bytes) -> bytes:
    """A synchronising-form literal ``{N}CRLF data`` (RFC 9051 4.3)."""
    data = _b(value)
    return b"{%d}\r\n" % len(data) + data


def literal8(data: bytes) -> bytes:
    """A literal8 ``~{N}CRLF data`` for binary content (RFC 3516 4.3)."""
    return b"~{%d}\r\n" % len(data) + data


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """Quoted when safe, else a literal (RFC 9051 4.3)."""
    data = _b(value)
    return quoted(data) if can_quote(data, utf8=utf8) else literal(data)


def nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    """``NIL`` or a string (RFC 9051 9: nstring)."""
    return b"NIL" if value is None else string(value, utf8=utf8)


def astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """An atom when possible (never ``NIL``), else a string (RFC 9051 9: astring)."""
    data = _b(value)
    if data and data.upper() != b"NIL" and all(c in ASTRING_CHARS for c in data):
        return data
    return string(data, utf8=utf8)


def atom(value: str) -> bytes:
    """An atom; raises ValueError when ``value`` is not one (a bug in the caller)."""
    data = value.encode("ascii")
    if not data or not all(c in ATOM_CHARS for c in data):
        raise ValueError("not an atom")
    return data


def mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name: modified UTF-7 unless UTF8=ACCEPT is enabled (RFC 3501 5.1.3, RFC 6855 3)."""
    wire = name if utf8 else utf7.encode(name)
    return astring(wire, utf8=utf8)


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Junk)`` (RFC 9051 9: flag-list)."""
    return b"(" + b" ".join(f.encode("ascii") for f in flags) + b")"


def number_set(numbers: Iterable[int]) -> bytes:
    """Compress numbers into a sequence set: ``[1, 2, 3, 5]`` -> ``1:3,5``; empty gives ``b""``."""
    out: list[bytes] = []
    nums = sorted(set(numbers))
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(b"%d" % nums[i] if i == j else b"%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return b",".join(out)


def date_time(dt: datetime.datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (RFC 9051 9: date-time); naive means UTC."""
    offset = dt.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    month = MONTHS[dt.month - 1].capitalize()
    s = (
        f"{dt.day:02d}-{month}-{dt.year:04d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} "
        f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
    )
    return b'"' + s.encode("ascii") + b'"'


# --- response codes --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    """A response code (RFC 9051 7.1): ``[NAME args]``."""

    name: str
    args: bytes = b""

    def render(self) -> bytes:
        return b"[" + self.name.encode("ascii") + (b" " + self.args if self.args else b"") + b"]"


def code(name: str, *args: int | str | bytes) -> Code:
    """Build a response code; ints are decimal, str/bytes are inserted as given."""
    parts = [b"%d" % a if isinstance(a, int) else _b(a) for a in args]
    return Code(name, b" ".join(parts))


def uidnext(n: int) -> Code:
    return code("UIDNEXT", n)


def uidvalidity(n: int) -> Code:
    return code("UIDVALIDITY", n)


def appenduid(validity: int, uids: Iterable[int]) -> Code:
    """RFC 4315 3: APPENDUID uidvalidity uid-set."""
    return code("APPENDUID", validity, number_set(uids))


def copyuid(validity: int, source: Sequence[int], dest: Sequence[int]) -> Code:
    """RFC 4315 3: COPYUID; both sets in matching order, so no reordering compression."""
    return code("COPYUID", validity, _ordered_set(source), _ordered_set(dest))


def _ordered_set(numbers: Sequence[int]) -> bytes:
    out: list[bytes] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(b"%d" % numbers[i] if i == j else b"%d:%d" % (numbers[i], numbers[j]))
        i = j + 1
    return b",".join(out)


def highestmodseq(n: int) -> Code:
    return code("HIGHESTMODSEQ", n)


def permanentflags(flags: Iterable[str]) -> Code:
    return Code("PERMANENTFLAGS", flag_list(flags))


def capability_code(caps: Iterable[str]) -> Code:
    return code("CAPABILITY", " ".join(caps))


def badcharset(charsets: Iterable[str] = ()) -> Code:
    cs = list(charsets)
    return Code("BADCHARSET", b"(" + b" ".join(astring(c) for c in cs) + b")" if cs else b"")


def modified(numbers: Iterable[int]) -> Code:
    """RFC 7162 3.1.3: MODIFIED sequence-set."""
    return code("MODIFIED", number_set(numbers))


# Codes without arguments (RFC 9051 7.1, RFC 5530, RFC 7162, RFC 9208, RFC 4315).
ALERT = Code("ALERT")
ALREADYEXISTS = Code("ALREADYEXISTS")
AUTHENTICATIONFAILED = Code("AUTHENTICATIONFAILED")
AUTHORIZATIONFAILED = Code("AUTHORIZATIONFAILED")
CANNOT = Code("CANNOT")
CLIENTBUG = Code("CLIENTBUG")
CLOSED = Code("CLOSED")
CONTACTADMIN = Code("CONTACTADMIN")
EXPUNGEISSUED = Code("EXPUNGEISSUED")
INUSE = Code("INUSE")
LIMIT = Code("LIMIT")
NOMODSEQ = Code("NOMODSEQ")
NONEXISTENT = Code("NONEXISTENT")
NOPERM = Code("NOPERM")
NOTSAVED = Code("NOTSAVED")
OVERQUOTA = Code("OVERQUOTA")
PARSE = Code("PARSE")
PRIVACYREQUIRED = Code("PRIVACYREQUIRED")
READ_ONLY = Code("READ-ONLY")
READ_WRITE = Code("READ-WRITE")
SERVERBUG = Code("SERVERBUG")
TOOBIG = Code("TOOBIG")
TRYCREATE = Code("TRYCREATE")
UIDNOTSTICKY = Code("UIDNOTSTICKY")
UNAVAILABLE = Code("UNAVAILABLE")
UNKNOWN_CTE = Code("UNKNOWN-CTE")
EXPIRED = Code("EXPIRED")


# --- lines ---------------------------------------------------------------------


def clean_text(text: str) -> bytes:
    """Response text: CR/LF become spaces, never empty (RFC 9051 9: text = 1*TEXT-CHAR)."""
    t = text.replace("\r", " ").replace("\n", " ").replace("\x00", " ")
    return t.encode("utf-8") or b"done"


def status_line(tag: str | None, status: str, text: str, code: Code | str | None = None) -> bytes:
    """``<tag|*> STATUS [code] text CRLF`` (RFC 9051 7.1)."""
    prefix = b"*" if tag is None else tag.encode("ascii")
    parts = [prefix, status.encode("ascii")]
    if code is not None:
        parts.append(
            code.render() if isinstance(code, Code) else b"[" + code.encode("ascii") + b"]"
        )
    parts.append(clean_text(text))
    return b" ".join(parts) + CRLF


def tagged(tag: str, status: str, text: str, code: Code | str | None = None) -> bytes:
    return status_line(tag, status, text, code)


def untagged(status: str, text: str, code: Code | str | None = None) -> bytes:
    return status_line(None, status, text, code)


def continuation(text: str = "Ready") -> bytes:
    """``+ text`` (RFC 9051 7.5)."""
    return b"+ " + clean_text(text) + CRLF


def data(*parts: bytes | str | int) -> bytes:
    """An untagged data line ``* part part ...``; str parts must be wire-safe already."""
    out = [b"*"]
    for p in parts:
        out.append(b"%d" % p if isinstance(p, int) else _b(p))
    return b" ".join(out) + CRLF


class ResponseBuilder:
    """Accumulates response lines for one command; ``utf8`` mirrors UTF8=ACCEPT."""

    def __init__(self, *, utf8: bool = False) -> None:
        self.utf8 = utf8
        self._out = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._out)

    def raw(self, line: bytes) -> "ResponseBuilder":
        self._out += line
        return self

    def tagged(
        self, tag: str, status: str, text: str, code: Code | str | None = None
    ) -> "ResponseBuilder":
        return self.raw(tagged(tag, status, text, code))

    def ok(self, tag: str, text: str, code: Code | str | None = None) -> "ResponseBuilder":
        return self.tagged(tag, Status.OK, text, code)

    def no(self, tag: str, text: str, code: Code | str | None = None) -> "ResponseBuilder":
        return self.tagged(tag, Status.NO, text, code)

    def bad(self, tag: str | None, text: str, code: Code | str | None = None) -> "ResponseBuilder":
        return self.raw(status_line(tag, Status.BAD, text, code))

    def untagged(self, status: str, text: str, code: Code | str | None = None) -> "ResponseBuilder":
        return self.raw(untagged(status, text, code))

    def data(self, *parts: bytes | str | int) -> "ResponseBuilder":
        return self.raw(data(*parts))

    def capability(self, caps: Iterable[str]) -> "ResponseBuilder":
        return self.data("CAPABILITY", *caps)

    def enabled(self, caps: Iterable[str]) -> "ResponseBuilder":
        return self.data("ENABLED", *caps)

    def exists(self, n: int) -> "ResponseBuilder":
        return self.data(n, "EXISTS")

    def recent(self, n: int) -> "ResponseBuilder":
        return self.data(n, "RECENT")

    def expunge(self, seq: int) -> "ResponseBuilder":
        return self.data(seq, "EXPUNGE")

    def vanished(self, uids: Iterable[int], *, earlier: bool = False) -> "ResponseBuilder":
        """RFC 7162 3.2.10."""
        if earlier:
            return self.data("VANISHED", "(EARLIER)", number_set(uids))
        return self.data("VANISHED", number_set(uids))

    def flags(self, flags: Iterable[str]) -> "ResponseBuilder":
        return self.data("FLAGS", flag_list(flags))

    def list_item(
        self,
        attributes: Iterable[str],
        delimiter: str | None,
        name: str,
        *,
        kind: str = "LIST",
        extended: bytes = b"",
    ) -> "ResponseBuilder":
        """``* LIST (attrs) "/" name [extended]`` (RFC 9051 7.3.1, RFC 5258 3.5)."""
        delim = b"NIL" if delimiter is None else quoted(delimiter)
        parts: list[bytes | str | int] = [
            kind,
            flag_list(attributes),
            delim,
            mailbox(name, utf8=self.utf8),
        ]
        if extended:
            parts.append(extended)
        return self.data(*parts)

    def status(self, name: str, items: Sequence[tuple[str, int]]) -> "ResponseBuilder":
        """``* STATUS name (MESSAGES 1 ...)`` (RFC 9051 7.3.2)."""
        body = b" ".join(b"%s %d" % (k.encode("ascii"), v) for k, v in items)
        return self.data("STATUS", mailbox(name, utf8=self.utf8), b"(" + body + b")")

    def search(
        self, numbers: Iterable[int], *, modseq: int | None = None, kind: str = "SEARCH"
    ) -> "ResponseBuilder":
        """``* SEARCH 2 3 6`` with optional ``(MODSEQ n)`` (RFC 7162 3.1.5)."""
        parts: list[bytes | str | int] = [kind, *numbers]
        if modseq is not None:
            parts.append(b"(MODSEQ %d)" % modseq)
        return self.data(*parts)

    def esearch(
        self, tag: str, uid: bool, items: Sequence[tuple[str, bytes | int]]
    ) -> "ResponseBuilder":
        """``* ESEARCH (TAG "t") [UID] MIN 1 ...`` (RFC 4731 3.1)."""
        parts: list[bytes | str | int] = ["ESEARCH", b"(TAG " + quoted(tag) + b")"]
        if uid:
            parts.append("UID")
        for k, v in items:
            parts.extend((k, v))
        return self.data(*parts)

    def fetch(self, seq: int, items: Sequence[tuple[str, bytes | int]]) -> "ResponseBuilder":
        """``* 23 FETCH (FLAGS (\\Seen) RFC822.SIZE 44827)``; values are pre-rendered bytes."""
        body = b" ".join(
            k.encode("ascii") + b" " + (b"%d" % v if isinstance(v, int) else v) for k, v in items
        )
        return self.data(seq, "FETCH", b"(" + body + b")")

    def continuation(self, text: str = "Ready") -> "ResponseBuilder":
        return self.raw(continuation(text))
