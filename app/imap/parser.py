"""Sans-I/O IMAP command parser: bytes in, typed events out.

The asyncio shell feeds whatever it read with :meth:`CommandParser.receive_data`
and then calls :meth:`CommandParser.next_event` until it returns
:data:`NEED_DATA`. The parser never reads: a literal surfaces as an event.

Events and what the shell does with them:

- a :class:`~app.imap.commands.Command`: dispatch it.
- :class:`NeedContinuation`: write ``+ Ready`` (the client sent a synchronising
  literal, RFC 9051 7.5); the parser already waits for the literal bytes.
- :class:`AppendBegin` / :class:`AppendData`: one APPEND message literal,
  streamed in chunks of at most ``chunk_size`` bytes; the command then ends
  with an :class:`~app.imap.commands.Append` (commit) or with a ``ParseError`` /
  :class:`LiteralTooLarge` (discard what was written). For a synchronising
  literal :class:`NeedContinuation` follows ``AppendBegin``; the shell may call
  :meth:`CommandParser.reject_literal` instead of sending ``+`` (quota, no such
  mailbox), after which the client will not send the literal.
- :class:`~app.imap.errors.ParseError`: reply ``<tag> BAD`` (``* BAD`` without
  a valid tag) and continue.
- :class:`LiteralTooLarge`: ``fatal`` False (synchronising literal): reply
  ``<tag> NO [TOOBIG]`` and continue, the client will not send it. ``fatal``
  True (non-synchronising, RFC 7888 4): reply ``* BYE [TOOBIG]`` and close.
- :class:`LineTooLong`: like mox, the default is fatal (``* BYE``, close);
  with ``line_too_long_fatal=False`` the line is consumed to its end and the
  shell replies ``BAD`` and continues.
- :class:`AuthLine` after :meth:`expect_auth_line`, :class:`IdleDone` after
  :meth:`expect_idle_done`.

Memory bound: the parser keeps at most one command's buffered text
(``max_command``: line segments plus non-APPEND literals, each segment at most
``max_line`` and each literal at most ``max_string_literal``) plus whatever
the shell fed and has not drained yet. APPEND message literals up to
``max_literal`` are never held: they leave as ``AppendData`` chunks of at most
``chunk_size`` bytes. A shell that reads at most R bytes per read and drains
events before reading again therefore holds at most ``max_command + R``.
"""

import datetime
import re
from dataclasses import dataclass, field
from typing import Final

from app.imap import commands as c
from app.imap.command_grammar import (
    AppendPrefix,
    parse_body,
    parse_head,
    peek_tag,
    xappend_message_prefix,
)
from app.imap.errors import IMAPError, ParseError
from app.imap.grammar import Literal, Pending, Piece, ReachedPending, Reader, Syntax

__all__ = [
    "NEED_DATA",
    "AppendBegin",
    "AppendData",
    "AuthLine",
    "CommandParser",
    "Event",
    "IMAPError",
    "IdleDone",
    "LineTooLong",
    "LiteralTooLarge",
    "NeedContinuation",
    "NeedData",
    "ParseError",
]

KiB = 1024
MiB = 1024 * KiB
LITERAL_MINUS_MAX = 4096  # RFC 7888 3: LITERAL- allows non-synchronising literals up to 4096

# RFC 9051 9: literal = "{" number64 ["+"] "}" CRLF; literal8 = "~{" number64 "}" CRLF (RFC 3516 4.2)
_MARKER = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\Z")


@dataclass(frozen=True, slots=True)
class NeedData:
    """Sentinel type: nothing more can be produced without more bytes."""


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """Send a continuation request (``+ Ready``) so the client sends ``size`` bytes."""

    tag: str | None
    size: int


@dataclass(frozen=True, slots=True)
class LiteralTooLarge:
    """A literal exceeds ``limit``; fatal when it was non-synchronising (RFC 7888 4)."""

    tag: str | None
    size: int
    limit: int
    fatal: bool


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A command line exceeded ``max_line`` (or the command ``max_command``)."""

    tag: str | None
    fatal: bool


@dataclass(frozen=True, slots=True)
class AppendBegin:
    """An APPEND message literal of ``size`` bytes starts (``index`` counts from 0)."""

    tag: str
    mailbox: str
    index: int
    flags: tuple[str, ...]
    date: datetime.datetime | None
    size: int
    binary: bool
    utf8: bool
    synchronizing: bool


@dataclass(frozen=True, slots=True)
class AppendData:
    """A chunk of the current APPEND message literal."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthLine:
    """A SASL response line (without CRLF) after :meth:`CommandParser.expect_auth_line`."""

    data: bytes = field(repr=False)

    @property
    def cancelled(self) -> bool:
        """RFC 9051 6.2.2: a line of ``*`` cancels the exchange."""
        return self.data == b"*"


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The client ended IDLE with ``DONE`` (RFC 2177 3)."""


Event = (
    c.Command
    | NeedData
    | NeedContinuation
    | LiteralTooLarge
    | LineTooLong
    | AppendBegin
    | AppendData
    | AuthLine
    | IdleDone
    | ParseError
)


@dataclass(slots=True)
class _Append:
    """Framing state of an APPEND command in progress."""

    mailbox: str | None = None
    messages: list[c.AppendMessage] = field(default_factory=list)
    close_paren: bool = False  # previous message used the UTF8 "(...)" form


class CommandParser:
    """Incremental IMAP command parser for one connection (server side)."""

    def __init__(
        self,
        *,
        max_line: int = 64 * KiB,
        max_literal: int = 100 * MiB,
        max_string_literal: int = 100 * KiB,
        max_command: int = 1 * MiB,
        max_literals: int = 1000,
        chunk_size: int = 64 * KiB,
        utf8_enabled: bool = False,
        literal_plus: bool = True,
        line_too_long_fatal: bool = True,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal  # APPEND messages; relates to APPENDLIMIT (RFC 7889)
        self.max_string_literal = max_string_literal
        self.max_command = max_command
        self.max_literals = max_literals
        self.chunk_size = chunk_size
        self.utf8_enabled = utf8_enabled  # set after ENABLE UTF8=ACCEPT / IMAP4rev2
        self.literal_plus = literal_plus  # False: LITERAL- (RFC 7888)
        self.line_too_long_fatal = line_too_long_fatal
        self._buf = bytearray()
        self._scan = 0
        self._closed = False
        self._queue: list[Event] = []
        self._mode = "command"  # "command", "auth", "idle"
        self._idle_tag = ""
        self._discarding_line = False
        self._discard_tail = b""
        self._long_tag: str | None = None
        self._final: Event | None = None
        self._reset()

    # --- public API ---------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the connection (ignored after a fatal event)."""
        if not self._closed:
            self._buf += data

    @property
    def closed(self) -> bool:
        """True after a fatal event: the shell must close the connection."""
        return self._closed

    def expect_auth_line(self) -> None:
        """The next line is a raw SASL response (RFC 9051 6.2.2), returned as :class:`AuthLine`."""
        self._mode = "auth"

    def expect_idle_done(self, tag: str) -> None:
        """The next line must be ``DONE`` (RFC 2177 3); anything else is ``<tag> BAD``."""
        self._mode = "idle"
        self._idle_tag = tag

    def reject_literal(self) -> None:
        """Refuse the synchronising literal just announced (no ``+`` was sent).

        The client abandons the command (RFC 9051 7.5), so parsing resumes with
        a new command. Only valid right after :class:`NeedContinuation`.
        """
        if self._lit_sync and self._lit_remaining == self._lit_size:
            self._queue.clear()
            self._reset()

    def next_event(self) -> Event:
        """Return the next event, or :data:`NEED_DATA`. Never raises for bad input."""
        try:
            return self._next()
        except (IMAPError, Syntax) as e:  # pragma: no cover - defensive, all paths convert
            self._reset()
            return ParseError(None, e.message)

    # --- state --------------------------------------------------------------

    def _reset(self) -> None:
        self._segments: list[bytes] = []
        self._literals: list[Piece] = []
        self._tag: str | None = None
        self._command: str | None = None
        self._append: _Append | None = None
        self._error: ParseError | None = None
        self._size = 0
        self._lit_remaining = 0
        self._lit_size = 0
        self._lit_sync = False
        self._lit_kind = ""  # "buffer", "stream", "skip"
        self._lit_data = bytearray()
        self._lit_binary = False

    def _fatal(self, event: Event) -> Event:
        self._closed = True
        self._buf.clear()
        self._queue.clear()
        return event

    def _next(self) -> Event:
        while True:
            if self._closed:
                final, self._final = self._final, None
                return NEED_DATA if final is None else final
            if self._queue:
                return self._queue.pop(0)
            if self._lit_kind:
                ev = self._literal_step()
                if ev is None:
                    continue
                return ev
            line = self._take_line()
            if line is None:
                if self._closed or self._queue:
                    continue
                return NEED_DATA
            ev = self._on_line(line)
            if ev is not None:
                return ev

    # --- lines --------------------------------------------------------------

    def _take_line(self) -> bytes | None:
        buf = self._buf
        if self._discarding_line:
            idx = buf.find(b"\n")
            if idx < 0:
                self._discard_tail = (self._discard_tail + bytes(buf))[-40:]
                buf.clear()
                return None
            self._discard_tail = (self._discard_tail + bytes(buf[:idx]))[-40:]
            del buf[: idx + 1]
            self._discarding_line = False
            ev = self._after_discarded_line()
            if self._closed:
                self._final = ev
            else:
                self._queue.append(ev)
            return None
        idx = buf.find(b"\n", self._scan)
        if idx < 0:
            self._scan = len(buf)
            if len(buf) > self.max_line + 1:
                self._line_too_long()
                return self._take_line() if self._discarding_line else None
            return None
        self._scan = 0
        end = idx - 1 if idx > 0 and buf[idx - 1] == 0x0D else idx
        if end > self.max_line:
            self._line_too_long()
            return self._take_line() if self._discarding_line else None
        line = bytes(buf[:end])
        del buf[: idx + 1]
        return line

    def _line_too_long(self) -> None:
        tag = self._tag if self._segments else peek_tag(bytes(self._buf[:300]))
        self._scan = 0
        if self.line_too_long_fatal or self._lit_kind:
            self._final = self._fatal(LineTooLong(tag, True))
            return
        self._discard_tail = b""
        self._discarding_line = True
        self._long_tag = tag

    def _after_discarded_line(self) -> Event:
        tag = self._long_tag
        self._reset()
        m = _MARKER.search(self._discard_tail.rstrip(b"\r"))
        if m is not None and m.group(3):
            # A non-synchronising literal follows that we cannot skip safely.
            return self._fatal(LineTooLong(tag, True))
        return LineTooLong(tag, False)

    def _on_line(self, line: bytes) -> Event | None:
        if self._mode == "auth":
            self._mode = "command"
            return AuthLine(line)
        if self._mode == "idle":
            self._mode = "command"
            if line.upper() == b"DONE":
                return IdleDone()
            return ParseError(self._idle_tag, "expected DONE")
        if not self._segments and not line:
            return ParseError(None, "empty command line")
        self._size += len(line)
        if self._size > self.max_command:
            tag = self._tag if self._segments else peek_tag(line)
            return self._fatal(LineTooLong(tag, True))
        m = _MARKER.search(line) if line.endswith(b"}") else None
        if m is None:
            self._segments.append(line)
            return self._finish()
        self._segments.append(line[: m.start()])
        return self._on_literal_marker(int(m.group(2)), bool(m.group(1)), not m.group(3))

    # --- literals -----------------------------------------------------------

    def _on_literal_marker(self, size: int, binary: bool, sync: bool) -> Event | None:
        if len(self._segments) == 1:
            self._tag = peek_tag(self._segments[0])
            self._command = _command_word(self._segments[0])
        tag = self._tag
        if not sync and not self.literal_plus and size > LITERAL_MINUS_MAX:
            return self._fatal(LiteralTooLarge(tag, size, LITERAL_MINUS_MAX, True))
        if self._error is None:
            prefix = self._check_prefix(size, binary)
            if isinstance(prefix, AppendPrefix):
                return self._begin_append_message(prefix, size, binary, sync)
        if self._error is not None:
            if sync:
                # The client waits for "+": answer now, it abandons the command.
                err = self._error
                self._reset()
                return err
            if size > self.max_string_literal:
                return self._fatal(LiteralTooLarge(tag, size, self.max_string_literal, True))
            self._start_literal(size, sync, binary, "skip")
            return None
        too_big = size > self.max_string_literal or self._size + size > self.max_command
        if too_big or len(self._literals) >= self.max_literals:
            limit = self.max_string_literal
            if not sync:
                return self._fatal(LiteralTooLarge(tag, size, limit, True))
            self._reset()
            return LiteralTooLarge(tag, size, limit, False)
        self._size += size
        self._start_literal(size, sync, binary, "buffer")
        return NeedContinuation(tag, size) if sync else None

    def _start_literal(self, size: int, sync: bool, binary: bool, kind: str) -> None:
        self._lit_size = self._lit_remaining = size
        self._lit_sync = sync
        self._lit_binary = binary
        self._lit_kind = kind
        self._lit_data = bytearray()

    def _literal_step(self) -> Event | None:
        """Move literal bytes; returns an event, or None to continue the loop."""
        buf = self._buf
        n = min(len(buf), self._lit_remaining)
        if self._lit_kind == "stream":
            if self._lit_remaining == 0:
                self._lit_kind = ""
                return None
            if n == 0:
                return NEED_DATA
            n = min(n, self.chunk_size)
            chunk = bytes(buf[:n])
            del buf[:n]
            self._lit_remaining -= n
            if self._lit_remaining == 0:
                self._lit_kind = ""
            return AppendData(chunk)
        if self._lit_remaining and n == 0:
            return NEED_DATA
        if self._lit_kind == "buffer":
            self._lit_data += buf[:n]
        del buf[:n]
        self._lit_remaining -= n
        if self._lit_remaining:
            return NEED_DATA
        if self._lit_kind == "buffer":
            self._literals.append(Literal(bytes(self._lit_data), self._lit_binary))
        else:
            self._literals.append(Literal(b"", self._lit_binary))
        self._lit_kind = ""
        self._lit_data = bytearray()
        return None

    def _reader(self, pending: Pending | None) -> Reader:
        lits = list(self._literals)
        if pending is not None:
            lits.append(pending)
        return Reader(self._segments, lits, utf8=self.utf8_enabled)

    def _check_prefix(self, size: int, binary: bool) -> AppendPrefix | None:
        """Validate what came before a literal; returns the APPEND message prefix if it is one.

        Non-APPEND commands are checked only at their first literal, keeping the
        work linear in the command size.
        """
        pending = Pending(size, binary)
        if self._command == "APPEND":
            return self._check_append(pending)
        if len(self._literals) > 0:
            return None
        r = self._reader(pending)
        try:
            tag, name = parse_head(r)
            parse_body(r, tag, name)
        except ReachedPending:
            return None
        except Syntax as e:
            self._error = ParseError(self._tag, e.message)
            return None
        self._error = ParseError(self._tag, "unexpected literal")
        return None

    def _check_append(self, pending: Pending) -> AppendPrefix | None:
        ap = self._append
        try:
            if ap is None or ap.mailbox is None:
                r = self._reader(pending)
                parse_head(r)
                r.xspace()
                try:
                    mailbox = r.xmailbox()
                except ReachedPending:
                    return None  # the mailbox name itself is this literal
                self._append = ap = _Append(mailbox)
                return xappend_message_prefix(r)
            r = Reader([self._segments[-1]], [pending], utf8=self.utf8_enabled)
            if ap.close_paren:
                r.xtake(b")")
            return xappend_message_prefix(r)
        except Syntax as e:
            self._error = ParseError(self._tag, e.message)
            return None

    def _begin_append_message(
        self, prefix: AppendPrefix, size: int, binary: bool, sync: bool
    ) -> Event:
        ap = self._append
        tag = self._tag
        assert ap is not None and ap.mailbox is not None and tag is not None
        if size > self.max_literal:
            if not sync:
                return self._fatal(LiteralTooLarge(tag, size, self.max_literal, True))
            self._reset()
            return LiteralTooLarge(tag, size, self.max_literal, False)
        if len(ap.messages) >= self.max_literals:
            self._error = ParseError(tag, "too many messages")
            if sync:
                self._reset()
                return ParseError(tag, "too many messages")
            return self._fatal(LiteralTooLarge(tag, size, 0, True))
        msg = c.AppendMessage(prefix.flags, prefix.date, size, binary, prefix.utf8)
        ap.messages.append(msg)
        ap.close_paren = prefix.utf8
        # Streamed literals are not kept; mark them so the segment/literal lists stay aligned.
        self._literals.append(Literal(b"", binary))
        self._start_literal(size, sync, binary, "stream")
        if sync:
            self._queue.append(NeedContinuation(tag, size))
        return AppendBegin(
            tag, ap.mailbox, len(ap.messages) - 1, msg.flags, msg.date, size, binary, msg.utf8, sync
        )

    # --- end of command -----------------------------------------------------

    def _finish(self) -> Event:
        err = self._error
        ap = self._append
        segments = self._segments
        try:
            if err is not None:
                return err
            if ap is not None and ap.mailbox is not None:
                r = Reader([segments[-1]], [], utf8=self.utf8_enabled)
                if ap.close_paren:
                    r.xtake(b")")
                r.xend()
                assert self._tag is not None
                return c.Append(self._tag, ap.mailbox, tuple(ap.messages))
            r = Reader(segments, self._literals, utf8=self.utf8_enabled)
            tag, name = parse_head(r)
            return parse_body(r, tag, name)
        except Syntax as e:
            return ParseError(self._error_tag(segments), e.message)
        except ReachedPending:  # pragma: no cover - no pending literal at the end
            return ParseError(self._error_tag(segments), "unexpected literal")
        finally:
            self._reset()

    def _error_tag(self, segments: list[bytes]) -> str | None:
        """The tag to answer a refused command with (only computed on errors)."""
        return self._tag if len(segments) > 1 else peek_tag(segments[0])


def _command_word(segment: bytes) -> str | None:
    parts = segment.split(b" ", 2)
    if len(parts) < 2:
        return None
    return parts[1].upper().decode("ascii", "replace")
