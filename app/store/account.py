"""One account's message store: the async API that SMTP, IMAP and the web UI call.

Writes go through the account's :class:`Committer` (group commit, one writer, in
the runtime's executor). Reads, measured on this machine with 5,000 messages:
a mailbox lookup takes ~6 µs, the quota ~3 µs, a few message rows ~20 µs, an
inline 4 KiB message ~5 µs, while an executor hop costs ~70 µs. So small metadata
reads and inline content run directly on the event-loop thread, on a read
connection of their own (WAL lets them run while the committer writes). Reads that
can be large run in the executor on pooled connections: message listings of more
than LOOP_READ_ROWS rows (building a row costs ~4 µs, 5,000 rows ~25 ms),
``changes_since``, and the content of file-backed messages.
Bare metadata rows for FETCH (:meth:`AccountStore.message_metadata`, ~0.3 µs a
row) are read on the loop thread in blocks.
"""

import asyncio
import io
import os
import threading
from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import apsw

import app.store.ops as ops
from app.message.summary import summarize
from app.store import fts
from app.store.changes import Broadcaster, Subscription
from app.store.committer import Committer, Operation, Outcome
from app.store.content import MessageFiles, Prepared, fix_line_endings
from app.store.errors import MailboxNotFound, MessageGone, StoreClosed
from app.store.lockfile import lock_account
from app.store.names import normalize_mailbox_name
from app.store.runtime import StoreRuntime
from app.store.schema import connect, migrate
from app.store.types import (
    DEFAULT_MAILBOXES,
    Copied,
    Delivered,
    Expunged,
    Flag,
    FlagsResult,
    Mailbox,
    MessageInfo,
    QuotaUsage,
    SpecialUse,
    bits_to_flags,
    flags_to_bits,
    normalize_keyword,
    split_flags,
    text_to_keywords,
)

T = TypeVar("T")

DEFAULT_INLINE_THRESHOLD = 128 * 1024
DEFAULT_SUBSCRIBER_BUFFER = 10_000
# Requests for at most this many message rows are answered on the loop thread.
LOOP_READ_ROWS = 200
# array typecode of UID lists kept per session: unsigned, 4 bytes (UIDs are 32-bit).
UID_TYPECODE = "I"

_MSG_COLUMNS = (
    "id, mailbox_id, uid, modseq, createseq, flags, keywords, received, size, file, "
    "message_id, in_reply_to, refs, subject_base, date"
)

# One message by UID, without and with the cached MIME structure.
_ONE_SQL = (
    f"SELECT {_MSG_COLUMNS} FROM message WHERE mailbox_id = ? AND uid = ?",
    f"SELECT {_MSG_COLUMNS}, structure FROM message WHERE mailbox_id = ? AND uid = ?",
)

_FLAG_SETS = tuple(bits_to_flags(b) for b in range(1 << len(Flag)))
_NO_KEYWORDS: frozenset[str] = frozenset()


def _to_us(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1_000_000)


def _flags_of(bits: int) -> frozenset[Flag]:
    # Every combination of the five system flags, built once: rows share the sets.
    if 0 <= bits < len(_FLAG_SETS):
        return _FLAG_SETS[bits]
    return bits_to_flags(bits)


def _message_from_row(r: Sequence[Any], structure: str = "") -> MessageInfo:
    return MessageInfo(
        id=r[0],
        mailbox_id=r[1],
        uid=r[2],
        modseq=r[3],
        createseq=r[4],
        flags=_flags_of(r[5]),
        keywords=text_to_keywords(r[6]) if r[6] else _NO_KEYWORDS,
        received=datetime.fromtimestamp(r[7] / 1_000_000, UTC),
        size=r[8],
        file=r[9],
        message_id=r[10],
        in_reply_to=tuple(r[11].split()),
        references=tuple(r[12].split()),
        subject_base=r[13],
        date=datetime.fromisoformat(r[14]) if r[14] else None,
        structure=structure,
    )


def _build_messages(
    conn: apsw.Connection, sql: str, args: list[Any], with_structure: bool
) -> list[MessageInfo]:
    return [
        _message_from_row(r, str(r[15]) if with_structure else "")
        for r in conn.execute(sql, args).fetchall()
    ]


def _uids_and_keywords(
    conn: apsw.Connection, mailbox_id: int
) -> tuple["array[int]", frozenset[str]]:
    uids = array(UID_TYPECODE)
    texts: set[str] = set()
    # One statement, so the keywords are exactly those of the messages listed.
    for uid, text in conn.execute(_UIDS_KEYWORDS_SQL, (mailbox_id,)):
        uids.append(uid)
        if text:
            texts.add(text)
    return uids, frozenset(k for t in texts for k in text_to_keywords(t))


_UIDS_KEYWORDS_SQL = "SELECT uid, keywords FROM message WHERE mailbox_id = ? ORDER BY uid"

# (uid, flags bit mask, keywords text, size, modseq, received µs) of one message.
MetadataRow = tuple[int, int, str, int, int, int]

_METADATA_SQL = (
    "SELECT uid, flags, keywords, size, modseq, received FROM message WHERE mailbox_id = ?"
)


def _metadata_rows(conn: apsw.Connection, sql: str, args: list[Any]) -> list[MetadataRow]:
    return cast(list[MetadataRow], conn.execute(sql, args).fetchall())


def _shrink(conn: apsw.Connection) -> int:
    """Free the unused page cache of ``conn``; returns the bytes it held before."""
    used: int = conn.status(apsw.SQLITE_DBSTATUS_CACHE_USED)[0]
    conn.release_memory()
    return used


def _close_all(conns: list[apsw.Connection]) -> int:
    """Close connections (executor thread); returns the page cache bytes they held."""
    freed = 0
    for conn in conns:
        freed += conn.status(apsw.SQLITE_DBSTATUS_CACHE_USED)[0]
        conn.close()
    return freed


def _init_account(conn: apsw.Connection, name: str) -> None:
    """First open: account row and the default mailboxes, all subscribed."""
    with conn:
        conn.execute(
            "INSERT INTO account (id, name, modseq, next_uidvalidity, usage, messages) "
            "VALUES (1, ?, 1, 1, 0, 0)",
            (name,),
        )
        for mbname, special in DEFAULT_MAILBOXES:
            ops.insert_mailbox(conn, mbname, special)
            ops.subscribe_names(conn, [mbname], True)


class AccountStore:
    """Mailboxes and messages of one account in ``DIR/index.db`` and ``DIR/msg/``.

    Open with :meth:`open`. Opening an account that is already open in the same
    runtime returns the same object and counts a reference; :meth:`close` releases
    one reference and closes on the last. Another process (or runtime) opening the
    same directory gets :class:`AccountInUse` (an flock on ``DIR/lock``).
    """

    def __init__(
        self,
        path: Path,
        name: str,
        runtime: StoreRuntime,
        quota: int | None,
        inline_threshold: int,
        subscriber_buffer: int,
        wconn: apsw.Connection,
        rconn: apsw.Connection,
        lock_fd: int,
    ) -> None:
        self.path = path
        self.name = name
        self.inline_threshold = inline_threshold
        self._runtime = runtime
        self._quota = quota
        self._wconn = wconn
        self._rconn = rconn
        self._lock_fd = lock_fd
        self._closed = False
        # Connections for reads in the executor; the loop thread has its own.
        self._pool: list[apsw.Connection] = []
        self._pool_lock = threading.Lock()
        self.files = MessageFiles(path / "msg")
        self._broadcaster = Broadcaster(subscriber_buffer)
        self._committer = Committer(wconn, runtime.executor, self._broadcaster, self.files.remove)

    # --- lifecycle --------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        name: str,
        runtime: StoreRuntime,
        quota: int | None = None,
        inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
        subscriber_buffer: int = DEFAULT_SUBSCRIBER_BUFFER,
    ) -> "AccountStore":
        """Open (creating on first use) the account store in directory ``path``.

        ``quota`` is the byte limit (None: unlimited). When the account is already
        open in this runtime, the open object is returned and the arguments other
        than ``path`` are ignored (use :meth:`set_quota` to change the limit).
        """
        key = path.resolve()
        async with runtime.open_lock:
            existing = runtime.accounts.get(key)
            if existing is not None:
                assert isinstance(existing, cls)
                runtime.refcounts[key] += 1
                return existing
            loop = asyncio.get_running_loop()
            store = await loop.run_in_executor(
                runtime.executor,
                cls._open_sync,
                key,
                name,
                runtime,
                quota,
                inline_threshold,
                subscriber_buffer,
            )
            runtime.accounts[key] = store
            runtime.refcounts[key] = 1
            return store

    @classmethod
    def _open_sync(
        cls,
        path: Path,
        name: str,
        runtime: StoreRuntime,
        quota: int | None,
        inline_threshold: int,
        subscriber_buffer: int,
    ) -> "AccountStore":
        path.mkdir(parents=True, exist_ok=True)
        (path / "msg").mkdir(exist_ok=True)
        lock_fd = lock_account(path)
        try:
            wconn = connect(path / "index.db", cache_kib=runtime.cache_kib)
            if migrate(wconn):
                _init_account(wconn, name)
            rconn = connect(path / "index.db", cache_kib=runtime.cache_kib)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(
            path, name, runtime, quota, inline_threshold, subscriber_buffer, wconn, rconn, lock_fd
        )

    async def close(self, *, force: bool = False) -> None:
        """Release one reference; on the last (or with ``force``) finish writes and close."""
        key = self.path
        rt = self._runtime
        if self._closed:
            return
        if not force and rt.refcounts.get(key, 0) > 1:
            rt.refcounts[key] -= 1
            return
        self._closed = True
        rt.accounts.pop(key, None)
        rt.refcounts.pop(key, None)
        await self._committer.wait_idle()
        self._broadcaster.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(rt.executor, self._close_sync)

    def _close_sync(self) -> None:
        for conn in self._pool:
            conn.close()
        self._rconn.close()
        self._wconn.close()
        os.close(self._lock_fd)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(self.name)
        # Every operation passes here: it marks the store active, which keeps
        # the idle memory release away (app.memory).
        self._runtime.touch()

    async def release_memory(self) -> int:
        """Free the SQLite memory of connections nothing is using; returns bytes freed.

        Each connection is handled on the thread that may use it, never while a
        read or transaction runs on it: the loop thread's read connection shrinks
        its page cache here (loop-thread reads are synchronous, none is running);
        pooled executor connections not checked out are closed (a large read opens
        one again when it needs it); the write connection shrinks in the executor
        between batches, only if the committer is idle. Called by the runtime after
        a period without activity.
        """
        if self._closed:
            return 0
        freed = _shrink(self._rconn)
        with self._pool_lock:
            idle, self._pool = self._pool, []
        # Scheduled before any await, so a close() starting meanwhile waits for it.
        writer = self._committer.run_idle(_shrink)
        loop = asyncio.get_running_loop()
        freed += await loop.run_in_executor(self._runtime.executor, _close_all, idle)
        if writer is not None:
            freed += await writer
        return freed

    async def _write(self, op: Operation) -> Any:
        self._check_open()
        return await self._committer.submit(op)

    @property
    def commits(self) -> int:
        """Number of committed write transactions (group commit makes it < writes)."""
        return self._committer.commits

    @property
    def writes(self) -> int:
        """Number of write operations that went through the committer."""
        return self._committer.operations

    # --- changes ------------------------------------------------------------------

    def subscribe(self) -> Subscription:
        """Receive every change committed from now on, in commit order."""
        self._check_open()
        return self._broadcaster.subscribe()

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop a subscription (its iteration ends)."""
        self._broadcaster.unsubscribe(sub)

    # --- quota --------------------------------------------------------------------

    def quota_usage(self) -> QuotaUsage:
        """Limit and exact usage (sum of stored sizes of all messages)."""
        self._check_open()
        r: Sequence[Any] = self._rconn.execute("SELECT usage, messages FROM account").fetchall()[0]
        return QuotaUsage(self._quota, r[0], r[1])

    def set_quota(self, limit: int | None) -> None:
        """Change the byte limit (None: unlimited); applies to batches not yet started."""
        self._quota = limit

    # --- mailboxes ------------------------------------------------------------------

    def list_mailboxes(self) -> list[Mailbox]:
        """All mailboxes, ordered by name."""
        self._check_open()
        q = f"SELECT {ops.MAILBOX_COLUMNS} FROM mailbox ORDER BY name"
        return [ops.mailbox_from_row(r) for r in self._rconn.execute(q).fetchall()]

    def mailbox(self, name: str) -> Mailbox:
        """A mailbox by name (INBOX case-insensitive); raises MailboxNotFound."""
        self._check_open()
        stored = normalize_mailbox_name(name)
        q = f"SELECT {ops.MAILBOX_COLUMNS} FROM mailbox WHERE name = ?"
        r = self._rconn.execute(q, (stored,)).fetchall()
        if not r:
            raise MailboxNotFound(name)
        return ops.mailbox_from_row(r[0])

    def mailbox_by_id(self, mailbox_id: int) -> Mailbox:
        """A mailbox by id; raises MailboxNotFound."""
        self._check_open()
        q = f"SELECT {ops.MAILBOX_COLUMNS} FROM mailbox WHERE id = ?"
        r = self._rconn.execute(q, (mailbox_id,)).fetchall()
        if not r:
            raise MailboxNotFound(f"#{mailbox_id}")
        return ops.mailbox_from_row(r[0])

    async def create_mailbox(
        self, name: str, special_use: SpecialUse | None = None, *, subscribe: bool = True
    ) -> Mailbox:
        """Create a mailbox (and missing parents); subscribes it, as mox does."""
        stored = normalize_mailbox_name(name)
        await self._write(lambda c: ops.create_mailbox(c, stored, special_use, subscribe))
        return self.mailbox(stored)

    async def delete_mailbox(self, name: str) -> None:
        """Delete a mailbox without children, with its messages; not Inbox."""
        stored = normalize_mailbox_name(name)
        await self._write(lambda c: ops.delete_mailbox(c, stored))

    async def rename_mailbox(self, old: str, new: str) -> None:
        """Rename a mailbox and its children (Inbox: move its messages, RFC 9051 6.3.6)."""
        o, n = normalize_mailbox_name(old), normalize_mailbox_name(new)
        await self._write(lambda c: ops.rename_mailbox(c, o, n))

    async def set_subscribed(self, name: str, on: bool) -> None:
        """Subscribe or unsubscribe a name; the mailbox need not exist (RFC 9051 6.3.7)."""
        stored = normalize_mailbox_name(name)
        await self._write(lambda c: Outcome(None, ops.subscribe_names(c, [stored], on)))

    def subscriptions(self) -> list[str]:
        """Subscribed names, sorted."""
        self._check_open()
        q = "SELECT name FROM subscription ORDER BY name"
        return [str(r[0]) for r in self._rconn.execute(q).fetchall()]

    # --- messages -----------------------------------------------------------------

    async def deliver(
        self,
        mailbox: str,
        content: bytes | Path,
        *,
        flags: Iterable[Flag] = frozenset(),
        keywords: Iterable[str] = frozenset(),
        received: datetime | None = None,
        prefix: bytes = b"",
    ) -> Delivered:
        """Store a message durably; returns after the batch holding it committed.

        ``content`` is the message, or a spool file (streamed, never read whole when
        large). ``prefix`` (header lines such as Received, each ending in CRLF) is
        stored in front of it. Bare LFs get a CR. Raises QuotaExceeded (checked at
        commit time), MailboxNotFound.
        """
        self._check_open()
        stored = normalize_mailbox_name(mailbox)
        kws = frozenset(normalize_keyword(k) for k in keywords)
        bits = flags_to_bits(flags)
        received_us = _to_us(received or datetime.now(UTC))
        prepared = await self._prepare(content, prefix)
        req = ops.NewMessage(stored, prepared, bits, kws, received_us)
        if self._closed:
            if prepared.file is not None:
                await self._run(self.files.remove, [prepared.file])
            raise StoreClosed(self.name)
        files = (prepared.file,) if prepared.file is not None else ()
        fut = self._committer.submit(lambda c: ops.deliver(c, self._quota, req), files)
        # Shielded: a caller that gives up (client disconnect) does not withdraw a
        # queued delivery, so its file must stay until the outcome is known.
        result: Delivered = await asyncio.shield(fut)
        return result

    async def _prepare(self, content: bytes | Path, prefix: bytes = b"") -> Prepared:
        threshold = self.inline_threshold
        if isinstance(content, bytes) and prefix:
            content = prefix + content
        if isinstance(content, bytes) and len(content) < threshold:
            # Small: CRLF repair and summary cost microseconds, cheaper here than a
            # thread hop. Only if the repaired message crosses the threshold does
            # it go to a file, written in the executor.
            fixed = fix_line_endings(content)
            if len(fixed) < threshold:
                summary = summarize(fixed)
                return Prepared(
                    fixed, None, len(fixed), summary, fts.extract(fixed, summary.structure)
                )
        if isinstance(content, bytes):
            return await self._run(self.files.prepare_bytes, content, threshold)
        return await self._run(self.files.prepare_path, content, threshold, prefix)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._runtime.executor, fn, *args)

    async def messages(
        self, mailbox_id: int, uids: Iterable[int] | None = None, *, with_structure: bool = False
    ) -> list[MessageInfo]:
        """Messages of a mailbox (all, or those with the given UIDs), in UID order.

        Up to LOOP_READ_ROWS requested UIDs are read on the loop thread; all of a
        mailbox, or more UIDs, in the executor (building a row costs ~4 µs, so
        5,000 rows would stall the loop for ~25 ms).
        """
        self._check_open()
        ulist = None if uids is None else [int(u) for u in uids]
        if ulist is not None and len(ulist) == 1:
            # The usual single-message FETCH: an index lookup, ~3x cheaper than
            # going through json_each.
            sql = _ONE_SQL[with_structure]
            return _build_messages(self._rconn, sql, [mailbox_id, ulist[0]], with_structure)
        cols = _MSG_COLUMNS + (", structure" if with_structure else "")
        sql = f"SELECT {cols} FROM message WHERE mailbox_id = ?"
        args: list[Any] = [mailbox_id]
        if ulist is not None:
            sql += " AND uid IN (SELECT value FROM json_each(?))"
            args.append("[" + ",".join(map(str, ulist)) + "]")
        sql += " ORDER BY uid"
        if ulist is not None and len(ulist) <= LOOP_READ_ROWS:
            return _build_messages(self._rconn, sql, args, with_structure)
        return await self._run(self._pooled_read, sql, args, with_structure)

    async def uids_and_keywords(self, mailbox_id: int) -> tuple["array[int]", frozenset[str]]:
        """UIDs of a mailbox's messages, ascending (an array of :data:`UID_TYPECODE`),
        and every keyword set on one of them.

        What SELECT needs, without a :class:`MessageInfo` per message: for 5,000
        messages those are ~3 MiB in ~50,000 small objects (this: ~0.2 MiB), and
        with several clients selecting at once they spread over allocator arenas
        that stay with the process after the clients leave. Read in the executor: a
        large mailbox takes milliseconds.
        """
        self._check_open()
        return await self._run(self._pooled, _uids_and_keywords, mailbox_id)

    def message_metadata(
        self, mailbox_id: int, uids: Sequence[int], *, changed_since: int | None = None
    ) -> list[MetadataRow]:
        """:data:`MetadataRow` tuples of the given messages (ascending UIDs), in UID order.

        The rows FETCH needs for flags, UIDs, sizes, modseqs and internal dates, without
        building :class:`MessageInfo` objects: ~0.3 µs a row instead of ~4 µs. Read on
        the loop thread: callers ask for blocks of about a thousand (~0.3 ms); in the
        executor the read contends with the loop for the GIL on every row, which cost
        twice the CPU under concurrent FETCHes. With ``changed_since``, only messages
        whose modseq is above it (CHANGEDSINCE). UIDs that no longer exist are left out.
        """
        self._check_open()
        if not uids:
            return []
        sql = _METADATA_SQL
        args: list[Any] = [mailbox_id]
        low, high = uids[0], uids[-1]
        wanted: set[int] | None = None
        if high - low < 2 * len(uids):  # dense: one index range, then drop the gaps
            sql += " AND uid BETWEEN ? AND ?"
            args += [low, high]
            if high - low + 1 != len(uids):
                wanted = set(uids)
        else:
            sql += " AND uid IN (SELECT value FROM json_each(?))"
            args.append("[" + ",".join(map(str, uids)) + "]")
        if changed_since is not None:
            sql += " AND modseq > ?"
            args.append(changed_since)
        rows = _metadata_rows(self._rconn, sql + " ORDER BY uid", args)
        if wanted is not None:
            rows = [r for r in rows if r[0] in wanted]
        return rows

    async def changes_since(self, mailbox_id: int, modseq: int) -> list[MessageInfo]:
        """Messages added or changed after ``modseq`` (CONDSTORE CHANGEDSINCE).

        Runs in the executor: after a long disconnection the answer can be large.
        """
        self._check_open()
        sql = f"SELECT {_MSG_COLUMNS} FROM message WHERE mailbox_id = ? AND modseq > ? ORDER BY uid"
        return await self._run(self._pooled_read, sql, [mailbox_id, modseq], False)

    def _pooled_read(self, sql: str, args: list[Any], with_structure: bool) -> list[MessageInfo]:
        """Run a large read on a pooled connection (executor thread)."""
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = connect(self.path / "index.db", cache_kib=self._runtime.cache_kib)
        try:
            return _build_messages(conn, sql, args, with_structure)
        finally:
            with self._pool_lock:
                self._pool.append(conn)

    # --- search -----------------------------------------------------------------

    async def select_uids(
        self, mailbox_id: int, test: fts.Test, within: Sequence[int] | None = None
    ) -> list[int]:
        """UIDs of messages in the mailbox passing ``test`` (among ``within``), ascending.

        Metadata tests scan small rows and run on the loop thread (~1 ms for 5,000
        messages), and so do header keys the index answers alone
        (:func:`app.store.fts.index_only`): queued in the executor behind body
        searches they waited far longer than they take. Other text tests (verification
        of candidates by decoding them) can take longer and run in the executor.
        Results are exact.
        """
        self._check_open()
        root = self.files.root
        if not isinstance(test, fts.TextTest | fts.HeaderTest) or (
            fts.index_only(test) and not fts.any_unindexed(self._rconn)
        ):
            return fts.select_uids(self._rconn, root, mailbox_id, test, within)
        return await self._run(self._pooled, fts.select_uids, root, mailbox_id, test, within)

    def unindexed_uids(self, mailbox_id: int) -> list[int]:
        """UIDs of messages not (yet) in the full-text index; searches must scan them."""
        self._check_open()
        return fts.unindexed_uids(self._rconn, mailbox_id)

    def max_modseq(self, mailbox_id: int, uids: Sequence[int]) -> int:
        """Highest modseq among the given messages, 0 when none exists."""
        self._check_open()
        return fts.max_modseq(self._rconn, mailbox_id, uids)

    async def index_missing(self, limit: int = 200) -> int:
        """Add up to ``limit`` messages stored before the full-text index existed to it.

        Returns how many were indexed; call until it returns 0. Text is extracted
        here (in the executor), the index rows are written by the committer.
        """
        self._check_open()
        rows = self._rconn.execute(
            f"SELECT {_MSG_COLUMNS}, structure FROM message m WHERE NOT EXISTS "
            "(SELECT 1 FROM message_text t WHERE t.message_id = m.id) LIMIT ?",
            (limit,),
        ).fetchall()
        texts: list[tuple[int, fts.IndexText]] = []
        for r in rows:
            msg = _message_from_row(r, str(r[15]))
            try:
                if msg.file is None:
                    text = fts.extract(self._inline(msg, 0, None), msg.structure)
                else:
                    path = self.files.path(msg.file)
                    text = await self._run(fts.extract_file, path, msg.structure)
            except (MessageGone, FileNotFoundError):
                continue
            texts.append((msg.id, text))
        if texts:
            await self._write(lambda c: Outcome(ops.index_messages(c, texts)))
        return len(texts)

    def _pooled(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on a pooled read connection (executor thread)."""
        with self._pool_lock:
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = connect(self.path / "index.db", cache_kib=self._runtime.cache_kib)
        try:
            return fn(conn, *args)
        finally:
            with self._pool_lock:
                self._pool.append(conn)

    def vanished_since(self, mailbox_id: int, modseq: int) -> list[int]:
        """UIDs expunged after ``modseq`` (QRESYNC VANISHED, RFC 7162 3.2.10)."""
        self._check_open()
        sql = "SELECT uid FROM tombstone WHERE mailbox_id = ? AND modseq > ? ORDER BY uid"
        return [int(r[0]) for r in self._rconn.execute(sql, (mailbox_id, modseq))]

    async def set_flags(
        self,
        mailbox_id: int,
        uids: Iterable[int] | None,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        replace: Iterable[str] | None = None,
        unchanged_since: int | None = None,
    ) -> FlagsResult:
        """STORE: flag words are system flags (``\\Seen``) or keywords, mixed.

        ``uids`` None means every message in the mailbox.
        """
        ab, ak = split_flags(add)
        rb, rk = split_flags(remove)
        ch = ops.FlagChange(
            ab, ak, rb, rk, split_flags(replace) if replace is not None else None, unchanged_since
        )
        u = None if uids is None else list(uids)
        result: FlagsResult = await self._write(lambda c: ops.set_flags(c, mailbox_id, u, ch))
        return result

    async def expunge(self, mailbox_id: int, uids: Iterable[int] | None = None) -> Expunged:
        """Remove messages flagged \\Deleted (only among ``uids`` when given)."""
        u = None if uids is None else list(uids)
        result: Expunged = await self._write(lambda c: ops.expunge(c, mailbox_id, u))
        return result

    async def copy(self, mailbox_id: int, uids: Iterable[int], dest: int) -> Copied:
        """COPY messages to mailbox ``dest``; each copy counts toward the quota."""
        u = list(uids)
        result: Copied = await self._write(
            lambda c: ops.copy(c, self.files, self._quota, mailbox_id, u, dest)
        )
        return result

    async def move(self, mailbox_id: int, uids: Iterable[int], dest: int) -> Copied:
        """MOVE messages to mailbox ``dest`` (new UIDs there, tombstones here)."""
        u = list(uids)
        result: Copied = await self._write(lambda c: ops.move(c, mailbox_id, u, dest))
        return result

    # --- content ------------------------------------------------------------------

    def _inline(self, msg: MessageInfo, offset: int, length: int | None) -> bytes:
        if length is None:
            length = msg.size
        r = self._rconn.execute(
            "SELECT substr(data, ?, ?) FROM content WHERE message_id = ?",
            (offset + 1, max(0, length), msg.id),
        ).fetchall()
        if not r:
            raise MessageGone(msg.id)
        data = r[0][0]
        assert isinstance(data, bytes)
        return data

    async def read_message(self, msg: MessageInfo) -> bytes:
        """The whole stored message."""
        return await self.read_range(msg, 0, None)

    async def read_range(self, msg: MessageInfo, offset: int, length: int | None) -> bytes:
        """``length`` bytes (None: to the end) from ``offset``; for partial FETCH."""
        self._check_open()
        if msg.file is None:
            return self._inline(msg, offset, length)
        try:
            data: bytes = await self._run(self.files.read, msg.file, offset, length)
        except FileNotFoundError:
            raise MessageGone(msg.id) from None
        return data

    async def open_message(self, msg: MessageInfo) -> BinaryIO:
        """A file object positioned at the start of the message; the caller closes it.

        Reading a file-backed one blocks: read it in an executor or in chunks.
        An open file stays readable even if the message is expunged meanwhile.
        """
        self._check_open()
        if msg.file is None:
            return io.BytesIO(self._inline(msg, 0, None))
        try:
            f: BinaryIO = await self._run(open, self.files.path(msg.file), "rb")
        except FileNotFoundError:
            raise MessageGone(msg.id) from None
        return f
