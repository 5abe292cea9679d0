"""What a command handler sees of its IMAP session.

The session (``app.imap.session``) implements :class:`CommandContext`; command
modules such as ``fetch`` and ``search`` are written against this protocol only, so
they can be tested with a small stand-in and never reach into the shell.
"""

import bisect
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.imap.commands import NumSet
from app.imap.errors import IMAPBad
from app.store.account import UID_TYPECODE, AccountStore


@dataclass
class MailboxView:
    """The selected mailbox as this session sees it.

    ``uids[i]`` is the UID of message sequence number ``i + 1``. The view changes
    only when the session tells the client (EXISTS, EXPUNGE/VANISHED), never behind
    its back, so sequence numbers stay stable between untagged responses.

    The UIDs are a C array of 4 bytes each rather than a list of int objects
    (~40 bytes each): every session keeps its view for as long as a mailbox is
    selected, and eight clients on a mailbox of 5,000 messages held 1.6 MiB of
    small objects that way, spread over the allocator's arenas.
    """

    mailbox_id: int
    name: str
    uidvalidity: int
    uids: "array[int]" = field(default_factory=lambda: array(UID_TYPECODE))
    readonly: bool = False

    def seq_of(self, uid: int) -> int | None:
        """Sequence number of ``uid`` or None (binary search: ``uids`` is ascending)."""
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, numbers: NumSet, uid: bool, saved: Iterable[int] = ()) -> Sequence[int]:
        """UIDs (ascending, in the view) named by a sequence or UID set (RFC 9051 9).

        ``*`` is the last message (its UID for UID sets), ``$`` the saved search
        result (RFC 5182), given as ``saved``. A sequence number beyond the mailbox
        is a client error (BAD); UIDs that do not exist are ignored (RFC 9051 6.4.8).
        """
        uids = self.uids
        if numbers.saved:
            return sorted(set(saved).intersection(uids))
        parts: list[Sequence[int]] = []
        if uid:
            largest = uids[-1] if uids else 0
            for r in numbers.ranges:
                low, high = r.bounds(largest)
                parts.append(uids[bisect.bisect_left(uids, low) : bisect.bisect_right(uids, high)])
        else:
            n = len(uids)
            for r in numbers.ranges:
                if n == 0:
                    raise IMAPBad("mailbox is empty: no message sequence numbers")
                low, high = r.bounds(n)
                if low < 1 or high > n:
                    raise IMAPBad("message sequence number out of range")
                parts.append(uids[low - 1 : high])
        if len(parts) == 1:
            return parts[0]  # one range of the view: already ascending, no duplicates
        return sorted({u for part in parts for u in part})


class CommandContext(Protocol):
    """The session state a command handler may use."""

    @property
    def store(self) -> AccountStore:
        """The account's store."""

    @property
    def view(self) -> MailboxView:
        """The selected mailbox; handlers for selected-state commands only."""

    @property
    def utf8(self) -> bool:
        """UTF8=ACCEPT or IMAP4rev2 enabled: strings may be raw UTF-8."""

    @property
    def rev2(self) -> bool:
        """IMAP4rev2 enabled (affects FETCH/SEARCH details such as \\Recent)."""

    @property
    def condstore(self) -> bool:
        """CONDSTORE enabled (explicitly or by a CONDSTORE-using command)."""

    @property
    def qresync(self) -> bool:
        """QRESYNC enabled (RFC 7162 3.2: VANISHED in UID FETCH, MODSEQ implied)."""

    def is_recent(self, uid: int) -> bool:
        """Whether the message is ``\\Recent`` in this session (RFC 3501 2.3.2); the
        caller asks only in IMAP4rev1 sessions (IMAP4rev2 has no ``\\Recent``)."""

    def enable_condstore(self) -> None:
        """Mark CONDSTORE as enabled (RFC 7162 3.1: MODSEQ in FETCH, CHANGEDSINCE...)."""

    @property
    def searchres(self) -> list[int]:
        """UIDs saved by the last SEARCH ... RETURN (SAVE) (RFC 5182), for ``$``."""

    def set_searchres(self, uids: list[int]) -> None:
        """Replace the saved search result."""

    def untagged(self, line: bytes) -> None:
        """Queue one untagged response (``b"* 3 FETCH (...)"`` without CRLF, or with
        literals embedded as rendered by ``app.imap.protocol``); written in order before
        the tagged reply."""

    def untagged_block(self, data: bytes) -> None:
        """Queue several untagged responses at once, each already ending in CRLF
        (``b"* 1 FETCH (UID 1)\\r\\n* 2 FETCH (UID 2)\\r\\n"``); in order with
        :meth:`untagged`."""


def resolve_uids(ctx: CommandContext, numbers: NumSet, uid: bool) -> Sequence[int]:
    """UIDs (ascending, in the selected mailbox) named by a sequence or UID set,
    ``$`` being the context's saved search result (:meth:`MailboxView.resolve`)."""
    return ctx.view.resolve(numbers, uid, ctx.searchres)
