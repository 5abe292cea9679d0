"""Header section scanning over raw bytes (RFC 5322 2.2, 2.2.3, 3.6; RFC 6532 3.2).

The scanner works directly on the message bytes and records offsets, so MIME
parsing never copies the message. It tolerates LF-only line ends, garbage lines
(skipped), obsolete ``Name : value`` spacing and 8-bit header bytes (UTF-8, or
latin-1 when that fails).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_FOLD = re.compile(rb"\r?\n(?=[ \t])|\r?\n$")


def header_text(raw: bytes) -> str:
    """Decode header bytes: UTF-8 per RFC 6532 3.2, falling back to latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def unfold(raw: bytes) -> str:
    """Unfold a raw field value (RFC 5322 2.2.3: remove CRLF before WSP), decode and strip."""
    if b"\n" in raw:
        raw = _FOLD.sub(b"", raw).replace(b"\r", b"").replace(b"\n", b"")
    return header_text(raw).strip()


@dataclass(frozen=True, slots=True)
class Field:
    """One header field as found in the message."""

    name: str  # as written, e.g. "Subject"
    raw: bytes  # value after the colon, folding intact, without the final line end
    offset: int  # offset of the field's first byte in the message

    @property
    def key(self) -> str:
        """The lower-cased name, for comparisons."""
        return self.name.lower()

    @property
    def value(self) -> str:
        """The unfolded, decoded and stripped value."""
        return unfold(self.raw)


@dataclass(frozen=True, slots=True)
class Header:
    """A parsed header section: ``data[start:body]`` holds it, blank line included.

    Fields are kept as regex matches over the block (no copies of values) until
    asked for; this keeps the per-delivery cost low.
    """

    data: bytes = field(repr=False)
    start: int
    body: int  # offset where the body starts
    _matches: list[re.Match[str]] = field(repr=False, compare=False)
    _first: dict[str, re.Match[str]] = field(repr=False, compare=False)

    def _raw(self, m: re.Match[str]) -> bytes:
        a, b = m.span(2)
        if m.group(2).endswith("\r"):
            b -= 1
        return self.data[self.start + a : self.start + b]

    def _field(self, m: re.Match[str]) -> Field:
        return Field(m.group(1), self._raw(m), self.start + m.start())

    @property
    def fields(self) -> tuple[Field, ...]:
        """All fields in message order."""
        return tuple(self._field(m) for m in self._matches)

    def get_field(self, name: str) -> Field | None:
        """The first field called ``name`` (case-insensitive), or None."""
        m = self._first.get(name.lower())
        return None if m is None else self._field(m)

    def get(self, name: str) -> str | None:
        """The unfolded value of the first field ``name``, or None when absent."""
        m = self._first.get(name)
        if m is None:
            m = self._first.get(name.lower())
            if m is None:
                return None
        a, b = m.span(2)
        return unfold(self.data[self.start + a : self.start + b])

    def pick(self, keys: tuple[str, ...]) -> list[str | None]:
        """Unfolded values of the first fields with the given lower-case names."""
        first = self._first
        data = self.data
        s = self.start
        out: list[str | None] = []
        for k in keys:
            m = first.get(k)
            if m is None:
                out.append(None)
            else:
                a, b = m.span(2)
                out.append(unfold(data[s + a : s + b]))
        return out

    def get_raw(self, name: str) -> bytes | None:
        """The raw value bytes of the first field ``name``, or None when absent."""
        m = self._first.get(name.lower())
        return None if m is None else self._raw(m)

    def get_all(self, name: str) -> list[str]:
        """Unfolded values of every field ``name``, in message order."""
        key = name.lower()
        return [unfold(self._raw(m)) for m in self._matches if m.group(1).lower() == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first


# RFC 5322 3.6.8: ftext is printable US-ASCII except ":"; we only refuse
# whitespace and controls so that 8-bit garbage names do not end the header.
# A field is its first line and the folded continuation lines (RFC 5322 2.2.3).
# Lines that do not match (garbage, continuations of garbage) are skipped.
# The block is matched as latin-1 text, which maps bytes 1:1 (offsets are kept).
_FIELD = re.compile(r"^([^\x00-\x20\x7f:]+)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)(?:\n|\Z)", re.M)


def _header_end(data: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body): RFC 5322 2.1 empty line."""
    if data.startswith(b"\r\n", start):
        return start, start + 2
    if data.startswith(b"\n", start):
        return start, start + 1
    e1 = data.find(b"\n\r\n", start, end)
    e2 = data.find(b"\n\n", start, end if e1 < 0 else e1)
    if e2 >= 0:
        return e2 + 1, e2 + 2
    if e1 >= 0:
        return e1 + 1, e1 + 3
    return end, end


def scan(
    data: bytes,
    start: int = 0,
    end: int | None = None,
    stop: Callable[[int], bool] | None = None,
) -> tuple[Header, bool]:
    """Scan the header section of ``data[start:end]``; ``start`` is a line start.

    Returns the header and whether scanning stopped at a line for which ``stop``
    (called with the line's offset, only for lines starting with ``--``) returned
    True; the header's ``body`` is then that line's offset. Never raises.
    """
    if end is None:
        end = len(data)
    hend, body = _header_end(data, start, end)
    stopped = False
    if stop is not None and hend > start:
        if data.startswith(b"--", start):
            q = start
        else:
            q = data.find(b"\n--", start, hend)
            q = q + 1 if q >= 0 else -1
        while q >= 0:
            if stop(q):
                hend = body = q
                stopped = True
                break
            q = data.find(b"\n--", q + 2, hend)
            q = q + 1 if q >= 0 else -1
    matches = list(_FIELD.finditer(data[start:hend].decode("latin-1")))
    first = {m.group(1).lower(): m for m in reversed(matches)}
    return Header(data, start, body, matches, first), stopped


def parse_header(data: bytes) -> Header:
    """Parse the header section at the start of a message."""
    return scan(data)[0]


def split_header(data: bytes) -> tuple[bytes, int]:
    """Split a message into its header section (blank line included) and body offset."""
    h = parse_header(data)
    return data[: h.body], h.body
