"""Events produced by :class:`app.smtp.protocol.ServerProtocol`.

Every event is a frozen, slotted dataclass. Except for :class:`DataChunk`,
:class:`Bdat` and :class:`ConnectionClosed`, each event must be answered with
exactly one ``ServerProtocol.send(reply)`` before the next ``next_event()``. Events
that carry a ``reply`` were answered by the core: the shell sends that reply (it
may add a received-id to the text, never exception text).
"""

import enum
from dataclasses import dataclass, field
from typing import Literal

from app.smtp.codes import Reply


class Sentinel(enum.Enum):
    """Non-event results of ``next_event``."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Literal[Sentinel.NEED_DATA] = Sentinel.NEED_DATA


class Event:
    """Base class of every event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Helo(Event):
    """``HELO domain`` (RFC 5321 4.1.1.1); ``domain`` is checked syntactically."""

    domain: str


@dataclass(frozen=True, slots=True)
class Ehlo(Event):
    """``EHLO domain-or-address-literal``; answer with ``ehlo_reply``."""

    domain: str


@dataclass(frozen=True, slots=True)
class StartTLS(Event):
    """``STARTTLS`` (RFC 3207). After a 220 reply the core waits for
    ``start_tls_done()``; bytes already buffered are never read as commands."""


@dataclass(frozen=True, slots=True)
class Auth(Event):
    """``AUTH mechanism [initial-response]`` (RFC 4954 4).

    ``initial_response`` is decoded base64: ``None`` when absent, ``b""`` for ``=``.
    A 334 reply starts the exchange (lines become :class:`AuthResponse`), 235 ends
    it successfully, anything else ends it as failed.
    """

    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse(Event):
    """A decoded base64 client line during an AUTH exchange."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthCancelled(Event):
    """The client sent ``*`` (RFC 4954 4); the exchange is over."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class AuthBadResponse(Event):
    """An AUTH exchange line that is not valid base64; the exchange is over."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Mail(Event):
    """``MAIL FROM:<path> params``. ``path`` is the raw text between ``<`` and
    ``>`` (``""`` for the null reverse-path); parameter keywords are upper case and
    known ones are validated (values kept as sent, ``None`` when there is no
    ``=value``)."""

    path: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def size(self) -> int | None:
        v = self.params.get("SIZE")
        return int(v) if v is not None else None

    @property
    def body(self) -> str | None:
        v = self.params.get("BODY")
        return v.upper() if v is not None else None

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.params

    @property
    def requiretls(self) -> bool:
        return "REQUIRETLS" in self.params


@dataclass(frozen=True, slots=True)
class Rcpt(Event):
    """``RCPT TO:<path> params``; answer 2xx to accept the recipient."""

    path: str
    params: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataStart(Event):
    """``DATA`` passed the sequence checks; answer 354 to receive the message."""


@dataclass(frozen=True, slots=True)
class DataChunk(Event):
    """Part of the message (DATA: dot-unstuffed; DATA and BDAT: bare LF turned
    into CRLF). Chunks are at most ``Limits.data_chunk_size`` octets. Needs no reply."""

    data: bytes


@dataclass(frozen=True, slots=True)
class DataEnd(Event):
    """End of DATA. ``error`` set: the message must not be accepted, reply with
    it (smuggling check, size limit). The transaction is over whatever the reply."""

    error: Reply | None


@dataclass(frozen=True, slots=True)
class Bdat(Event):
    """``BDAT size [LAST]`` (RFC 3030 2); chunks follow, then :class:`BdatEnd`.
    Needs no reply of its own."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class BdatEnd(Event):
    """All octets of one BDAT chunk were read. Reply to it: a non-2xx reply (or a
    set ``error``) fails the transaction; 2xx to a ``last`` chunk completes it."""

    last: bool
    error: Reply | None


@dataclass(frozen=True, slots=True)
class Rset(Event):
    """``RSET``; the core already dropped the transaction."""


@dataclass(frozen=True, slots=True)
class Noop(Event):
    """``NOOP``."""


@dataclass(frozen=True, slots=True)
class Quit(Event):
    """``QUIT``; after the reply the connection is closed."""


@dataclass(frozen=True, slots=True)
class Vrfy(Event):
    """``VRFY string``."""

    arg: str


@dataclass(frozen=True, slots=True)
class Expn(Event):
    """``EXPN string``."""

    arg: str


@dataclass(frozen=True, slots=True)
class Help(Event):
    """``HELP [string]``."""

    arg: str | None


@dataclass(frozen=True, slots=True)
class BadCommand(Event):
    """Unknown command, syntax or sequence error; counts toward the bad-command
    limit."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Refused(Event):
    """A well-formed command refused by a limit or policy the core knows (too many
    recipients, SIZE too large, authentication/TLS required, no valid recipients).
    Not counted as a bad command."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class LineTooLong(Event):
    """A command line over the limit; it was read to its end and discarded, the
    session continues. Counts as a bad command."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class TooManyBadCommands(Event):
    """The bad-command limit was hit: send ``reply`` (421) and close."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class FirstCommandNotSMTP(Event):
    """The first line is not SMTP (HTTP request, TLS ClientHello, ...): send
    ``reply`` and close, as mox does."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class InputOverflow(Event):
    """More unprocessed input is buffered than ``Limits.max_pending_input``: the
    client does not wait for replies. Send ``reply`` (421) and close."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The client closed its side (``receive_data(b"")``), or the session is over.
    Any transaction in progress is abandoned. Needs no reply."""


# Events after which the core expects no reply.
NO_REPLY: tuple[type[Event], ...] = (DataChunk, Bdat, ConnectionClosed)
# Events after whose reply the connection must be closed.
TERMINAL: tuple[type[Event], ...] = (TooManyBadCommands, FirstCommandNotSMTP, InputOverflow, Quit)
