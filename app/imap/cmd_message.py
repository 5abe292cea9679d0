"""Message commands of the selected state: STORE, COPY, MOVE, EXPUNGE, CLOSE, UNSELECT.

Every write goes through the store and returns after commit; only then are
responses queued (never a socket write under an account lock). The store also
publishes each change to every session, this one included: changes this session
already reported are recognised by their modseq (STORE) or because the UIDs are
no longer in the view (EXPUNGE, MOVE).
"""

from collections.abc import Sequence

from app.imap import protocol as p
from app.imap.commands import Close, Copy, Expunge, Move, Store, Unselect
from app.imap.context import resolve_uids
from app.imap.errors import IMAPNo
from app.imap.session import Reply, Session, flags_text
from app.store import FlagUpdate, Mailbox, MailboxNotFound


def _writable(s: Session) -> None:
    if s.view.readonly:
        raise IMAPNo("mailbox is read-only", "READ-ONLY")


def _dest(s: Session, name: str) -> Mailbox:
    try:
        return s.store.mailbox(name)
    except MailboxNotFound:
        raise IMAPNo("no such mailbox", "TRYCREATE") from None  # RFC 9051 6.4.7


async def store(s: Session, cmd: Store) -> Reply | None:
    """RFC 9051 6.4.6; UNCHANGEDSINCE and MODIFIED (RFC 7162 3.1.3)."""
    _writable(s)
    view = s.view
    uids = resolve_uids(s, cmd.numbers, cmd.uid)
    if cmd.unchangedsince is not None:
        s.enable_condstore()
    if not uids:
        return None
    flags = list(cmd.flags)
    store = s.store
    if cmd.mode == "+":
        res = await store.set_flags(
            view.mailbox_id, uids, add=flags, unchanged_since=cmd.unchangedsince
        )
    elif cmd.mode == "-":
        res = await store.set_flags(
            view.mailbox_id, uids, remove=flags, unchanged_since=cmd.unchangedsince
        )
    else:
        res = await store.set_flags(
            view.mailbox_id, uids, replace=flags, unchanged_since=cmd.unchangedsince
        )
    s.own_modseqs.update(c.modseq for c in res.changed)
    await _store_responses(s, cmd, uids, res.changed, set(res.modified))
    if res.modified:
        nums = list(res.modified) if cmd.uid else [view.seq_of(u) or 0 for u in res.modified]
        return Reply("conditional STORE failed for some messages", p.modified(nums))
    return None


async def _store_responses(
    s: Session, cmd: Store, uids: Sequence[int], changed: tuple[FlagUpdate, ...], modified: set[int]
) -> None:
    view = s.view
    modseq = s.condstore
    if cmd.silent:
        if cmd.unchangedsince is None:
            return
        # RFC 7162 3.1.3: MODSEQ of changed messages even with .SILENT.
        for u in changed:
            seq = view.seq_of(u.uid)
            if seq is not None:
                s.untagged(b"* %d FETCH (UID %d MODSEQ (%d))" % (seq, u.uid, u.modseq))
        return
    updates = {u.uid: (u.flags, u.keywords, u.modseq) for u in changed}
    rest = [u for u in uids if u not in updates and u not in modified]
    if rest:
        for m in await s.store.messages(view.mailbox_id, rest):
            updates[m.uid] = (m.flags, m.keywords, m.modseq)
    for uid in sorted(updates):
        seq = view.seq_of(uid)
        if seq is None:
            continue
        fl, kw, ms = updates[uid]
        line = b"* %d FETCH (UID %d FLAGS " % (seq, uid)
        line += flags_text(fl, kw, not s.rev2 and uid in s.recent)
        if modseq:
            line += b" MODSEQ (%d)" % ms
        s.untagged(line + b")")


async def copy(s: Session, cmd: Copy) -> Reply | None:
    """RFC 9051 6.4.7 with COPYUID (RFC 4315 3)."""
    view = s.view
    uids = resolve_uids(s, cmd.numbers, cmd.uid)
    dest = _dest(s, cmd.mailbox)
    if not uids:
        return None
    res = await s.store.copy(view.mailbox_id, uids, dest.id)
    if not res.uids:
        raise IMAPNo("messages were expunged meanwhile", "EXPUNGEISSUED")
    src, dst = [a for a, _ in res.uids], [b for _, b in res.uids]
    return Reply("COPY done", p.copyuid(res.uidvalidity, src, dst))


async def move(s: Session, cmd: Move) -> Reply | None:
    """RFC 6851: COPYUID in an untagged OK, then the expunges."""
    _writable(s)
    view = s.view
    uids = resolve_uids(s, cmd.numbers, cmd.uid)
    dest = _dest(s, cmd.mailbox)
    if dest.id == view.mailbox_id:
        raise IMAPNo("cannot move to the selected mailbox", "CANNOT")
    if not uids:
        return None
    res = await s.store.move(view.mailbox_id, uids, dest.id)
    if not res.uids:
        raise IMAPNo("messages were expunged meanwhile", "EXPUNGEISSUED")
    src, dst = [a for a, _ in res.uids], [b for _, b in res.uids]
    s.untagged(b"* OK " + p.copyuid(res.uidvalidity, src, dst).render() + b" moved")
    s.expunged(src)
    return None


async def expunge(s: Session, cmd: Expunge) -> Reply | None:
    """RFC 9051 6.4.3; UID EXPUNGE (RFC 4315 2.1); VANISHED with QRESYNC."""
    _writable(s)
    view = s.view
    uids = list(view.uids) if cmd.uids is None else resolve_uids(s, cmd.uids, True)
    if not uids:
        return None
    res = await s.store.expunge(view.mailbox_id, uids)
    s.expunged(res.uids)
    if s.qresync and res.modseq:
        return Reply("EXPUNGE done", p.highestmodseq(res.modseq))  # RFC 7162 3.2.10
    return None


async def close(s: Session, cmd: Close) -> Reply | None:
    """RFC 9051 6.4.1: expunge silently unless read-only, then leave the mailbox."""
    view = s.view
    if not view.readonly and view.uids:
        await s.store.expunge(view.mailbox_id, list(view.uids))
    s.deselect()
    return None


async def unselect(s: Session, cmd: Unselect) -> Reply | None:
    """RFC 3691: leave the mailbox without expunging."""
    s.deselect()
    return None
