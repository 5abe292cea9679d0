"""The durable outgoing queue: ``data/queue.db`` plus files for large messages.

Layout: one ``msg`` row per queued message (envelope sender, submitting account,
flags, content inline or the name of a file under ``data/queue/msg/``) and one
``rcpt`` row per recipient, holding that recipient's delivery state (attempts,
next attempt, last error, dialed IPs, hold flag, transport). The recipient row id
is the *queue id* that the CLI shows and filters on, as in mox where each queued
message has one recipient.

Durability is that of the account store (and reuses its pieces): a file is written
and fsynced, and its directory fsynced, before the row naming it commits
(:class:`app.store.content.MessageFiles`); rows are written through a
:class:`app.store.committer.Committer`, which group-commits everything waiting in
one ``BEGIN IMMEDIATE … COMMIT`` on a WAL database with ``synchronous=FULL``, so an
:meth:`QueueStore.enqueue` that returned survives kill -9 and power loss. When the
last recipient row of a message goes, its message row goes in the same transaction
and its file is removed after the commit. Files without a row (a crash between
writing the file and committing) are removed by :meth:`QueueStore.remove_orphans`.
"""

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import apsw

from app.store.changes import Broadcaster
from app.store.committer import Committer, Outcome
from app.store.content import MessageFiles, fix_line_endings
from app.store.errors import StoreClosed
from app.store.schema import connect

T = TypeVar("T")

INLINE_THRESHOLD = 128 * 1024
CHUNK = 256 * 1024

# Recipient states. FAILED: delivery failed for good, the failure DSN is still to be
# sent (then the row is removed); kept durable so a crash in between resends it.
STATE_QUEUED = 0
STATE_FAILED = 1

_SCHEMA_1 = """
CREATE TABLE msg (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,          -- seconds since the epoch
    account TEXT NOT NULL,          -- submitting account; DSNs go there
    sender TEXT NOT NULL,           -- envelope sender, '' for the null sender
    size INTEGER NOT NULL,
    smtputf8 INTEGER NOT NULL,
    eight_bit INTEGER NOT NULL,
    requiretls INTEGER NOT NULL,    -- REQUIRETLS (RFC 8689)
    tls_required_no INTEGER NOT NULL,  -- TLS-Required: No header (RFC 8689 5)
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    file TEXT UNIQUE,               -- content file under queue/msg, or NULL: inline
    data BLOB                       -- inline content
);
CREATE TABLE rcpt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id INTEGER NOT NULL REFERENCES msg(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    domain TEXT NOT NULL,           -- ASCII, lower case: the grouping key
    state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_attempt REAL,
    last_code INTEGER NOT NULL DEFAULT 0,
    last_secode TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    remote_mta TEXT NOT NULL DEFAULT '',
    dialed TEXT NOT NULL DEFAULT '[]',  -- JSON list of IPs dialed in the last attempt
    transport TEXT NOT NULL DEFAULT '', -- forced transport; '' follows the routes
    hold INTEGER NOT NULL DEFAULT 0,
    delayed_dsn INTEGER NOT NULL DEFAULT 0  -- the delayed DSN was sent
);
CREATE INDEX rcpt_due ON rcpt (state, hold, next_attempt);
CREATE INDEX rcpt_msg ON rcpt (msg_id);
"""

MIGRATIONS: tuple[str, ...] = (_SCHEMA_1,)

_ENTRY_COLUMNS = (
    "r.id, r.msg_id, m.account, m.sender, r.address, r.domain, r.state, r.attempts, "
    "r.next_attempt, r.last_attempt, r.last_code, r.last_secode, r.last_error, r.remote_mta, "
    "r.dialed, r.transport, r.hold, r.delayed_dsn, m.created, m.size, m.smtputf8, "
    "m.eight_bit, m.requiretls, m.tls_required_no, m.message_id, m.subject, m.file"
)


class QueueError(Exception):
    """A queue operation that cannot be done; the message is for the operator."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to queue for remote recipients (``recipients``: addresses, in
    SMTPUTF8 form when ``smtputf8``). ``content`` is the message, or a spool file;
    ``prefix`` (header fields ending in CRLF, e.g. Received and DKIM-Signature) is
    stored in front of it."""

    account: str
    sender: str
    recipients: tuple[str, ...]
    content: bytes | Path
    prefix: bytes = b""
    smtputf8: bool = False
    requiretls: bool = False
    tls_required_no: bool = False
    transport: str = ""
    message_id: str = ""
    subject: str = ""
    hold: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued recipient of one message (a row of the queue listing)."""

    id: int
    msg_id: int
    account: str
    sender: str
    recipient: str
    domain: str
    state: int
    attempts: int
    next_attempt: float
    last_attempt: float | None
    last_code: int
    last_secode: str
    last_error: str
    remote_mta: str
    dialed: tuple[str, ...]
    transport: str
    hold: bool
    delayed_dsn: bool
    created: float
    size: int
    smtputf8: bool
    eight_bit: bool
    requiretls: bool
    tls_required_no: bool
    message_id: str
    subject: str
    file: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the control socket."""
        return {
            "id": self.id,
            "msg_id": self.msg_id,
            "account": self.account,
            "from": self.sender,
            "to": self.recipient,
            "state": "failed" if self.state == STATE_FAILED else "queued",
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
            "last_attempt": self.last_attempt,
            "last_error": self.last_error,
            "last_code": self.last_code,
            "remote_mta": self.remote_mta,
            "dialed": list(self.dialed),
            "transport": self.transport,
            "hold": self.hold,
            "size": self.size,
            "created": self.created,
            "requiretls": self.requiretls,
            "tls_required_no": self.tls_required_no,
            "smtputf8": self.smtputf8,
            "message_id": self.message_id,
            "subject": self.subject,
        }


def _entry(r: Sequence[Any]) -> Entry:
    return Entry(
        id=r[0],
        msg_id=r[1],
        account=r[2],
        sender=r[3],
        recipient=r[4],
        domain=r[5],
        state=r[6],
        attempts=r[7],
        next_attempt=r[8],
        last_attempt=r[9],
        last_code=r[10],
        last_secode=r[11],
        last_error=r[12],
        remote_mta=r[13],
        dialed=tuple(json.loads(r[14])),
        transport=r[15],
        hold=bool(r[16]),
        delayed_dsn=bool(r[17]),
        created=r[18],
        size=r[19],
        smtputf8=bool(r[20]),
        eight_bit=bool(r[21]),
        requiretls=bool(r[22]),
        tls_required_no=bool(r[23]),
        message_id=r[24],
        subject=r[25],
        file=r[26],
    )


@dataclass(frozen=True, slots=True)
class Filter:
    """Which queue entries a command acts on; empty fields match everything.

    ``sender``/``recipient`` match when the address contains the text (case
    insensitive), as mox's queue filters do.
    """

    ids: tuple[int, ...] = ()
    account: str = ""
    sender: str = ""
    recipient: str = ""
    hold: bool | None = None
    transport: str | None = None
    include_failed: bool = False

    def where(self) -> tuple[str, list[Any]]:
        """SQL condition over ``rcpt r JOIN msg m`` and its arguments."""
        conds: list[str] = []
        args: list[Any] = []
        if not self.include_failed:
            conds.append("r.state = 0")
        if self.ids:
            conds.append("r.id IN (SELECT value FROM json_each(?))")
            args.append(json.dumps(list(self.ids)))
        if self.account:
            conds.append("m.account = ?")
            args.append(self.account)
        if self.sender:
            conds.append("instr(lower(m.sender), lower(?)) > 0")
            args.append(self.sender)
        if self.recipient:
            conds.append("instr(lower(r.address), lower(?)) > 0")
            args.append(self.recipient)
        if self.hold is not None:
            conds.append("r.hold = ?")
            args.append(int(self.hold))
        if self.transport is not None:
            conds.append("r.transport = ?")
            args.append(self.transport)
        return (" AND ".join(conds) or "1"), args


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt did for one recipient, as recorded by :meth:`QueueStore.record`."""

    id: int
    delivered: bool = False
    final: bool = False  # failed for good: the row moves to STATE_FAILED
    code: int = 0
    secode: str = ""
    error: str = ""
    remote_mta: str = ""
    dialed: tuple[str, ...] = ()
    delayed_dsn: bool = False  # mark the delayed DSN as sent


@dataclass(slots=True)
class _Prepared:
    data: bytes | None
    file: str | None
    size: int
    eight_bit: bool
    files: tuple[str, ...] = field(default_factory=tuple)


def migrate(conn: apsw.Connection) -> None:
    """Apply pending migrations of ``queue.db``."""
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        for n, sql in enumerate(MIGRATIONS, start=1):
            if n > current:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (n,))


def domain_of(address: str) -> str:
    """The grouping domain of a recipient address: ASCII, lower case."""
    from app.message.address import parse_smtp_path
    from app.message.errors import AddressError

    try:
        addr = parse_smtp_path(f"<{address}>", utf8=True)
    except AddressError as e:
        raise QueueError(f"invalid recipient {address!r}: {e.reason}") from None
    if addr is None:
        raise QueueError("empty recipient")
    return addr.domain.ascii.lower()


def _remove_msgs_without_rcpts(conn: apsw.Connection, msg_ids: Iterable[int]) -> list[str]:
    """Delete message rows left without recipients; returns their files."""
    ids = json.dumps(sorted(set(msg_ids)))
    rows = conn.execute(
        "SELECT id, file FROM msg WHERE id IN (SELECT value FROM json_each(?)) "
        "AND NOT EXISTS (SELECT 1 FROM rcpt WHERE rcpt.msg_id = msg.id)",
        (ids,),
    ).fetchall()
    if rows:
        conn.execute(
            "DELETE FROM msg WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps([r[0] for r in rows]),),
        )
    return [str(r[1]) for r in rows if r[1] is not None]


class QueueStore:
    """The queue database and message files of one server. Open with :meth:`open`."""

    def __init__(self, data_dir: Path, wconn: apsw.Connection, rconn: apsw.Connection) -> None:
        self.path = data_dir / "queue.db"
        self.files = MessageFiles(data_dir / "queue" / "msg")
        self.inline_threshold = INLINE_THRESHOLD
        self._executor = ThreadPoolExecutor(2, thread_name_prefix="queue")
        self._wconn = wconn
        self._rconn = rconn
        self._rlock = threading.Lock()
        self._committer = Committer(wconn, self._executor, Broadcaster(1), self.files.remove)
        self._closed = False

    @classmethod
    async def open(cls, data_dir: Path) -> "QueueStore":
        """Open (creating on first use) ``data_dir/queue.db``."""

        def _open() -> tuple[apsw.Connection, apsw.Connection]:
            (data_dir / "queue" / "msg").mkdir(parents=True, exist_ok=True)
            w = connect(data_dir / "queue.db")
            migrate(w)
            return w, connect(data_dir / "queue.db")

        w, r = await asyncio.to_thread(_open)
        return cls(data_dir, w, r)

    async def close(self) -> None:
        """Finish queued writes and close."""
        if self._closed:
            return
        self._closed = True
        await self._committer.wait_idle()

        def _close() -> None:
            self._rconn.close()
            self._wconn.close()

        await self._run(_close)
        self._executor.shutdown(wait=True)

    @property
    def commits(self) -> int:
        """Committed write transactions (for tests: group commit makes it < writes)."""
        return self._committer.commits

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _write(
        self, op: Callable[[apsw.Connection], Outcome[T]], files: tuple[str, ...] = ()
    ) -> T:
        if self._closed:
            raise StoreClosed("queue")
        result: T = await asyncio.shield(self._committer.submit(op, files))
        return result

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._rlock:
            return list(self._rconn.execute(sql, args).fetchall())

    async def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Run a read query on the read connection, in the executor."""
        if self._closed:
            raise StoreClosed("queue")
        return await self._run(self._read, sql, args)

    # --- enqueue ----------------------------------------------------------------

    def _prepare_path(self, src: Path, prefix: bytes) -> _Prepared:
        with open(src, "rb") as f:
            size = os.fstat(f.fileno()).st_size + len(prefix)
            if size < self.inline_threshold:
                data = fix_line_endings(prefix + f.read())
                return _Prepared(data, None, len(data), not data.isascii())
            name, size = self.files.write_stream(f, prefix)
        eight = False
        with open(self.files.path(name), "rb") as f:
            while chunk := f.read(CHUNK):
                if not chunk.isascii():
                    eight = True
                    break
        return _Prepared(None, name, size, eight, (name,))

    def _prepare_bytes(self, data: bytes) -> _Prepared:
        name = self.files.write_bytes(data)
        return _Prepared(None, name, len(data), not data.isascii(), (name,))

    async def _prepare(self, content: bytes | Path, prefix: bytes) -> _Prepared:
        if isinstance(content, Path):
            return await self._run(self._prepare_path, content, prefix)
        data = fix_line_endings(prefix + content)
        if len(data) < self.inline_threshold:
            return _Prepared(data, None, len(data), not data.isascii())
        return await self._run(self._prepare_bytes, data)

    async def enqueue(self, msg: NewMessage, now: float) -> list[int]:
        """Queue ``msg`` durably; returns the queue ids (one per recipient) after the
        transaction holding it committed. Raises QueueError for a bad recipient."""
        if not msg.recipients:
            raise QueueError("no recipients")
        domains = [domain_of(r) for r in msg.recipients]
        prep = await self._prepare(msg.content, msg.prefix)

        def op(conn: apsw.Connection) -> Outcome[list[int]]:
            conn.execute(
                "INSERT INTO msg (created, account, sender, size, smtputf8, eight_bit, "
                "requiretls, tls_required_no, message_id, subject, file, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    msg.account,
                    msg.sender,
                    prep.size,
                    int(msg.smtputf8),
                    int(prep.eight_bit),
                    int(msg.requiretls),
                    int(msg.tls_required_no and not msg.requiretls),
                    msg.message_id,
                    msg.subject,
                    prep.file,
                    prep.data,
                ),
            )
            mid = conn.last_insert_rowid()
            ids = []
            for addr, dom in zip(msg.recipients, domains, strict=True):
                conn.execute(
                    "INSERT INTO rcpt (msg_id, address, domain, next_attempt, transport, hold) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (mid, addr, dom, now, msg.transport, int(msg.hold)),
                )
                ids.append(conn.last_insert_rowid())
            return Outcome(ids)

        result: list[int] = await self._write(op, prep.files)
        return result

    # --- reads ------------------------------------------------------------------

    async def entries(self, flt: Filter = Filter(), limit: int = 0) -> list[Entry]:
        """Entries matching ``flt``, by queue id."""
        where, args = flt.where()
        sql = f"SELECT {_ENTRY_COLUMNS} FROM rcpt r JOIN msg m ON m.id = r.msg_id WHERE {where}"
        sql += " ORDER BY r.id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_entry(r) for r in await self.read(sql, args)]

    async def due(
        self,
        now: float,
        exclude: Iterable[int],
        limit: int = 2000,
        busy_domains: Iterable[str] = (),
    ) -> list[Entry]:
        """Queued, not held entries whose next attempt is at or before ``now``, leaving
        out ``exclude`` (running) and entries for ``busy_domains`` (at their limit)."""
        sql = (
            f"SELECT {_ENTRY_COLUMNS} FROM rcpt r JOIN msg m ON m.id = r.msg_id "
            "WHERE r.state = 0 AND r.hold = 0 AND r.next_attempt <= ? "
            "AND r.id NOT IN (SELECT value FROM json_each(?)) "
            "AND r.domain NOT IN (SELECT value FROM json_each(?)) "
            "ORDER BY r.next_attempt, r.id LIMIT ?"
        )
        args = (now, json.dumps(sorted(exclude)), json.dumps(sorted(busy_domains)), limit)
        rows = await self.read(sql, args)
        return [_entry(r) for r in rows]

    async def next_attempt(
        self, exclude: Iterable[int], busy_domains: Iterable[str] = ()
    ) -> float | None:
        """Earliest next attempt of a queued, not held entry not in ``exclude`` and not
        for one of ``busy_domains``."""
        rows = await self.read(
            "SELECT min(next_attempt) FROM rcpt WHERE state = 0 AND hold = 0 "
            "AND id NOT IN (SELECT value FROM json_each(?)) "
            "AND domain NOT IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(exclude)), json.dumps(sorted(busy_domains))),
        )
        v = rows[0][0] if rows else None
        return float(v) if v is not None else None

    async def failed(self) -> list[Entry]:
        """Entries that failed for good whose failure DSN is not sent yet."""
        sql = (
            f"SELECT {_ENTRY_COLUMNS} FROM rcpt r JOIN msg m ON m.id = r.msg_id "
            "WHERE r.state = 1 ORDER BY r.id"
        )
        return [_entry(r) for r in await self.read(sql)]

    async def content(self, entry: Entry) -> bytes | Path:
        """The stored message of ``entry``: bytes when inline, else its file."""
        if entry.file is not None:
            return self.files.path(entry.file)
        rows = await self.read("SELECT data FROM msg WHERE id = ?", (entry.msg_id,))
        if not rows:
            raise QueueError(f"message {entry.msg_id} is gone")
        return bytes(rows[0][0])

    async def read_content(self, entry: Entry, limit: int | None = None) -> bytes:
        """The stored message of ``entry`` as bytes (at most ``limit`` bytes)."""
        c = await self.content(entry)
        if isinstance(c, bytes):
            return c if limit is None else c[:limit]
        return await self._run(self.files.read, entry.file, 0, limit)

    # --- writes -----------------------------------------------------------------

    async def claim(self, next_attempts: dict[int, float], now: float) -> None:
        """Register an attempt before making it: attempts + 1, last attempt now, and
        the next attempt already set, so a crash mid-attempt does not retry at once."""

        def op(conn: apsw.Connection) -> Outcome[None]:
            for rid, nxt in next_attempts.items():
                conn.execute(
                    "UPDATE rcpt SET attempts = attempts + 1, last_attempt = ?, next_attempt = ? "
                    "WHERE id = ?",
                    (now, nxt, rid),
                )
            return Outcome(None)

        await self._write(op)

    async def record(self, results: Sequence[Result]) -> None:
        """Record an attempt's outcome in one commit: delivered recipients are removed,
        failed ones keep their error (final failures move to STATE_FAILED)."""

        def op(conn: apsw.Connection) -> Outcome[None]:
            msg_ids = set()
            for res in results:
                row = conn.execute("SELECT msg_id FROM rcpt WHERE id = ?", (res.id,)).fetchone()
                if row is None:
                    continue  # dropped meanwhile
                msg_ids.add(int(row[0]))
                if res.delivered:
                    conn.execute("DELETE FROM rcpt WHERE id = ?", (res.id,))
                    continue
                conn.execute(
                    "UPDATE rcpt SET state = ?, last_code = ?, last_secode = ?, last_error = ?, "
                    "remote_mta = ?, dialed = ?, delayed_dsn = max(delayed_dsn, ?) WHERE id = ?",
                    (
                        STATE_FAILED if res.final else STATE_QUEUED,
                        res.code,
                        res.secode,
                        res.error,
                        res.remote_mta,
                        json.dumps(list(res.dialed)),
                        int(res.delayed_dsn),
                        res.id,
                    ),
                )
            return Outcome(None, remove_files=_remove_msgs_without_rcpts(conn, msg_ids))

        await self._write(op)

    async def remove(self, ids: Iterable[int]) -> int:
        """Remove entries (delivered, dropped, or failed with their DSN sent)."""
        idlist = json.dumps(sorted(set(ids)))

        def op(conn: apsw.Connection) -> Outcome[int]:
            rows: list[Any] = conn.execute(
                "SELECT id, msg_id FROM rcpt WHERE id IN (SELECT value FROM json_each(?))",
                (idlist,),
            ).fetchall()
            conn.execute("DELETE FROM rcpt WHERE id IN (SELECT value FROM json_each(?))", (idlist,))
            files = _remove_msgs_without_rcpts(conn, (r[1] for r in rows))
            return Outcome(len(rows), remove_files=files)

        n: int = await self._write(op)
        return n

    async def update(self, flt: Filter, assignments: dict[str, Any]) -> list[int]:
        """Set columns (hold, next_attempt, transport, state, last_error) of the
        entries matching ``flt``; returns their ids."""
        allowed = {"hold", "next_attempt", "transport", "state", "last_error", "last_code"}
        if not set(assignments) <= allowed:
            raise ValueError(f"cannot set {sorted(set(assignments) - allowed)}")
        where, wargs = flt.where()
        sets = ", ".join(f"{k} = ?" for k in assignments)

        def op(conn: apsw.Connection) -> Outcome[list[int]]:
            found: list[Any] = conn.execute(
                f"SELECT r.id FROM rcpt r JOIN msg m ON m.id = r.msg_id WHERE {where}", wargs
            ).fetchall()
            ids = [int(r[0]) for r in found]
            conn.execute(
                f"UPDATE rcpt SET {sets} WHERE id IN (SELECT value FROM json_each(?))",
                [*assignments.values(), json.dumps(ids)],
            )
            return Outcome(ids)

        result: list[int] = await self._write(op)
        return result

    async def reschedule(self, flt: Filter, delta: float, base: float | None) -> list[int]:
        """Next attempt of matching entries: ``base + delta`` when base is given (mox's
        ``schedule -now``), else their current next attempt + ``delta``."""
        where, wargs = flt.where()

        def op(conn: apsw.Connection) -> Outcome[list[int]]:
            found: list[Any] = conn.execute(
                f"SELECT r.id FROM rcpt r JOIN msg m ON m.id = r.msg_id WHERE {where}", wargs
            ).fetchall()
            ids = json.dumps([int(r[0]) for r in found])
            if base is None:
                sql = "UPDATE rcpt SET next_attempt = next_attempt + ? WHERE id IN "
                args: list[Any] = [delta]
            else:
                sql = "UPDATE rcpt SET next_attempt = ? WHERE id IN "
                args = [base + delta]
            conn.execute(sql + "(SELECT value FROM json_each(?))", [*args, ids])
            return Outcome([int(r[0]) for r in found])

        result: list[int] = await self._write(op)
        return result

    async def remove_orphans(self) -> int:
        """Remove message files no row names (left by a crash before the commit)."""

        def scan() -> int:
            names = {str(r[0]) for r in self._read("SELECT file FROM msg WHERE file IS NOT NULL")}
            root = self.files.root
            orphans = []
            for sub in root.iterdir() if root.is_dir() else []:
                if sub.is_dir():
                    orphans += [
                        f"{sub.name}/{p.name}"
                        for p in sub.iterdir()
                        if f"{sub.name}/{p.name}" not in names
                    ]
            if orphans:
                self.files.remove(orphans)
            return len(orphans)

        return await self._run(scan)
