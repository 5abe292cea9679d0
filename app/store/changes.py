"""Change notifications: what committed, delivered to every subscriber in commit order.

A committer calls :meth:`Broadcaster.publish` on the event loop after a batch
committed, so subscribers never see a change that could still roll back. Publishing
never blocks: each subscriber has a bounded buffer; a subscriber that falls behind
by more than its limit is marked ``overflowed``, its buffer is dropped, and reading
raises :class:`SubscriptionOverflow` until it calls :meth:`Subscription.reset`. An
IMAP session reacts by resynchronising the selected mailbox from the store (or
with ``BYE`` if it cannot), which is what RFC 9051 allows a server to do when it
cannot report changes any more.
"""

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from app.store.errors import SubscriptionOverflow
from app.store.types import Flag, SpecialUse


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message appeared in a mailbox (delivery, APPEND, COPY, MOVE destination)."""

    mailbox_id: int
    uid: int
    modseq: int
    flags: frozenset[Flag]
    keywords: frozenset[str]
    size: int


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    """Flags or keywords of a message changed."""

    mailbox_id: int
    uid: int
    modseq: int
    flags: frozenset[Flag]
    keywords: frozenset[str]


@dataclass(frozen=True, slots=True)
class MessagesExpunged:
    """Messages left a mailbox (EXPUNGE, MOVE source, mailbox delete not included)."""

    mailbox_id: int
    uids: tuple[int, ...]
    modseq: int


@dataclass(frozen=True, slots=True)
class MailboxCreated:
    """A mailbox was created."""

    mailbox_id: int
    name: str
    special_use: SpecialUse | None


@dataclass(frozen=True, slots=True)
class MailboxDeleted:
    """A mailbox and all its messages were removed."""

    mailbox_id: int
    name: str


@dataclass(frozen=True, slots=True)
class MailboxRenamed:
    """A mailbox got a new name (one change per renamed mailbox, children included)."""

    mailbox_id: int
    old_name: str
    new_name: str


@dataclass(frozen=True, slots=True)
class SubscriptionChanged:
    """A name was subscribed or unsubscribed (RFC 9051 LSUB/LIST SUBSCRIBED)."""

    name: str
    subscribed: bool


Change = (
    MessageAdded
    | FlagsChanged
    | MessagesExpunged
    | MailboxCreated
    | MailboxDeleted
    | MailboxRenamed
    | SubscriptionChanged
)


class Subscription:
    """One subscriber's bounded queue of changes; an async iterator.

    Only the event loop touches it. ``async for change in sub`` waits for changes;
    :meth:`drain` takes what is buffered without waiting (IMAP sends pending
    untagged responses after each command).
    """

    __slots__ = ("_buf", "_closed", "_limit", "_overflowed", "_wakeup")

    def __init__(self, limit: int) -> None:
        self._buf: deque[Change] = deque()
        self._limit = limit
        self._overflowed = False
        self._closed = False
        self._wakeup = asyncio.Event()

    @property
    def overflowed(self) -> bool:
        """Whether changes were dropped since the last :meth:`reset`."""
        return self._overflowed

    @property
    def closed(self) -> bool:
        """Whether the subscription ended (unsubscribed or the store closed)."""
        return self._closed

    def pending(self) -> int:
        """Number of buffered changes."""
        return len(self._buf)

    def reset(self) -> None:
        """Clear the overflow mark after the subscriber resynchronised."""
        self._overflowed = False
        self._buf.clear()

    def drain(self) -> list[Change]:
        """Take all buffered changes without waiting; raises if overflowed."""
        if self._overflowed:
            raise SubscriptionOverflow(self._limit)
        out = list(self._buf)
        self._buf.clear()
        self._wakeup.clear()
        return out

    async def get(self) -> Change:
        """Wait for the next change; raises StopAsyncIteration once closed and empty."""
        while True:
            if self._overflowed:
                raise SubscriptionOverflow(self._limit)
            if self._buf:
                return self._buf.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Change:
        return await self.get()

    def _push(self, changes: Iterable[Change]) -> None:
        if self._closed or self._overflowed:
            return
        self._buf.extend(changes)
        if len(self._buf) > self._limit:
            # Dropping silently would desynchronise the IMAP session; tell it instead.
            self._overflowed = True
            self._buf.clear()
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()


class Broadcaster:
    """The set of subscribers of one account."""

    __slots__ = ("_limit", "_subs")

    def __init__(self, limit: int) -> None:
        self._subs: list[Subscription] = []
        self._limit = limit

    def subscribe(self) -> Subscription:
        """Add a subscriber; it sees changes committed from now on."""
        sub = Subscription(self._limit)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscriber and end its iteration."""
        if sub in self._subs:
            self._subs.remove(sub)
        sub._close()

    def publish(self, changes: list[Change]) -> None:
        """Hand committed changes to every subscriber; never blocks."""
        if not changes:
            return
        for sub in self._subs:
            sub._push(changes)

    def close(self) -> None:
        """End every subscription."""
        for sub in self._subs:
            sub._close()
        self._subs.clear()
