"""Values the store hands out: mailboxes, messages, flags, delivery results.

Everything here is an immutable value; callers never get a live database row.
"""

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from app.store.errors import InvalidFlag


class Flag(enum.StrEnum):
    """IMAP system flags (RFC 9051 2.3.2). Keywords are plain lower-case strings."""

    SEEN = "\\Seen"
    ANSWERED = "\\Answered"
    FLAGGED = "\\Flagged"
    DELETED = "\\Deleted"
    DRAFT = "\\Draft"


# Bit per system flag in the ``flags`` column; a bit mask keeps counts cheap to update.
FLAG_BITS: dict[Flag, int] = {
    Flag.SEEN: 1,
    Flag.ANSWERED: 2,
    Flag.FLAGGED: 4,
    Flag.DELETED: 8,
    Flag.DRAFT: 16,
}
SEEN_BIT = FLAG_BITS[Flag.SEEN]
DELETED_BIT = FLAG_BITS[Flag.DELETED]
_BY_LOWER = {f.value.lower(): f for f in Flag}

# RFC 9051 atom characters minus the ones that cannot appear in a flag keyword.
_KEYWORD = re.compile(r"^[!#$&'+,\-.0-9:;<=>?@A-Z^_`a-z|~]{1,200}$")


class SpecialUse(enum.StrEnum):
    """RFC 6154 special-use attributes a mailbox may carry."""

    SENT = "\\Sent"
    ARCHIVE = "\\Archive"
    TRASH = "\\Trash"
    DRAFTS = "\\Drafts"
    JUNK = "\\Junk"


# Created with every new account (as mox's default initial mailboxes).
DEFAULT_MAILBOXES: tuple[tuple[str, SpecialUse | None], ...] = (
    ("Inbox", None),
    ("Sent", SpecialUse.SENT),
    ("Archive", SpecialUse.ARCHIVE),
    ("Trash", SpecialUse.TRASH),
    ("Drafts", SpecialUse.DRAFTS),
    ("Junk", SpecialUse.JUNK),
)


def flags_to_bits(flags: Iterable[Flag]) -> int:
    """Bit mask for a set of system flags."""
    bits = 0
    for f in flags:
        bits |= FLAG_BITS[Flag(f)]
    return bits


def bits_to_flags(bits: int) -> frozenset[Flag]:
    """System flags set in a bit mask."""
    return frozenset(f for f, b in FLAG_BITS.items() if bits & b)


def normalize_keyword(kw: str) -> str:
    """Lower-case keyword; keywords are case-insensitive (RFC 9051 2.3.2), stored lower."""
    if not _KEYWORD.match(kw):
        raise InvalidFlag(kw)
    return kw.lower()


def split_flags(words: Iterable[str]) -> tuple[int, frozenset[str]]:
    """Split IMAP flag words into a system-flag bit mask and normalised keywords.

    Words starting with a backslash must be system flags (``\\Recent`` and unknown
    ones are rejected); everything else is a keyword.
    """
    bits = 0
    kws: set[str] = set()
    for w in words:
        if w.startswith("\\"):
            f = _BY_LOWER.get(w.lower())
            if f is None:
                raise InvalidFlag(w)
            bits |= FLAG_BITS[f]
        else:
            kws.add(normalize_keyword(w))
    return bits, frozenset(kws)


def keywords_to_text(kws: Iterable[str]) -> str:
    """Column text for keywords: sorted, space separated."""
    return " ".join(sorted(kws))


def text_to_keywords(text: str) -> frozenset[str]:
    """Inverse of :func:`keywords_to_text`."""
    return frozenset(text.split()) if text else frozenset()


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mailbox with its IMAP synchronisation state and counts."""

    id: int
    name: str  # "/"-separated hierarchy, Unicode (NFC); "Inbox" for INBOX
    uidvalidity: int
    uidnext: int
    highest_modseq: int  # highest modseq of any change in this mailbox
    special_use: SpecialUse | None
    total: int  # messages, including those flagged \Deleted (IMAP EXISTS)
    unseen: int  # messages without \Seen
    deleted: int  # messages with \Deleted
    size: int  # sum of stored sizes


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """Metadata of one stored message (no content)."""

    id: int  # stable for the life of the stored content, survives MOVE
    mailbox_id: int
    uid: int
    modseq: int
    createseq: int
    flags: frozenset[Flag]
    keywords: frozenset[str]
    received: datetime
    size: int  # stored size in bytes (after CRLF repair), equals on-disk size
    file: str | None  # relative path under msg/ when stored as a file, None when inline
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject_base: str
    date: datetime | None
    structure: str  # MIME structure JSON; "" unless requested

    @property
    def inline(self) -> bool:
        """Whether the content is stored in the database."""
        return self.file is None


@dataclass(frozen=True, slots=True)
class Delivered:
    """Result of a durable delivery."""

    mailbox_id: int
    uid: int
    modseq: int
    size: int
    message_id: str


@dataclass(frozen=True, slots=True)
class FlagUpdate:
    """New flags of one message after :meth:`AccountStore.set_flags`."""

    uid: int
    modseq: int
    flags: frozenset[Flag]
    keywords: frozenset[str]


@dataclass(frozen=True, slots=True)
class FlagsResult:
    """Outcome of a STORE: changed messages and, for UNCHANGEDSINCE, the refused ones."""

    changed: tuple[FlagUpdate, ...]
    modified: tuple[int, ...]  # RFC 7162 3.1.3 MODIFIED: uids changed since the given modseq


@dataclass(frozen=True, slots=True)
class Expunged:
    """Outcome of an expunge."""

    mailbox_id: int
    uids: tuple[int, ...]
    modseq: int  # 0 when nothing was expunged


@dataclass(frozen=True, slots=True)
class Copied:
    """Outcome of a COPY or MOVE, enough for the RFC 4315 COPYUID response."""

    mailbox_id: int  # destination
    uidvalidity: int
    uids: tuple[tuple[int, int], ...]  # (source uid, destination uid), source order
    modseq: int  # 0 when nothing was copied


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """Account storage: ``limit`` None means unlimited."""

    limit: int | None
    usage: int  # bytes: sum of stored sizes of all messages in all mailboxes
    messages: int
