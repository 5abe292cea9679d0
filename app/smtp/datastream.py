"""Incremental readers for message content after DATA and BDAT (no I/O).

Both readers consume bytes from the caller's buffer, collect output (with CRLF
line endings, the form messages are stored in) and hand it out in chunks of a
fixed size, so the chunk boundaries depend only on the content, never on how the
input was split into reads. Memory stays bounded by about one chunk plus one read.

DATA (RFC 5321 4.1.1.4, 4.5.2), following mox v0.0.9's smuggling fix:

* only ``<CRLF>.<CRLF>`` ends the data; a line starting with a dot after a CRLF
  loses that dot (dot-unstuffing);
* a bare CR anywhere, ``<CRLF>.<LF>``, ``<LF>.<LF>`` and ``<LF>.<CRLF>`` (LF not
  preceded by CR) make the transaction fail at its end with
  ``500 5.5.2 invalid bare \\r or \\n, may be smtp smuggling`` while reading
  continues to the real end, keeping the session in sync;
* beyond mox: a line that starts with NUL followed by a dot (the "nullbefore"
  sequence of public smuggling scanners; a NUL-stripping relay would see an end of
  data there) fails the same way;
* any other bare LF is accepted and gets its CR added; lines longer than 1000
  octets are accepted, as mox does.
"""

import re

from app.message.fixup import CRLFStream
from app.smtp import codes as c
from app.smtp.codes import Reply

SMUGGLING = Reply(
    c.C500_SYNTAX_ERROR, c.SE_PROTO5_SYNTAX_2, "invalid bare \\r or \\n, may be smtp smuggling"
)
SMUGGLING_NUL = Reply(
    c.C500_SYNTAX_ERROR, c.SE_PROTO5_SYNTAX_2, "invalid nul byte before dot, may be smtp smuggling"
)
# RFC 1870 6.3 and RFC 3463 3.4.
TOO_LARGE = Reply(c.C552_STORAGE_EXCEEDED, c.SE_SYS3_MSG_TOO_LARGE_4, "message too large")
BARE_CR = Reply(
    c.C554_TRANSACTION_FAILED, c.SE_MSG6_OTHER_0, "bare carriage return in message data"
)

_CR, _LF, _DOT = 0x0D, 0x0A, 0x2E

# Where the reader is relative to lines.
_AFTER_CRLF = 0  # at a line start, previous line ended in CRLF (or start of data)
_AFTER_LF = 1  # at a line start, previous line ended in a bare LF
_MID = 2  # inside a line


class _Output:
    """Output collector: counts size, drops content once it cannot be used."""

    __slots__ = ("_buf", "_chunk_size", "_max_size", "error", "size")

    def __init__(self, chunk_size: int, max_size: int) -> None:
        self._buf = bytearray()
        self._chunk_size = chunk_size
        self._max_size = max_size
        self.size = 0
        self.error: Reply | None = None

    def fail(self, reply: Reply) -> None:
        if self.error is None or (self.error is TOO_LARGE and reply is not TOO_LARGE):
            self.error = reply
        self._buf.clear()

    def add(self, data: bytes | bytearray | memoryview) -> None:
        self.size += len(data)
        if self.size > self._max_size:
            self.fail(TOO_LARGE)
        if self.error is None:
            self._buf += data

    @property
    def full(self) -> bool:
        return len(self._buf) >= self._chunk_size

    def take(self, final: bool) -> bytes | None:
        """Next chunk, or ``None``; with ``final`` also the short remainder."""
        if len(self._buf) >= self._chunk_size:
            out = bytes(self._buf[: self._chunk_size])
            del self._buf[: self._chunk_size]
            return out
        if final and self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            return out
        return None


class DataReader:
    """Reader for the content after ``DATA``/354 up to ``<CRLF>.<CRLF>``."""

    __slots__ = ("_out", "_where", "done")

    def __init__(self, chunk_size: int, max_size: int) -> None:
        self._out = _Output(chunk_size, max_size)
        self._where = _AFTER_CRLF  # RFC 5321 4.1.1.4: "." CRLF right away is empty data
        self.done = False

    @property
    def error(self) -> Reply | None:
        return self._out.error

    def take(self) -> bytes | None:
        return self._out.take(self.done)

    def feed(self, buf: bytearray) -> int:
        """Consume from ``buf``; returns the number of octets used. Stops at the end
        of data (``done``), when a chunk is ready, or when more input is needed."""
        out = self._out
        i, n = 0, len(buf)
        while i < n and not self.done and not out.full:
            if self._where != _MID:
                used = self._line_start(buf, i)
                if used < 0:
                    break
                i += used
                continue
            nl = buf.find(b"\n", i)
            if nl < 0:
                end = n - 1 if buf[n - 1] == _CR else n  # a CR may pair with a later LF
                if end == i:
                    break
                seg = buf[i:end]
                if _CR in seg:
                    out.fail(SMUGGLING)
                out.add(seg)
                i = end
                continue
            crlf = nl > i and buf[nl - 1] == _CR
            content = buf[i : nl - 1] if crlf else buf[i:nl]
            if _CR in content:
                out.fail(SMUGGLING)  # bare CR
            out.add(content)
            out.add(b"\r\n")  # a bare LF gets its CR (stored form, RFC 5322 2.1)
            self._where = _AFTER_CRLF if crlf else _AFTER_LF
            i = nl + 1
        return i

    def _line_start(self, buf: bytearray, i: int) -> int:
        """Checks at the start of a line; octets used, or -1 for "need more"."""
        head = bytes(buf[i : i + 3])
        if len(head) < 3 and b"\n" not in head:
            return -1
        used = 0
        if self._where == _AFTER_CRLF:
            if head == b".\r\n":  # RFC 5321 4.1.1.4: the end of the mail data
                self.done = True
                return 3
            if head[0] == _DOT:
                if head[1] == _LF:  # <CRLF>.<LF>
                    self._out.fail(SMUGGLING)
                used = 1  # RFC 5321 4.5.2: drop the first of a leading dot
        elif head.startswith(b".\n") or head == b".\r\n":  # <LF>.<LF>, <LF>.<CRLF>
            self._out.fail(SMUGGLING)
        if head.startswith(b"\x00."):
            self._out.fail(SMUGGLING_NUL)
        self._where = _MID
        return used


_BARE_CR = re.compile(rb"\r(?!\n)")


class BdatReader:
    """Reader for BDAT chunks of one transaction (RFC 3030 2): exactly ``size``
    octets per chunk, no dot handling and no end marker. Bare LFs get a CR; a bare
    CR fails the transaction, like DATA (stored messages are in CRLF form and may be
    relayed with DATA later)."""

    __slots__ = ("_crlf", "_out", "_pending_cr", "remaining")

    def __init__(self, chunk_size: int, max_size: int) -> None:
        self._out = _Output(chunk_size, max_size)
        self._crlf = CRLFStream()
        self._pending_cr = False
        self.remaining = 0

    @property
    def error(self) -> Reply | None:
        return self._out.error

    @property
    def size(self) -> int:
        return self._out.size

    def start_chunk(self, size: int) -> None:
        self.remaining = size

    def fail(self, reply: Reply) -> None:
        self._out.fail(reply)

    def take(self, final: bool) -> bytes | None:
        return self._out.take(final and self.remaining == 0)

    def finish(self) -> None:
        """After the LAST chunk: a trailing CR is bare."""
        if self._pending_cr:
            self._out.fail(BARE_CR)

    def feed(self, buf: bytearray) -> int:
        n = min(self.remaining, len(buf))
        if self._out.full or n == 0:
            return 0
        seg = bytes(buf[:n])
        self.remaining -= n
        if self._pending_cr and seg[0] != _LF:
            self._out.fail(BARE_CR)
        body = seg[:-1] if seg[-1] == _CR else seg
        if _BARE_CR.search(body):
            self._out.fail(BARE_CR)
        self._pending_cr = seg[-1] == _CR
        self._out.add(self._crlf.feed(seg))
        return n
