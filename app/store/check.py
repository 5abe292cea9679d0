"""Consistency check and repair of an account directory (``pillarbox verifydata``).

The check recomputes everything the store keeps incrementally and compares it
with what is stored: file existence and sizes, inline content lengths, per-mailbox
counts, the quota total, UIDs below UIDNEXT, modseqs not above the account's.
It only reads. On a running server, a file being written for a delivery not yet
committed looks like an orphan; :func:`repair_account` therefore takes the
account lock and refuses to run while the account is open elsewhere.
"""

import enum
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from app.store import fts
from app.store.content import fsync_dir
from app.store.lockfile import lock_account
from app.store.schema import connect


class ProblemKind(enum.StrEnum):
    """What is wrong."""

    INTEGRITY = "integrity"  # SQLite's own check failed
    ORPHAN = "orphan"  # a file in msg/ that no message references
    MISSING_FILE = "missing-file"
    WRONG_SIZE = "wrong-size"  # stored size differs from on-disk / inline size
    MISSING_CONTENT = "missing-content"  # inline message without content row
    COUNT_MISMATCH = "count-mismatch"  # mailbox counts differ from recomputation
    QUOTA_MISMATCH = "quota-mismatch"  # account usage differs from recomputation
    UID_NOT_BELOW_UIDNEXT = "uid-not-below-uidnext"
    MODSEQ_TOO_HIGH = "modseq-too-high"
    FTS = "fts"  # full-text index inconsistent, or messages not indexed


@dataclass(frozen=True, slots=True)
class Problem:
    """One inconsistency; ``subject`` names the file, mailbox or message."""

    kind: ProblemKind
    subject: str
    detail: str


def _files_on_disk(msgdir: Path) -> set[str]:
    out: set[str] = set()
    if not msgdir.is_dir():
        return out
    for sub in msgdir.iterdir():
        if sub.is_dir():
            out |= {f"{sub.name}/{f.name}" for f in sub.iterdir()}
        else:
            out.add(sub.name)
    return out


def _check_messages(conn: apsw.Connection, msgdir: Path) -> list[Problem]:
    problems: list[Problem] = []
    referenced: set[str] = set()
    q = (
        "SELECT m.id, m.size, m.file, length(c.data) FROM message m "
        "LEFT JOIN content c ON c.message_id = m.id"
    )
    for mid, size, file, inline_len in conn.execute(q):
        subject = f"message {mid}"
        if file is None:
            if inline_len is None:
                problems.append(Problem(ProblemKind.MISSING_CONTENT, subject, "no content row"))
            elif inline_len != size:
                problems.append(
                    Problem(ProblemKind.WRONG_SIZE, subject, f"size {size}, content {inline_len}")
                )
            continue
        referenced.add(file)
        try:
            disk = (msgdir / file).stat().st_size
        except FileNotFoundError:
            problems.append(Problem(ProblemKind.MISSING_FILE, subject, f"file {file} missing"))
            continue
        if disk != size:
            problems.append(
                Problem(ProblemKind.WRONG_SIZE, subject, f"size {size}, file {file} has {disk}")
            )
    for orphan in sorted(_files_on_disk(msgdir) - referenced):
        problems.append(Problem(ProblemKind.ORPHAN, orphan, "file not referenced by a message"))
    return problems


_RECOMPUTE = """
SELECT mb.id, mb.name, mb.total, mb.unseen, mb.deleted, mb.size,
       count(m.id), coalesce(sum((m.flags & 1) = 0), 0), coalesce(sum((m.flags & 8) != 0), 0),
       coalesce(sum(m.size), 0)
FROM mailbox mb LEFT JOIN message m ON m.mailbox_id = mb.id
GROUP BY mb.id ORDER BY mb.id
"""


def _check_counts(conn: apsw.Connection) -> list[Problem]:
    problems: list[Problem] = []
    for _mbid, name, *vals in conn.execute(_RECOMPUTE):
        stored, actual = tuple(vals[:4]), tuple(vals[4:])
        if stored != actual:
            problems.append(
                Problem(
                    ProblemKind.COUNT_MISMATCH,
                    f"mailbox {name}",
                    f"total/unseen/deleted/size stored {stored}, recomputed {actual}",
                )
            )
    usage, count = conn.execute("SELECT usage, messages FROM account").fetchall()[0]
    real = conn.execute("SELECT coalesce(sum(size), 0), count(*) FROM message").fetchall()[0]
    if (usage, count) != tuple(real):
        problems.append(
            Problem(
                ProblemKind.QUOTA_MISMATCH,
                "account",
                f"usage/messages stored {(usage, count)}, recomputed {tuple(real)}",
            )
        )
    return problems


def _check_sequences(conn: apsw.Connection) -> list[Problem]:
    problems: list[Problem] = []
    (highest,) = conn.execute("SELECT modseq FROM account").fetchall()[0]
    for mid, uid, name, uidnext in conn.execute(
        "SELECT m.id, m.uid, mb.name, mb.uidnext FROM message m "
        "JOIN mailbox mb ON mb.id = m.mailbox_id WHERE m.uid >= mb.uidnext"
    ):
        problems.append(
            Problem(
                ProblemKind.UID_NOT_BELOW_UIDNEXT,
                f"message {mid}",
                f"uid {uid} in {name}, uidnext {uidnext}",
            )
        )
    checks: list[tuple[str, str]] = [
        (
            "message",
            "SELECT id, max(modseq, createseq) FROM message WHERE max(modseq, createseq) > ?",
        ),
        ("mailbox", "SELECT id, modseq FROM mailbox WHERE modseq > ?"),
        ("tombstone of mailbox", "SELECT mailbox_id, modseq FROM tombstone WHERE modseq > ?"),
    ]
    for what, sql in checks:
        for ident, modseq in conn.execute(sql, (highest,)):
            problems.append(
                Problem(
                    ProblemKind.MODSEQ_TOO_HIGH,
                    f"{what} {ident}",
                    f"modseq {modseq} above highest {highest}",
                )
            )
    return problems


def check_account(path: Path) -> list[Problem]:
    """Check an account directory; returns the problems found (empty: consistent)."""
    conn = connect(path / "index.db")
    try:
        problems: list[Problem] = []
        result: list[Any] = [r[0] for r in conn.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            problems += [Problem(ProblemKind.INTEGRITY, "index.db", str(r)) for r in result]
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
            problems.append(
                Problem(
                    ProblemKind.INTEGRITY, f"{table} {rowid}", f"dangling reference to {parent}"
                )
            )
        problems += _check_messages(conn, path / "msg")
        problems += _check_counts(conn)
        problems += _check_sequences(conn)
        problems += [Problem(ProblemKind.FTS, s, d) for s, d in fts.check(conn)]
        return problems
    finally:
        conn.close()


def repair_account(path: Path) -> list[Problem]:
    """Remove orphan files and recompute counts; returns what was repaired.

    Takes the account lock: raises AccountInUse while a server has the account open.
    Missing files and wrong sizes are reported by :func:`check_account` but not
    repaired here: they need a decision about the message (fixmsgsize, restore).
    """
    fd = lock_account(path)
    try:
        problems = check_account(path)
        orphans = [p for p in problems if p.kind is ProblemKind.ORPHAN]
        dirs: set[Path] = set()
        for p in orphans:
            f = path / "msg" / p.subject
            f.unlink(missing_ok=True)
            dirs.add(f.parent)
        for d in dirs:
            fsync_dir(d)
        counts = [
            p
            for p in problems
            if p.kind in (ProblemKind.COUNT_MISMATCH, ProblemKind.QUOTA_MISMATCH)
        ]
        if counts:
            _recompute_counts(path)
        return orphans + counts
    finally:
        os.close(fd)


def _recompute_counts(path: Path) -> None:
    conn = connect(path / "index.db")
    try:
        with conn:
            conn.execute(
                "UPDATE mailbox SET "
                "total = (SELECT count(*) FROM message WHERE mailbox_id = mailbox.id), "
                "unseen = (SELECT count(*) FROM message WHERE mailbox_id = mailbox.id "
                "AND flags & 1 = 0), "
                "deleted = (SELECT count(*) FROM message WHERE mailbox_id = mailbox.id "
                "AND flags & 8 != 0), "
                "size = (SELECT coalesce(sum(size), 0) FROM message WHERE mailbox_id = mailbox.id)"
            )
            conn.execute(
                "UPDATE account SET usage = (SELECT coalesce(sum(size), 0) FROM message), "
                "messages = (SELECT count(*) FROM message)"
            )
    finally:
        conn.close()
