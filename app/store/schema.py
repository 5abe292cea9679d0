"""Schema of an account's ``index.db`` and its numbered migrations.

Migration *n* runs once, in a transaction together with recording *n* in
``schema_version``; later features append migrations, never edit old ones.
"""

from pathlib import Path

import apsw

# Why the layout is as it is:
# - content lives in its own table so scans over ``message`` (SELECT, SEARCH on
#   flags) touch small rows only; ``structure`` is the last message column so
#   queries that do not ask for it skip its overflow pages.
# - expunged messages leave a tombstone (mailbox, uid, modseq) for QRESYNC VANISHED.
# - ``account`` is a single row holding the account-wide modseq and UIDVALIDITY
#   counters and the exact quota usage, updated in the same transaction as the
#   messages they describe.
_MIGRATION_1 = """
CREATE TABLE account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    next_uidvalidity INTEGER NOT NULL,
    usage INTEGER NOT NULL,
    messages INTEGER NOT NULL
);
CREATE TABLE mailbox (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    special_use TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    unseen INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE subscription (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE message (
    id INTEGER PRIMARY KEY,
    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id),
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    createseq INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords TEXT NOT NULL,
    received INTEGER NOT NULL,  -- microseconds since the epoch, UTC
    size INTEGER NOT NULL,
    file TEXT UNIQUE,
    message_id TEXT NOT NULL,
    in_reply_to TEXT NOT NULL,
    refs TEXT NOT NULL,
    subject_base TEXT NOT NULL,
    date TEXT,
    structure TEXT NOT NULL,
    UNIQUE (mailbox_id, uid)
);
CREATE INDEX message_mailbox_modseq ON message (mailbox_id, modseq);
CREATE INDEX message_msgid ON message (message_id) WHERE message_id != '';
CREATE TABLE content (
    message_id INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
    data BLOB NOT NULL
);
CREATE TABLE tombstone (
    mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX tombstone_modseq ON tombstone (mailbox_id, modseq);
"""

# Migration 2: the full-text index (see app.store.fts for its design). The SQL is
# kept here, frozen, so later edits to app.store.fts cannot change it.
_MIGRATION_2 = """
CREATE VIRTUAL TABLE message_fts_hdr USING fts5(
    header, hfrom, hto, hcc, hbcc, subject,
    content='', contentless_delete=1, tokenize='trigram', detail=full
);
CREATE VIRTUAL TABLE message_fts_body USING fts5(
    body, content='', contentless_delete=1, tokenize='trigram', detail=none
);
CREATE TABLE message_text (
    message_id INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
    text_id INTEGER NOT NULL
);
CREATE INDEX message_text_text ON message_text (text_id);
-- Covering index for SEARCH on flags, sizes, internal dates and modseqs: a scan of
-- 5,000 entries of ~30 bytes instead of 5,000 rows that carry the structure JSON.
CREATE INDEX message_search ON message (mailbox_id, flags, uid, size, received, modseq);
"""

MIGRATIONS: tuple[str, ...] = (_MIGRATION_1, _MIGRATION_2)


def connect(path: Path, *, readonly: bool = False, cache_kib: int = 2048) -> apsw.Connection:
    """Open ``index.db`` with the pragmas every connection needs.

    WAL lets readers run while the committer writes; ``synchronous=FULL`` makes
    every COMMIT fsync the WAL, which is what an acknowledgement relies on.
    """
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE
    if not readonly:
        flags |= apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(str(path), flags=flags)
    conn.set_busy_timeout(10_000)
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA cache_size=-{int(cache_kib)}")  # page cache per connection
    return conn


def schema_version(conn: apsw.Connection) -> int:
    """Highest applied migration, 0 for an empty database."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(conn: apsw.Connection) -> bool:
    """Apply pending migrations; returns whether the database was new."""
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        current = schema_version(conn)
        for n, sql in enumerate(MIGRATIONS, start=1):
            if n <= current:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (n,))
    return current == 0
