"""Write operations of an account, run by the committer inside a batch transaction.

Each function takes the write connection, runs in the executor thread within its
own SAVEPOINT, and returns an :class:`Outcome`; raising rolls back that operation
only. Counts (per mailbox and the account's quota usage) are updated in the same
statements as the rows they count, so they are exact at every commit.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from app.store import fts
from app.store.changes import (
    Change,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessagesExpunged,
    SubscriptionChanged,
)
from app.store.committer import Outcome
from app.store.content import MessageFiles, Prepared
from app.store.errors import (
    MailboxExists,
    MailboxHasChildren,
    MailboxNotAllowed,
    MailboxNotFound,
    QuotaExceeded,
)
from app.store.names import INBOX, SEPARATOR, parents
from app.store.types import (
    DELETED_BIT,
    SEEN_BIT,
    Copied,
    Delivered,
    Expunged,
    FlagsResult,
    FlagUpdate,
    Mailbox,
    SpecialUse,
    bits_to_flags,
    keywords_to_text,
    text_to_keywords,
)

Row = tuple[Any, ...]


def rows(conn: apsw.Connection, sql: str, args: Sequence[Any] = ()) -> list[Row]:
    """All rows of a statement; exhausting the cursor ends the statement at once."""
    return conn.execute(sql, args).fetchall()


def one(conn: apsw.Connection, sql: str, args: Sequence[Any] = ()) -> Row | None:
    """The first row of a statement, or None."""
    r = rows(conn, sql, args)
    return r[0] if r else None


def _reserve_uids(conn: apsw.Connection, mailbox_id: int, n: int) -> int:
    """Take ``n`` UIDs of a mailbox (RFC 9051 2.3.1.1: ascending); returns the first."""
    r = one(
        conn,
        "UPDATE mailbox SET uidnext = uidnext + ? WHERE id = ? RETURNING uidnext - ?",
        (n, mailbox_id, n),
    )
    assert r is not None
    return int(r[0])


def next_modseq(conn: apsw.Connection) -> int:
    """Allocate the next account-wide modseq (as mox, one counter for all mailboxes)."""
    r = one(conn, "UPDATE account SET modseq = modseq + 1 RETURNING modseq")
    assert r is not None
    return int(r[0])


def mailbox_id(conn: apsw.Connection, name: str) -> int:
    """Id of a mailbox by stored name, or MailboxNotFound."""
    r = one(conn, "SELECT id FROM mailbox WHERE name = ?", (name,))
    if r is None:
        raise MailboxNotFound(name)
    return int(r[0])


def check_mailbox(conn: apsw.Connection, mbid: int) -> None:
    """Raise MailboxNotFound unless the mailbox id exists."""
    if one(conn, "SELECT 1 FROM mailbox WHERE id = ?", (mbid,)) is None:
        raise MailboxNotFound(f"#{mbid}")


def reserve_quota(conn: apsw.Connection, limit: int | None, size: int, count: int) -> None:
    """Add to the account usage, or raise QuotaExceeded if it would pass ``limit``.

    Runs inside the batch transaction, so concurrent deliveries see each other's
    usage and can never overshoot together.
    """
    if limit is None:
        conn.execute("UPDATE account SET usage = usage + ?, messages = messages + ?", (size, count))
        return
    r = one(
        conn,
        "UPDATE account SET usage = usage + ?1, messages = messages + ?2 "
        "WHERE usage + ?1 <= ?3 RETURNING usage",
        (size, count, limit),
    )
    if r is None:
        usage = one(conn, "SELECT usage FROM account")
        assert usage is not None
        raise QuotaExceeded(limit, int(usage[0]), size)


# --- messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A delivery request, content already prepared (inline or durable file)."""

    mailbox: str
    content: Prepared
    bits: int
    keywords: frozenset[str]
    received_us: int


def deliver(conn: apsw.Connection, quota: int | None, m: NewMessage) -> Outcome[Delivered]:
    """Insert one message; counts, uidnext, modseq and usage move with it."""
    mbid = mailbox_id(conn, m.mailbox)
    p = m.content
    reserve_quota(conn, quota, p.size, 1)
    modseq = next_modseq(conn)
    unseen = 0 if m.bits & SEEN_BIT else 1
    deleted = 1 if m.bits & DELETED_BIT else 0
    r = one(
        conn,
        "UPDATE mailbox SET uidnext = uidnext + 1, modseq = ?, total = total + 1, "
        "unseen = unseen + ?, deleted = deleted + ?, size = size + ? WHERE id = ? "
        "RETURNING uidnext - 1",
        (modseq, unseen, deleted, p.size, mbid),
    )
    assert r is not None
    uid = int(r[0])
    s = p.summary
    conn.execute(
        "INSERT INTO message (mailbox_id, uid, modseq, createseq, flags, keywords, received, "
        "size, file, message_id, in_reply_to, refs, subject_base, date, structure) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            mbid,
            uid,
            modseq,
            modseq,
            m.bits,
            keywords_to_text(m.keywords),
            m.received_us,
            p.size,
            p.file,
            s.message_id,
            " ".join(s.in_reply_to),
            " ".join(s.references),
            s.subject_base,
            s.date.isoformat() if s.date else None,
            s.structure,
        ),
    )
    msgid = conn.last_insert_rowid()
    if p.data is not None:
        conn.execute("INSERT INTO content (message_id, data) VALUES (?, ?)", (msgid, p.data))
    fts.add(conn, msgid, p.text)
    added = MessageAdded(mbid, uid, modseq, bits_to_flags(m.bits), m.keywords, p.size)
    return Outcome(Delivered(mbid, uid, modseq, p.size, s.message_id), [added])


def index_messages(conn: apsw.Connection, texts: Sequence[tuple[int, fts.IndexText]]) -> int:
    """Index messages that have no index row yet (stored before the index existed)."""
    n = 0
    for mid, text in texts:
        exists = one(conn, "SELECT 1 FROM message WHERE id = ?", (mid,))
        mapped = one(conn, "SELECT 1 FROM message_text WHERE message_id = ?", (mid,))
        if exists is not None and mapped is None:
            fts.add(conn, mid, text)
            n += 1
    return n


def _uid_filter(uids: Sequence[int] | None) -> tuple[str, list[Any]]:
    if uids is None:
        return "", []
    # json_each keeps one cached statement for any number of uids.
    return " AND uid IN (SELECT value FROM json_each(?))", [json.dumps(list(uids))]


@dataclass(frozen=True, slots=True)
class FlagChange:
    """A STORE request; ``replace`` wins over add/remove when set."""

    add_bits: int
    add_keywords: frozenset[str]
    remove_bits: int
    remove_keywords: frozenset[str]
    replace: tuple[int, frozenset[str]] | None
    unchanged_since: int | None

    def apply(self, bits: int, kws: frozenset[str]) -> tuple[int, frozenset[str]]:
        """New flags for a message that has ``bits`` and ``kws``."""
        if self.replace is not None:
            return self.replace
        return (bits | self.add_bits) & ~self.remove_bits, (
            kws | self.add_keywords
        ) - self.remove_keywords


def set_flags(
    conn: apsw.Connection, mbid: int, uids: Sequence[int] | None, ch: FlagChange
) -> Outcome[FlagsResult]:
    """Change flags; RFC 7162 3.1.3 UNCHANGEDSINCE refuses messages modified later."""
    check_mailbox(conn, mbid)
    where, args = _uid_filter(uids)
    found = rows(
        conn,
        "SELECT id, uid, flags, keywords, modseq FROM message WHERE mailbox_id = ?"
        + where
        + " ORDER BY uid",
        [mbid, *args],
    )
    modseq = 0
    changed: list[FlagUpdate] = []
    modified: list[int] = []
    d_unseen = d_deleted = 0
    for mid, uid, bits, kwtext, mseq in found:
        if ch.unchanged_since is not None and mseq > ch.unchanged_since:
            modified.append(uid)
            continue
        kws = text_to_keywords(kwtext)
        nbits, nkws = ch.apply(bits, kws)
        if nbits == bits and nkws == kws:
            continue
        if not modseq:
            modseq = next_modseq(conn)
        conn.execute(
            "UPDATE message SET flags = ?, keywords = ?, modseq = ? WHERE id = ?",
            (nbits, keywords_to_text(nkws), modseq, mid),
        )
        d_unseen += bool(bits & SEEN_BIT) - bool(nbits & SEEN_BIT)
        d_deleted += bool(nbits & DELETED_BIT) - bool(bits & DELETED_BIT)
        changed.append(FlagUpdate(uid, modseq, bits_to_flags(nbits), nkws))
    if modseq:
        conn.execute(
            "UPDATE mailbox SET modseq = ?, unseen = unseen + ?, deleted = deleted + ? "
            "WHERE id = ?",
            (modseq, d_unseen, d_deleted, mbid),
        )
    changes: list[Change] = [
        FlagsChanged(mbid, c.uid, c.modseq, c.flags, c.keywords) for c in changed
    ]
    return Outcome(FlagsResult(tuple(changed), tuple(modified)), changes)


def _remove_messages(
    conn: apsw.Connection, mbid: int, found: list[Row], modseq: int, tombstones: bool
) -> tuple[list[int], list[str]]:
    """Delete message rows ``(id, uid, flags, size, file)``; fix counts and usage."""
    uids: list[int] = []
    files: list[str] = []
    total_size = unseen = deleted = 0
    fts.remove(conn, [r[0] for r in found])
    for mid, uid, bits, size, file in found:
        conn.execute("DELETE FROM message WHERE id = ?", (mid,))
        if tombstones:
            conn.execute(
                "INSERT OR REPLACE INTO tombstone (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
                (mbid, uid, modseq),
            )
        uids.append(uid)
        if file:
            files.append(file)
        total_size += size
        unseen += 0 if bits & SEEN_BIT else 1
        deleted += 1 if bits & DELETED_BIT else 0
    conn.execute(
        "UPDATE mailbox SET modseq = ?, total = total - ?, unseen = unseen - ?, "
        "deleted = deleted - ?, size = size - ? WHERE id = ?",
        (modseq, len(found), unseen, deleted, total_size, mbid),
    )
    conn.execute(
        "UPDATE account SET usage = usage - ?, messages = messages - ?",
        (total_size, len(found)),
    )
    return uids, files


def expunge(conn: apsw.Connection, mbid: int, uids: Sequence[int] | None) -> Outcome[Expunged]:
    """Remove messages flagged \\Deleted (among ``uids`` if given: RFC 4315 UID EXPUNGE)."""
    check_mailbox(conn, mbid)
    where, args = _uid_filter(uids)
    found = rows(
        conn,
        "SELECT id, uid, flags, size, file FROM message WHERE mailbox_id = ? AND flags & ?"
        + where
        + " ORDER BY uid",
        [mbid, DELETED_BIT, *args],
    )
    if not found:
        return Outcome(Expunged(mbid, (), 0))
    modseq = next_modseq(conn)
    gone, files = _remove_messages(conn, mbid, found, modseq, tombstones=True)
    return Outcome(
        Expunged(mbid, tuple(gone), modseq),
        [MessagesExpunged(mbid, tuple(gone), modseq)],
        files,
    )


_COPY_COLUMNS = (
    "flags, keywords, received, size, file, message_id, in_reply_to, refs, "
    "subject_base, date, structure"
)


def copy(
    conn: apsw.Connection,
    files: MessageFiles,
    quota: int | None,
    src: int,
    uids: Sequence[int],
    dst: int,
) -> Outcome[Copied]:
    """COPY: new rows with new UIDs in ``dst``; content duplicated, files hard-linked.

    Quota counts every copy, as mox does: usage is the sum over all stored messages.
    """
    check_mailbox(conn, src)
    dstmb = one(conn, "SELECT uidvalidity FROM mailbox WHERE id = ?", (dst,))
    if dstmb is None:
        raise MailboxNotFound(f"#{dst}")
    where, args = _uid_filter(uids)
    found = rows(
        conn,
        f"SELECT id, uid, {_COPY_COLUMNS} FROM message WHERE mailbox_id = ?{where} ORDER BY uid",
        [src, *args],
    )
    if not found:
        return Outcome(Copied(dst, int(dstmb[0]), (), 0))
    reserve_quota(conn, quota, sum(r[5] for r in found), len(found))
    modseq = next_modseq(conn)
    linked: list[str] = []
    try:
        pairs, changes = _insert_copies(conn, files, found, dst, modseq, linked)
    except BaseException:
        # The rows roll back with the savepoint; the links must go too.
        files.remove(linked)
        raise
    return Outcome(Copied(dst, int(dstmb[0]), tuple(pairs), modseq), changes)


def _insert_copies(
    conn: apsw.Connection,
    files: MessageFiles,
    found: list[Row],
    dst: int,
    modseq: int,
    linked: list[str],
) -> tuple[list[tuple[int, int]], list[Change]]:
    uid = _reserve_uids(conn, dst, len(found))
    pairs: list[tuple[int, int]] = []
    changes: list[Change] = []
    total_size = unseen = deleted = 0
    for mid, src_uid, bits, kwtext, received, size, file, *rest in found:
        newfile = None
        if file:
            newfile = files.link(file)
            linked.append(newfile)
        conn.execute(
            f"INSERT INTO message (mailbox_id, uid, modseq, createseq, {_COPY_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (dst, uid, modseq, modseq, bits, kwtext, received, size, newfile, *rest),
        )
        newid = conn.last_insert_rowid()
        if not file:
            conn.execute(
                "INSERT INTO content (message_id, data) "
                "SELECT ?, data FROM content WHERE message_id = ?",
                (newid, mid),
            )
        fts.add_copy(conn, newid, mid)
        pairs.append((src_uid, uid))
        changes.append(
            MessageAdded(dst, uid, modseq, bits_to_flags(bits), text_to_keywords(kwtext), size)
        )
        total_size += size
        unseen += 0 if bits & SEEN_BIT else 1
        deleted += 1 if bits & DELETED_BIT else 0
        uid += 1
    conn.execute(
        "UPDATE mailbox SET modseq = ?, total = total + ?, unseen = unseen + ?, "
        "deleted = deleted + ?, size = size + ? WHERE id = ?",
        (modseq, len(found), unseen, deleted, total_size, dst),
    )
    return pairs, changes


def move(conn: apsw.Connection, src: int, uids: Sequence[int], dst: int) -> Outcome[Copied]:
    """MOVE (RFC 6851): rows change mailbox and UID, source keeps tombstones.

    Content and quota usage are unchanged: the message is the same one.
    """
    check_mailbox(conn, src)
    dstmb = one(conn, "SELECT uidvalidity FROM mailbox WHERE id = ?", (dst,))
    if dstmb is None:
        raise MailboxNotFound(f"#{dst}")
    if src == dst:
        return Outcome(Copied(dst, int(dstmb[0]), (), 0))
    where, args = _uid_filter(uids)
    found = rows(
        conn,
        "SELECT id, uid, flags, size, keywords FROM message WHERE mailbox_id = ?"
        + where
        + " ORDER BY uid",
        [src, *args],
    )
    if not found:
        return Outcome(Copied(dst, int(dstmb[0]), (), 0))
    modseq = next_modseq(conn)
    uid = _reserve_uids(conn, dst, len(found))
    pairs: list[tuple[int, int]] = []
    added: list[Change] = []
    total_size = unseen = deleted = 0
    for mid, src_uid, bits, size, kwtext in found:
        conn.execute(
            "UPDATE message SET mailbox_id = ?, uid = ?, modseq = ?, createseq = ? WHERE id = ?",
            (dst, uid, modseq, modseq, mid),
        )
        conn.execute(
            "INSERT OR REPLACE INTO tombstone (mailbox_id, uid, modseq) VALUES (?, ?, ?)",
            (src, src_uid, modseq),
        )
        pairs.append((src_uid, uid))
        added.append(
            MessageAdded(dst, uid, modseq, bits_to_flags(bits), text_to_keywords(kwtext), size)
        )
        total_size += size
        unseen += 0 if bits & SEEN_BIT else 1
        deleted += 1 if bits & DELETED_BIT else 0
        uid += 1
    for mb, sign in ((src, -1), (dst, 1)):
        conn.execute(
            "UPDATE mailbox SET modseq = ?, total = total + ?, unseen = unseen + ?, "
            "deleted = deleted + ?, size = size + ? WHERE id = ?",
            (modseq, sign * len(found), sign * unseen, sign * deleted, sign * total_size, mb),
        )
    gone = tuple(p[0] for p in pairs)
    changes: list[Change] = [MessagesExpunged(src, gone, modseq), *added]
    return Outcome(Copied(dst, int(dstmb[0]), tuple(pairs), modseq), changes)


# --- mailboxes ------------------------------------------------------------------


def insert_mailbox(
    conn: apsw.Connection, name: str, special_use: SpecialUse | None
) -> MailboxCreated:
    """Create one mailbox with a fresh UIDVALIDITY from the account-wide counter.

    The counter only grows, so a deleted and recreated name never gets an old
    UIDVALIDITY back (RFC 9051 2.3.1.1).
    """
    r = one(
        conn,
        "UPDATE account SET next_uidvalidity = next_uidvalidity + 1 RETURNING next_uidvalidity - 1",
    )
    assert r is not None
    modseq = next_modseq(conn)
    conn.execute(
        "INSERT INTO mailbox (name, uidvalidity, uidnext, modseq, special_use) "
        "VALUES (?, ?, 1, ?, ?)",
        (name, int(r[0]), modseq, special_use.value if special_use else None),
    )
    return MailboxCreated(conn.last_insert_rowid(), name, special_use)


def _exists(conn: apsw.Connection, name: str) -> bool:
    return one(conn, "SELECT 1 FROM mailbox WHERE name = ?", (name,)) is not None


def create_mailbox(
    conn: apsw.Connection, name: str, special_use: SpecialUse | None, subscribe: bool
) -> Outcome[int]:
    """Create ``name`` and any missing parents (RFC 9051 6.3.4 SHOULD)."""
    if _exists(conn, name):
        raise MailboxExists(name)
    changes: list[Change] = []
    for parent in parents(name):
        if not _exists(conn, parent):
            changes.append(insert_mailbox(conn, parent, None))
    created = insert_mailbox(conn, name, special_use)
    changes.append(created)
    if subscribe:
        changes += subscribe_names(conn, [name], True)
    return Outcome(created.mailbox_id, changes)


def subscribe_names(conn: apsw.Connection, names: list[str], on: bool) -> list[Change]:
    """Subscribe or unsubscribe names; returns changes for those that changed."""
    out: list[Change] = []
    for name in names:
        if on:
            r = one(
                conn, "INSERT OR IGNORE INTO subscription (name) VALUES (?) RETURNING 1", (name,)
            )
        else:
            r = one(conn, "DELETE FROM subscription WHERE name = ? RETURNING 1", (name,))
        if r is not None:
            out.append(SubscriptionChanged(name, on))
    return out


def _children(conn: apsw.Connection, name: str) -> list[Row]:
    # A prefix comparison, not LIKE: "_" is a LIKE wildcard but valid in names.
    prefix = name + SEPARATOR
    return rows(
        conn,
        "SELECT id, name FROM mailbox WHERE substr(name, 1, ?) = ? ORDER BY name",
        (len(prefix), prefix),
    )


def delete_mailbox(conn: apsw.Connection, name: str) -> Outcome[None]:
    """Delete a mailbox and its messages; subscriptions stay (RFC 9051 6.3.9)."""
    if name == INBOX:
        raise MailboxNotAllowed(name, "INBOX cannot be deleted")
    mbid = mailbox_id(conn, name)
    if _children(conn, name):
        raise MailboxHasChildren(name)
    found = rows(
        conn, "SELECT id, uid, flags, size, file FROM message WHERE mailbox_id = ?", (mbid,)
    )
    modseq = next_modseq(conn)
    _, files = _remove_messages(conn, mbid, found, modseq, tombstones=False)
    conn.execute("DELETE FROM tombstone WHERE mailbox_id = ?", (mbid,))
    conn.execute("DELETE FROM mailbox WHERE id = ?", (mbid,))
    return Outcome(None, [MailboxDeleted(mbid, name)], files)


def rename_mailbox(conn: apsw.Connection, old: str, new: str) -> Outcome[None]:
    """Rename a mailbox with its children; renaming Inbox moves its messages instead.

    UIDVALIDITY is kept: it is unique in the account, so the new name cannot have
    had it before. Subscriptions follow the renamed names.
    """
    mbid = mailbox_id(conn, old)
    if old == new:
        raise MailboxExists(new)
    if _exists(conn, new):
        raise MailboxExists(new)
    if new.startswith(old + SEPARATOR):
        raise MailboxNotAllowed(old, "cannot rename a mailbox into its own child")
    changes: list[Change] = []
    for parent in parents(new):
        if not _exists(conn, parent):
            changes.append(insert_mailbox(conn, parent, None))
    if old == INBOX:
        # RFC 9051 6.3.6: renaming INBOX moves its messages to a new mailbox and
        # leaves INBOX empty; its children are not renamed.
        created = insert_mailbox(conn, new, None)
        changes.append(created)
        uids = [
            int(r[0]) for r in rows(conn, "SELECT uid FROM message WHERE mailbox_id = ?", (mbid,))
        ]
        moved = move(conn, mbid, uids, created.mailbox_id)
        return Outcome(None, changes + moved.changes)
    targets = [(mbid, old), *((int(i), str(n)) for i, n in _children(conn, old))]
    modseq = next_modseq(conn)
    for i, n in targets:
        newname = new + n[len(old) :]
        if _exists(conn, newname):
            raise MailboxExists(newname)
        conn.execute("UPDATE mailbox SET name = ?, modseq = ? WHERE id = ?", (newname, modseq, i))
        changes.append(MailboxRenamed(i, n, newname))
        if one(conn, "DELETE FROM subscription WHERE name = ? RETURNING 1", (n,)):
            changes.append(SubscriptionChanged(n, False))
            changes += subscribe_names(conn, [newname], True)
    return Outcome(None, changes)


def _mailbox_from_row(r: Row) -> Mailbox:
    return Mailbox(
        id=r[0],
        name=r[1],
        uidvalidity=r[2],
        uidnext=r[3],
        highest_modseq=r[4],
        special_use=SpecialUse(r[5]) if r[5] else None,
        total=r[6],
        unseen=r[7],
        deleted=r[8],
        size=r[9],
    )


MAILBOX_COLUMNS = (
    "id, name, uidvalidity, uidnext, modseq, special_use, total, unseen, deleted, size"
)
mailbox_from_row: Callable[[Row], Mailbox] = _mailbox_from_row
