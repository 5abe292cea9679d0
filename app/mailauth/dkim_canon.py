"""Raw header splitting and canonicalisation for DKIM and ARC (RFC 6376 3.4).

DKIM hashes the message exactly as it was transmitted, so this module works on raw
bytes and never on a parsed or re-serialised form. Messages given with bare LF line
endings (files on disk, test vectors) are first normalised to CRLF, as they would be
on the wire (RFC 5322 2.1).
"""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

_BARE_LF = re.compile(rb"(?<!\r)\n")
_WSP_RUN = re.compile(rb"[ \t]+")
_WSP_BEFORE_CRLF = re.compile(rb" \r\n")
_FOLD = re.compile(rb"\r\n(?=[ \t])")


class Canon(StrEnum):
    """A canonicalisation algorithm (RFC 6376 3.4)."""

    SIMPLE = "simple"
    RELAXED = "relaxed"


@dataclass(frozen=True, slots=True)
class RawHeader:
    """One header field as transmitted: ``raw`` includes the name, the colon, any
    continuation lines and the final CRLF."""

    name: str
    lname: str
    raw: bytes

    @property
    def value(self) -> bytes:
        """Everything after the first colon, including the final CRLF."""
        return self.raw.split(b":", 1)[1]


def normalize_line_endings(message: bytes) -> bytes:
    """Turn bare LF line endings into CRLF; a CRLF message is returned unchanged."""
    if message.count(b"\n") == message.count(b"\r\n"):
        return message
    return _BARE_LF.sub(b"\r\n", message)


def split_message(message: bytes) -> tuple[list[RawHeader], int]:
    """Split a CRLF message into its header fields and the offset of the body.

    A line in the header section that is neither a field nor a continuation (no
    colon, or an invalid field name) ends the header section, like a blank line
    would: such a message is malformed, and treating the rest as body makes every
    signature over it fail rather than guessing. A message without a blank line is
    all header.
    """
    headers: list[RawHeader] = []
    pos = 0
    n = len(message)
    current_start = -1
    current_name = ""
    while pos < n:
        end = message.find(b"\r\n", pos)
        end = n if end < 0 else end + 2
        line = message[pos:end]
        if line in (b"\r\n", b"\n"):
            if current_start >= 0:
                headers.append(_header(current_name, message[current_start:pos]))
            return headers, end
        if line[:1] in (b" ", b"\t") and current_start >= 0:
            pos = end  # continuation of the current field (RFC 5322 2.2.3)
            continue
        if current_start >= 0:
            headers.append(_header(current_name, message[current_start:pos]))
            current_start = -1
        name, colon, _ = line.partition(b":")
        name = name.rstrip(b" \t")
        # RFC 5322 2.2: field-name is printable US-ASCII except colon.
        if not colon or not name or any(c <= 0x20 or c >= 0x7F for c in name):
            return headers, pos
        current_start = pos
        current_name = name.decode("ascii")
        pos = end
    if current_start >= 0:
        headers.append(_header(current_name, message[current_start:]))
    return headers, n


def _header(name: str, raw: bytes) -> RawHeader:
    return RawHeader(name, name.lower(), raw)


def relaxed_header(raw: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfold, collapse WSP, trim; ends in CRLF."""
    name, _, value = raw.partition(b":")
    value = _FOLD.sub(b"", value)
    if value.endswith(b"\r\n"):
        value = value[:-2]
    value = _WSP_RUN.sub(b" ", value).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"


def canon_header(raw: bytes, canon: Canon) -> bytes:
    """The header field in canonical form, including its final CRLF."""
    if canon is Canon.SIMPLE:
        return raw if raw.endswith(b"\r\n") else raw + b"\r\n"  # RFC 6376 3.4.1
    return relaxed_header(raw)


def select_headers(headers: Sequence[RawHeader], names: Sequence[str]) -> list[RawHeader]:
    """The fields ``names`` (from h=) refer to, in h= order.

    RFC 6376 5.4.2: for a name listed more than once, each occurrence takes the next
    instance from the bottom of the header upwards; names listed more often than
    present select nothing (an empty string is hashed), which is what makes
    over-signing work.
    """
    stacks: dict[str, list[RawHeader]] = {}
    for h in headers:
        stacks.setdefault(h.lname, []).append(h)
    out: list[RawHeader] = []
    for name in names:
        stack = stacks.get(name.lower())
        if stack:
            out.append(stack.pop())
    return out


def canon_body(body: bytes, canon: Canon) -> bytes:
    """The canonical body (RFC 6376 3.4.3 simple, 3.4.4 relaxed) of a CRLF body."""
    if canon is Canon.RELAXED:
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"  # RFC 6376 3.4.4: a non-empty body gets a final CRLF
        body = _WSP_RUN.sub(b" ", body)  # RFC 6376 3.4.4 (b): WSP runs to one SP
        body = _WSP_BEFORE_CRLF.sub(b"\r\n", body)  # (a): no WSP at line ends
        body = _strip_trailing_crlfs(body)
        return body + b"\r\n" if body else b""  # (c): no empty lines at the end
    # RFC 6376 3.4.3: trailing empty lines removed, exactly one CRLF at the end; an
    # empty body becomes a single CRLF.
    return _strip_trailing_crlfs(body) + b"\r\n"


def _strip_trailing_crlfs(body: bytes) -> bytes:
    end = len(body)
    while end >= 2 and body[end - 2 : end] == b"\r\n":
        end -= 2
    return body[:end]


def body_hash(body: bytes, canon: Canon, hash_name: str, length: int | None = None) -> bytes:
    """Digest of the canonical body, limited to ``length`` octets (l=) when given.

    Raises :class:`BodyTooShort` when l= asks for more than the canonical body has.
    """
    data = canon_body(body, canon)
    if length is not None:
        if length > len(data):
            raise BodyTooShort(length, len(data))
        data = data[:length]
    return hashlib.new(hash_name, data).digest()


class BodyTooShort(ValueError):
    """l= is larger than the canonical body: the body was truncated (RFC 6376 3.5)."""

    def __init__(self, wanted: int, have: int) -> None:
        super().__init__(f"l={wanted} exceeds canonical body length {have}")
        self.wanted = wanted
        self.have = have


class BodyHasher:
    """:func:`body_hash` for a body that arrives in chunks (a large spooled message).

    Lines are canonicalised as they complete; a run of empty lines is held back until
    a non-empty line follows, so trailing empty lines are dropped as RFC 6376 3.4.3
    and 3.4.4 require. Bare LF counts as CRLF, as :func:`normalize_line_endings`
    would make it. Memory: one partial line.
    """

    def __init__(self, canon: Canon, hash_name: str, length: int | None = None) -> None:
        self.canon = canon
        self.length = length
        self._hash = hashlib.new(hash_name)
        self._partial = b""
        self._empty = 0  # empty lines held back
        self.size = 0  # canonical octets so far

    def _emit(self, data: bytes) -> None:
        if self.length is not None:
            room = self.length - self.size
            if room > 0:
                self._hash.update(data[:room])
        else:
            self._hash.update(data)
        self.size += len(data)

    def _line(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if self.canon is Canon.RELAXED:
            line = _WSP_RUN.sub(b" ", line).rstrip(b" ")
        if not line:
            self._empty += 1
            return
        if self._empty:
            self._emit(b"\r\n" * self._empty)
            self._empty = 0
        self._emit(line + b"\r\n")

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)

    def digest(self) -> bytes:
        """The body hash; raises :class:`BodyTooShort` like :func:`body_hash`."""
        if self._partial:
            self._line(self._partial)
            self._partial = b""
        if self.size == 0 and self.canon is Canon.SIMPLE:
            self._emit(b"\r\n")  # RFC 6376 3.4.3: an empty body is one CRLF
        if self.length is not None and self.length > self.size:
            raise BodyTooShort(self.length, self.size)
        return self._hash.digest()
