"""Per-connection IMAP session state; implements :class:`app.imap.context.CommandContext`.

The shell (:mod:`app.imap.server`) owns one :class:`Session` per connection. It
holds the protocol state (not authenticated, authenticated, selected, logout),
the enabled extensions, the selected mailbox's :class:`MailboxView`, and the
responses of the command being handled, which the shell writes in one go.

Changes made by other sessions (and SMTP delivery) arrive through the store's
:class:`~app.store.Subscription`, taken while a mailbox is selected. They are
turned into untagged responses by :meth:`Session.sync`, which the shell calls
before each tagged reply and while idling. Expunges are held back during
sequence-number FETCH, STORE and SEARCH (RFC 9051 7.5.1).

``\\Recent`` (IMAP4rev1 only): the first session that selects a mailbox read-write
after a message arrived, or that has it selected when it arrives, sees it as
recent (RFC 3501 2.3.2). The marks are kept in memory per server (see
:class:`SharedState`), so after a restart nothing is recent until new mail arrives.
mox does not implement ``\\Recent`` at all; this is the cheap approximation.
"""

import asyncio
import bisect
import enum
import itertools
import logging
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from app.auth.base import ChannelBinding
from app.auth.sasl import LOGIN, PLAIN, mechanisms_for
from app.imap import protocol as p
from app.imap.context import MailboxView
from app.imap.errors import IMAPBad
from app.imap.parser import AuthLine
from app.store import (
    AccountStore,
    Change,
    FlagsChanged,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessagesExpunged,
    Subscription,
)
from app.store.account import UID_TYPECODE
from app.store.types import Flag

if TYPE_CHECKING:
    from app.imap.cmd_append import AppendState
    from app.services import Services

log = logging.getLogger(__name__)

SYSTEM_FLAG_ORDER = (Flag.SEEN, Flag.ANSWERED, Flag.FLAGGED, Flag.DELETED, Flag.DRAFT)
PERMANENT_FLAGS = (*[f.value for f in SYSTEM_FLAG_ORDER], "\\*")
FLUSH_AT = 64 * 1024  # untagged output beyond this goes to the transport at once


class State(enum.StrEnum):
    """RFC 9051 3: connection states."""

    NOT_AUTHENTICATED = "not-authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class SessionOverflow(Exception):
    """Too many changes were missed to keep the client in sync: close with BYE."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler returns for the tagged OK: text and optional response code."""

    text: str
    code: p.Code | None = None


@dataclass
class SharedState:
    """IMAP state shared by all IMAP listeners of one server (one per :class:`Services`).

    Connection and failed-login limits are the server-wide ones on ``Services``.
    """

    # (account, mailbox id) -> lowest UID not yet seen as \Recent by any session.
    # The mark is updated in place: a new int per SELECT or arrival would leave the
    # one made during the last command of a burst among that burst's freed objects,
    # where it alone keeps an allocator arena (1 MiB) from being returned. The same
    # goes for the connection counter, which holds no int object between calls.
    _recent_marks: dict[tuple[str, int], "array[int]"] = field(default_factory=dict)
    _cids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def new_cid(self) -> str:
        return f"i{next(self._cids):x}"

    def recent_mark(self, account: str, mailbox_id: int) -> int | None:
        """Lowest UID of the mailbox no session has seen as \\Recent; None until a
        session selected it."""
        mark = self._recent_marks.get((account, mailbox_id))
        return None if mark is None else mark[0]

    def set_recent_mark(self, account: str, mailbox_id: int, uid: int) -> None:
        """Note that no UID below ``uid`` is \\Recent for another session."""
        mark = self._recent_marks.get((account, mailbox_id))
        if mark is None:
            self._recent_marks[(account, mailbox_id)] = array("Q", (uid,))
        else:
            mark[0] = uid


class ConnectionIO(Protocol):
    """What the shell offers handlers that need the connection itself."""

    async def sasl_exchange(self, challenge: bytes) -> AuthLine:
        """Send ``+ <base64>`` and return the client's next line."""

    async def start_tls(self) -> None:
        """Upgrade the connection after ``OK`` was queued (STARTTLS)."""

    async def idle(self, tag: str) -> None:
        """Run an IDLE exchange until ``DONE`` (RFC 2177)."""

    async def drain(self) -> None:
        """Write queued output and wait until the transport accepts more."""

    def flush(self) -> None:
        """Hand queued output to the transport now."""


def flags_text(flags: Iterable[Flag], keywords: Iterable[str], recent: bool = False) -> bytes:
    """A FLAGS list in a stable order: system flags, ``\\Recent``, then keywords."""
    have = set(flags)
    words = [f.value for f in SYSTEM_FLAG_ORDER if f in have]
    if recent:
        words.append("\\Recent")
    words += sorted(keywords)
    return p.flag_list(words)


def imap_name(stored: str) -> str:
    """Store name -> IMAP name: the store keeps ``Inbox``, IMAP says ``INBOX``."""
    if stored == "Inbox":
        return "INBOX"
    if stored.startswith("Inbox/"):
        return "INBOX" + stored[5:]
    return stored


class Session:
    """One connection's IMAP state (see the module docstring)."""

    def __init__(
        self,
        services: "Services",
        shared: SharedState,
        io: ConnectionIO,
        *,
        cid: str,
        remote_ip: str,
        listener: str,
        tls: bool,
        tls_available: bool,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.services = services
        self.shared = shared
        self.io = io
        self.cid = cid
        self.remote_ip = remote_ip
        self.listener = listener
        self.tls = tls
        self.tls_available = tls_available  # STARTTLS possible on this listener
        lst = services.config.listeners.get(listener)
        self.auth_without_tls = bool(lst and lst.auth_without_tls)
        self.channel_binding: ChannelBinding | None = None
        self.log = logger
        self.state = State.NOT_AUTHENTICATED
        self.account = ""
        self.auth_failures = 0
        self._store: AccountStore | None = None
        self._view: MailboxView | None = None
        self._sub: Subscription | None = None
        self._pending: deque[Change] = deque()
        self._exists_sent = 0
        self._recent_sent = 0
        self.recent: set[int] = set()
        self.own_modseqs: set[int] = set()
        self.enabled: set[str] = set()
        self._condstore = False
        self._searchres: list[int] = []
        self.out = bytearray()
        self.append_state: AppendState | None = None

    # --- CommandContext -------------------------------------------------------

    @property
    def store(self) -> AccountStore:
        assert self._store is not None, "not authenticated"
        return self._store

    @property
    def view(self) -> MailboxView:
        if self._view is None:
            raise IMAPBad("no mailbox selected")
        return self._view

    @property
    def utf8(self) -> bool:
        return "UTF8=ACCEPT" in self.enabled or "IMAP4REV2" in self.enabled

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def condstore(self) -> bool:
        return self._condstore

    def enable_condstore(self) -> None:
        self._condstore = True

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def searchres(self) -> list[int]:
        return self._searchres

    def set_searchres(self, uids: list[int]) -> None:
        self._searchres = list(uids)

    def untagged(self, line: bytes) -> None:
        self.out += line
        self.out += p.CRLF
        if len(self.out) > FLUSH_AT:
            self.io.flush()  # large FETCH: keep our own buffer small

    def untagged_block(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > FLUSH_AT:
            self.io.flush()

    async def drain(self) -> None:
        """Flush and wait until the client reads (for handlers producing much output)."""
        await self.io.drain()

    # --- beyond the contract --------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue complete response bytes (CRLF included)."""
        self.out += data

    def builder(self) -> p.ResponseBuilder:
        return p.ResponseBuilder(utf8=self.utf8)

    def emit(self, b: p.ResponseBuilder) -> None:
        self.out += b.getvalue()

    def is_recent(self, uid: int) -> bool:
        """Whether ``uid`` is ``\\Recent`` in this session (IMAP4rev1 FETCH/SEARCH)."""
        return uid in self.recent

    def mailbox_wire(self, stored: str) -> bytes:
        """The mailbox name as sent to this client (modified UTF-7 unless UTF-8 enabled)."""
        return p.mailbox(imap_name(stored), utf8=self.utf8)

    def authenticated(self, account: str, store: AccountStore) -> None:
        self.account = account
        self._store = store
        self.state = State.AUTHENTICATED

    @property
    def selected(self) -> bool:
        return self._view is not None

    def select(self, view: MailboxView, sub: Subscription, recent: set[int]) -> None:
        """Enter the selected state; ``view`` is what the client is about to be told."""
        self.deselect()
        self._view = view
        self._sub = sub
        self.recent = recent
        self._exists_sent = len(view.uids)
        self._recent_sent = len(recent)
        self.state = State.SELECTED

    def deselect(self) -> None:
        """Leave the selected state (CLOSE, UNSELECT, a failed SELECT)."""
        if self._sub is not None and self._store is not None:
            self._store.unsubscribe(self._sub)
        self._sub = None
        self._view = None
        self._pending.clear()
        self.own_modseqs.clear()
        self.recent = set()
        self._searchres = []
        if self.state == State.SELECTED:
            self.state = State.AUTHENTICATED

    def close(self) -> None:
        """Connection ends: drop the subscription."""
        self.deselect()
        self.state = State.LOGOUT

    # --- pending changes ------------------------------------------------------------

    async def wait_change(self) -> None:
        """Wait until a change arrives for this session (IDLE); returns at once if any."""
        sub = self._sub
        if sub is None or self._pending:
            if sub is None:
                await asyncio.Event().wait()  # nothing can arrive: wait until cancelled
            return
        try:
            self._pending.append(await sub.get())
        except StopAsyncIteration:
            raise SessionOverflow("store closed") from None
        except Exception as e:  # SubscriptionOverflow
            raise SessionOverflow(str(e)) from None

    def sync(self, *, expunges: bool = True) -> None:
        """Turn pending changes of the selected mailbox into untagged responses."""
        sub = self._sub
        if sub is None:
            return
        if sub.overflowed:
            raise SessionOverflow("too many changes")
        if sub.closed and not sub.pending():
            raise SessionOverflow("store closed")
        self._pending.extend(sub.drain())
        while self._pending and self._view is not None:
            ch = self._pending[0]
            mine = isinstance(ch, MessagesExpunged) and ch.mailbox_id == self._view.mailbox_id
            if mine and not expunges:
                break
            self._pending.popleft()
            self._apply(ch)
        self.announce()

    def announce(self) -> None:
        """Send EXISTS (and RECENT for rev1) when the view grew since the client heard."""
        view = self._view
        if view is None:
            return
        if len(view.uids) != self._exists_sent:
            self._exists_sent = len(view.uids)
            self.untagged(b"* %d EXISTS" % len(view.uids))
            if not self.rev2 and len(self.recent) != self._recent_sent:
                self._recent_sent = len(self.recent)
                self.untagged(b"* %d RECENT" % len(self.recent))

    def _apply(self, ch: Change) -> None:
        view = self._view
        assert view is not None
        if isinstance(ch, MessageAdded):
            if ch.mailbox_id == view.mailbox_id and (not view.uids or ch.uid > view.uids[-1]):
                view.uids.append(ch.uid)
                self._claim_recent(view, ch.uid)
        elif isinstance(ch, FlagsChanged):
            if ch.mailbox_id == view.mailbox_id:
                self._flags_changed(view, ch)
        elif isinstance(ch, MessagesExpunged):
            if ch.mailbox_id == view.mailbox_id:
                self.expunged(ch.uids)
        elif isinstance(ch, MailboxRenamed):
            if ch.mailbox_id == view.mailbox_id:
                view.name = ch.new_name
        elif isinstance(ch, MailboxDeleted) and ch.mailbox_id == view.mailbox_id:
            self.deselect()

    def _claim_recent(self, view: MailboxView, uid: int) -> None:
        if view.readonly:
            return
        mark = self.shared.recent_mark(self.account, view.mailbox_id) or 0
        if uid >= mark:
            self.recent.add(uid)
            self.shared.set_recent_mark(self.account, view.mailbox_id, uid + 1)

    def _flags_changed(self, view: MailboxView, ch: FlagsChanged) -> None:
        own = self.own_modseqs
        if own:
            # Changes arrive in commit order: older own modseqs can no longer match.
            mine = ch.modseq in own
            self.own_modseqs = {m for m in own if m >= ch.modseq}
            if mine:
                return
        seq = view.seq_of(ch.uid)
        if seq is None:
            return
        self.announce()
        items = b"UID %d FLAGS " % ch.uid + flags_text(
            ch.flags, ch.keywords, not self.rev2 and ch.uid in self.recent
        )
        if self._condstore:
            items += b" MODSEQ (%d)" % ch.modseq
        self.untagged(b"* %d FETCH (" % seq + items + b")")

    def expunged(self, gone: Iterable[int]) -> None:
        """Remove UIDs from the view and tell the client (EXPUNGE or VANISHED)."""
        view = self.view
        present = sorted({u for u in gone if view.seq_of(u) is not None})
        if not present:
            return
        self.announce()
        if self.qresync:
            # RFC 7162 3.2.10: VANISHED replaces EXPUNGE once QRESYNC is enabled.
            self.untagged(b"* VANISHED " + p.number_set(present))
        else:
            # Highest first: removing a message never renumbers the lower ones.
            for u in reversed(present):
                seq = bisect.bisect_left(view.uids, u) + 1
                self.untagged(b"* %d EXPUNGE" % seq)
        drop = set(present)
        view.uids = array(UID_TYPECODE, (u for u in view.uids if u not in drop))
        self.recent -= drop
        self._recent_sent = min(self._recent_sent, len(self.recent))
        self._exists_sent = len(view.uids)

    # --- capabilities ----------------------------------------------------------------

    def capabilities(self) -> list[str]:
        """CAPABILITY for this connection's state (RFC 9051 6.1.1)."""
        limit = self.services.config.limits.max_message_size
        caps = [
            "IMAP4rev2",
            "IMAP4rev1",
            "ENABLE",
            "LITERAL+",
            "IDLE",
            "SASL-IR",
            "BINARY",
            "UNSELECT",
            "UIDPLUS",
            "ESEARCH",
            "SEARCHRES",
            "MOVE",
            "UTF8=ACCEPT",
            "LIST-EXTENDED",
            "SPECIAL-USE",
            "LIST-STATUS",
        ]
        if self.state == State.NOT_AUTHENTICATED:
            caps += [f"AUTH={m}" for m in self.mechanisms()]
            if self.tls_available and not self.tls:
                caps.append("STARTTLS")
            caps.append("AUTH=PLAIN" if self.plaintext_auth else "LOGINDISABLED")
        caps += [
            "ID",
            f"APPENDLIMIT={limit}",
            "CONDSTORE",
            "QRESYNC",
            "STATUS=SIZE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "NAMESPACE",
            "CREATE-SPECIAL-USE",
        ]
        return caps

    @property
    def plaintext_auth(self) -> bool:
        """LOGIN and AUTHENTICATE PLAIN are allowed: with TLS, or where the listener
        allows password logins without it (auth_without_tls)."""
        return self.tls or self.auth_without_tls

    def mechanisms(self) -> list[str]:
        """SASL mechanisms offered besides PLAIN (which needs TLS, as mox)."""
        cb = self.channel_binding is not None
        return [m for m in mechanisms_for(self.tls, cb, False) if m not in (PLAIN, LOGIN)]
