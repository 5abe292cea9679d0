"""Web login sessions in the admin database (table ``sessions``, migration 2).

The cookie carries a random 256-bit id; the database keeps only its SHA-256, so a
copy of ``admin.db`` does not hand out live sessions. A session has a kind
(``admin`` or ``account``), a subject (the account name), a CSRF token and an
absolute expiry that is pushed forward while it is used. Functions take an
:class:`~app.store.admin.AdminDB` and run on the admin database's thread.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass

from app.store.admin import AdminDB

SESSION_LIFETIME_S = 12 * 3600
# Extend the expiry at most this often, to keep writes rare.
EXTEND_AFTER_S = 300


@dataclass(frozen=True, slots=True)
class Session:
    kind: str
    subject: str
    csrf: str
    expires: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def create(
    db: AdminDB, kind: str, subject: str, *, lifetime: float = SESSION_LIFETIME_S
) -> tuple[str, Session]:
    """Start a session; returns the cookie value (never stored) and the session."""
    sid = secrets.token_urlsafe(32)
    now = time.time()
    s = Session(kind, subject, secrets.token_urlsafe(24), now + lifetime)
    with db.db:
        db.db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
        db.db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
            (_hash(sid), s.kind, s.subject, s.csrf, now, s.expires),
        )
    return sid, s


def lookup(
    db: AdminDB, session_id: str, kind: str, *, lifetime: float = SESSION_LIFETIME_S
) -> Session | None:
    """The live session of ``kind`` for a cookie value, or None; extends its expiry."""
    if not session_id or len(session_id) > 200:
        return None
    now = time.time()
    row = db.db.execute(
        "SELECT kind, subject, csrf, expires FROM sessions WHERE id_hash = ?",
        (_hash(session_id),),
    ).fetchone()
    if row is None or row[0] != kind or float(row[3]) < now:
        return None
    s = Session(str(row[0]), str(row[1]), str(row[2]), float(row[3]))
    if s.expires - now < lifetime - EXTEND_AFTER_S:
        with db.db:
            db.db.execute(
                "UPDATE sessions SET expires = ? WHERE id_hash = ?",
                (now + lifetime, _hash(session_id)),
            )
    return s


def delete(db: AdminDB, session_id: str) -> None:
    """End one session (logout)."""
    with db.db:
        db.db.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(session_id),))


def delete_subject(db: AdminDB, kind: str, subject: str) -> int:
    """End every session of one subject (after a password change elsewhere)."""
    with db.db:
        db.db.execute("DELETE FROM sessions WHERE kind = ? AND subject = ?", (kind, subject))
        n = int(db.db.changes())
    return n
