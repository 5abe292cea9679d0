"""Typed IMAP command values produced by :mod:`app.imap.parser`.

Every command is a frozen, slotted dataclass deriving from :class:`Command`, so
the server shell dispatches on the type. Mailbox names are already decoded
(modified UTF-7 unless UTF8=ACCEPT is enabled) and ``INBOX`` is normalised.
Strings are ``str``; message literals of APPEND are never held here (see
:class:`app.imap.parser.AppendBegin`).
"""

import datetime
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------
# Building blocks


@dataclass(frozen=True, slots=True)
class NumRange:
    """One element of a sequence set; ``None`` stands for ``*`` (RFC 9051 9, seq-range)."""

    first: int | None
    last: int | None

    def bounds(self, largest: int) -> tuple[int, int]:
        """The range as ``(low, high)`` with ``*`` replaced by ``largest``.

        RFC 9051 9: "a:b" and "b:a" are the same range.
        """
        a = largest if self.first is None else self.first
        b = largest if self.last is None else self.last
        return (a, b) if a <= b else (b, a)


@dataclass(frozen=True, slots=True)
class NumSet:
    """A sequence set; ``saved`` is the SEARCHRES ``$`` reference (RFC 5182)."""

    ranges: tuple[NumRange, ...] = ()
    saved: bool = False

    def contains(self, n: int, largest: int) -> bool:
        """Whether ``n`` is in the set when ``*`` is ``largest`` (not for ``$``)."""
        for r in self.ranges:
            low, high = r.bounds(largest)
            if low <= n <= high:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Section:
    """A BODY section (RFC 9051 9, section-spec).

    ``part`` is the part path (empty for the whole message); ``text`` is one of
    ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT``, ``MIME`` or None.
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Partial:
    """``<offset.count>`` (RFC 9051 9, partial)."""

    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One fetch attribute.

    ``name`` is the upper-case attribute without ``.PEEK`` (``BODY``, ``BINARY``,
    ``BINARY.SIZE``, ``FLAGS``, ...). ``section`` is set for ``BODY[...]``;
    ``binary_section`` for ``BINARY[...]``/``BINARY.SIZE[...]``. Plain ``BODY``
    (structure, no brackets) has ``section`` None.
    """

    name: str
    peek: bool = False
    section: Section | None = None
    binary_section: tuple[int, ...] | None = None
    partial: Partial | None = None


# --- search keys (RFC 9051 9, search-key; RFC 3501 9 for NEW/OLD/RECENT) ---


@dataclass(frozen=True, slots=True)
class SearchAll:
    """``ALL``."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A flag test: ``SEEN``/``UNSEEN``... or ``KEYWORD x``/``UNKEYWORD x``.

    ``flag`` is the flag as a client writes it (``\\Seen``, ``$Forwarded``);
    ``present`` is False for the UN- forms.
    """

    flag: str
    present: bool


@dataclass(frozen=True, slots=True)
class SearchState:
    """IMAP4rev1 session-state keys ``NEW``, ``OLD``, ``RECENT`` (RFC 3501 6.4.4)."""

    name: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """A text key; ``field`` is BCC, BODY, CC, FROM, SUBJECT, TEXT or TO."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """``HEADER field-name string``."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchDate:
    """A date key; ``field`` is BEFORE, ON, SINCE, SENTBEFORE, SENTON or SENTSINCE."""

    field: str
    date: datetime.date


@dataclass(frozen=True, slots=True)
class SearchSize:
    """``LARGER n`` (``larger`` True) or ``SMALLER n``."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchSet:
    """A bare sequence set (``uid`` False) or ``UID set``."""

    numbers: NumSet
    uid: bool


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """``MODSEQ [entry-name entry-type] mod-sequence-valzer`` (RFC 7162 3.1.5)."""

    modseq: int
    entry: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchAge:
    """``OLDER n`` (``older`` True) or ``YOUNGER n`` in seconds (RFC 5032)."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class SearchNot:
    """``NOT key``."""

    key: "SearchKey"


@dataclass(frozen=True, slots=True)
class SearchOr:
    """``OR key1 key2``."""

    left: "SearchKey"
    right: "SearchKey"


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """A parenthesised group or the top-level list: all keys must match."""

    keys: tuple["SearchKey", ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchState
    | SearchText
    | SearchHeader
    | SearchDate
    | SearchSize
    | SearchSet
    | SearchModSeq
    | SearchAge
    | SearchNot
    | SearchOr
    | SearchAnd
)


@dataclass(frozen=True, slots=True)
class QResync:
    """SELECT/EXAMINE ``QRESYNC (uidvalidity modseq [known-uids [seq-match]])`` (RFC 7162 3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: NumSet | None = None
    seq_match: tuple[NumSet, NumSet] | None = None


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND (or MULTIAPPEND) command, after its literal was streamed."""

    flags: tuple[str, ...]
    date: datetime.datetime | None
    size: int
    binary: bool  # literal8 "~{N}" (RFC 3516 4.4)
    utf8: bool  # "UTF8 (~{N})" form (RFC 6855 4)


# ---------------------------------------------------------------------------
# Commands


@dataclass(frozen=True, slots=True)
class Command:
    """Base of all commands; ``tag`` is the client's tag."""

    tag: str


@dataclass(frozen=True, slots=True)
class Capability(Command):
    """CAPABILITY."""


@dataclass(frozen=True, slots=True)
class Noop(Command):
    """NOOP."""


@dataclass(frozen=True, slots=True)
class Logout(Command):
    """LOGOUT."""


@dataclass(frozen=True, slots=True)
class StartTLS(Command):
    """STARTTLS."""


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """AUTHENTICATE; ``initial_response`` is the decoded SASL-IR (RFC 4959), ``b""`` for ``=``."""

    mechanism: str
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class Login(Command):
    """LOGIN userid password."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """ENABLE (RFC 5161); capabilities upper-cased."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT, or EXAMINE when ``readonly``; CONDSTORE/QRESYNC parameters (RFC 7162)."""

    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QResync | None = None


@dataclass(frozen=True, slots=True)
class Create(Command):
    """CREATE, with ``USE (...)`` special-use flags (RFC 6154 3)."""

    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete(Command):
    """DELETE."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename(Command):
    """RENAME."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    """SUBSCRIBE."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    """UNSUBSCRIBE."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST, basic or extended (RFC 5258, RFC 5819, RFC 6154).

    ``extended`` is True when selection options, several patterns or RETURN
    options were given. ``return_status`` is None unless ``RETURN (STATUS (...))``.
    """

    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    return_status: tuple[str, ...] | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    """LSUB (IMAP4rev1)."""

    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    """NAMESPACE (RFC 2342)."""


@dataclass(frozen=True, slots=True)
class Status(Command):
    """STATUS; items upper-cased."""

    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND, emitted after all message literals were streamed as events."""

    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """IDLE (RFC 2177); the shell then calls ``CommandParser.expect_idle_done``."""


@dataclass(frozen=True, slots=True)
class Check(Command):
    """CHECK (IMAP4rev1)."""


@dataclass(frozen=True, slots=True)
class Close(Command):
    """CLOSE."""


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    """UNSELECT."""


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE (RFC 4315) when ``uids`` is set."""

    uids: NumSet | None = None


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH.

    ``return_options`` is None without a RETURN clause (plain ``* SEARCH`` reply),
    else the ESEARCH options upper-cased (empty tuple means ``ALL``, RFC 4731 3.1).
    ``charset`` is None when absent. Strings are decoded with that charset when
    Python knows it, else as Latin-1 and the server must answer NO [BADCHARSET].
    """

    uid: bool
    key: SearchKey
    charset: str | None = None
    return_options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """FETCH / UID FETCH with CHANGEDSINCE/VANISHED modifiers (RFC 7162)."""

    uid: bool
    numbers: NumSet
    attributes: tuple[FetchAtt, ...]
    changedsince: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store(Command):
    """STORE / UID STORE; ``mode`` is ``"+"``, ``"-"`` or ``""`` (replace)."""

    uid: bool
    numbers: NumSet
    mode: str
    silent: bool
    flags: tuple[str, ...]
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Command):
    """COPY / UID COPY."""

    uid: bool
    numbers: NumSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Move(Command):
    """MOVE / UID MOVE (RFC 6851)."""

    uid: bool
    numbers: NumSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """GETQUOTA (RFC 9208)."""

    root: str


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """GETQUOTAROOT (RFC 9208)."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """SETQUOTA (RFC 9208); resource names upper-cased."""

    root: str
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Id(Command):
    """ID (RFC 2971); ``params`` None for ``ID NIL``."""

    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """SORT (RFC 5256); parsed so it can be answered, not necessarily supported."""

    uid: bool
    criteria: tuple[str, ...]
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """THREAD (RFC 5256); parsed so it can be answered, not necessarily supported."""

    uid: bool
    algorithm: str
    charset: str
    key: SearchKey
