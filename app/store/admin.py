"""The admin database (``data/admin.db``): dynamic settings and credentials.

Changes are validated by :class:`app.config.dynamic.DynamicBuilder` against the
current settings and written in one transaction, so the database never holds a
half-applied change. Credentials live in their own table and are never exported.
Writes are rare (an administrator's change); the running server applies them in an
executor and then swaps its in-memory :class:`~app.config.dynamic.Dynamic` snapshot.
"""

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import apsw

from app.config.dynamic import (
    AccountSettings,
    AliasSettings,
    DomainSettings,
    Dynamic,
    DynamicBuilder,
    DynamicError,
)
from app.dns.domain import Domain

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DKIMKey:
    """A DKIM signing key of a domain."""

    domain: str
    selector: str
    algorithm: str  # "rsa" or "ed25519"
    private_key: str  # PKCS#8 PEM
    created: float


MIGRATIONS: list[str] = [
    # 1: dynamic settings, credentials, key/value settings
    """
    CREATE TABLE domains (
        name TEXT PRIMARY KEY,            -- ASCII (A-label) form
        description TEXT NOT NULL DEFAULT '',
        client_settings_domain TEXT NOT NULL DEFAULT '',
        subaddress_separators TEXT NOT NULL DEFAULT '["+"]',
        localpart_case_sensitive INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        full_name TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        quota INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE addresses (
        address TEXT PRIMARY KEY,         -- canonical: local part case-folded unless configured
        account TEXT NOT NULL
    );
    CREATE TABLE aliases (
        address TEXT PRIMARY KEY,
        post_public INTEGER NOT NULL DEFAULT 0,
        list_members INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE alias_members (
        alias TEXT NOT NULL,
        position INTEGER NOT NULL,
        member TEXT NOT NULL,
        PRIMARY KEY (alias, position)
    );
    CREATE TABLE credentials (
        account TEXT PRIMARY KEY,
        data TEXT NOT NULL,               -- serialized app.auth credentials, no plaintext
        changed REAL NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: web sessions (app.store.sessions): only a hash of the session id is stored
    """
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,         -- sha256 hex of the cookie value
        kind TEXT NOT NULL,               -- "admin" or "account"
        subject TEXT NOT NULL,            -- account name; "" for the admin
        csrf TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL
    );
    CREATE INDEX sessions_expires ON sessions(expires);
    """,
    # 3: DKIM signing keys per domain (secrets: never exported with the settings)
    """
    CREATE TABLE dkim_keys (
        domain TEXT NOT NULL,             -- ASCII form
        selector TEXT NOT NULL,
        algorithm TEXT NOT NULL,          -- "rsa" or "ed25519"
        private_key TEXT NOT NULL,        -- PKCS#8 PEM
        created REAL NOT NULL,
        PRIMARY KEY (domain, selector)
    );
    """,
]


class AdminDB:
    """Access to ``admin.db``. Not thread-safe: use one object per thread."""

    def __init__(self, path: Path, *, cache_kib: int = 2048) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = apsw.Connection(str(path))
        self.db.set_busy_timeout(10_000)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        for n in apply_migrations(self.db, MIGRATIONS):
            log.info("admin database migrated", extra={"version": n})

    # Reading.

    def snapshot(self) -> Dynamic:
        """All dynamic settings as one immutable value."""
        b = DynamicBuilder()
        with self.db:  # one read transaction: a consistent view
            for name, desc, csd, seps, lcs in self.db.execute(
                "SELECT name, description, client_settings_domain, subaddress_separators, "
                "localpart_case_sensitive FROM domains"
            ):
                b.domains[name] = DomainSettings(
                    Domain.parse(name), desc, csd, tuple(json.loads(seps)), bool(lcs)
                )
            for name, full, desc, quota in self.db.execute(
                "SELECT name, full_name, description, quota FROM accounts"
            ):
                b.accounts[name] = AccountSettings(name, full, desc, quota)
            for address, account in self.db.execute("SELECT address, account FROM addresses"):
                b.addresses[address] = account
            members: dict[str, list[str]] = {}
            for alias, member in self.db.execute(
                "SELECT alias, member FROM alias_members ORDER BY alias, position"
            ):
                members.setdefault(alias, []).append(member)
            for address, pub, lst in self.db.execute(
                "SELECT address, post_public, list_members FROM aliases"
            ):
                b.aliases[address] = AliasSettings(
                    address, tuple(members.get(address, ())), bool(pub), bool(lst)
                )
        return b.build()

    # Changing: one validated change, written whole.

    def change(self, fn: Callable[[DynamicBuilder], T]) -> T:
        """Apply ``fn`` to a builder over the current settings and store the result.

        ``fn`` raises :class:`DynamicError` for an invalid change; nothing is written
        then. The read and the write are one immediate transaction, so concurrent
        writers (the CLI and a running server) cannot lose each other's changes.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            b = DynamicBuilder(self.snapshot())
            result = fn(b)
            self._write(b.build())
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return result

    def _write(self, d: Dynamic) -> None:
        ex = self.db.execute
        for table in ("domains", "accounts", "addresses", "aliases", "alias_members"):
            ex(f"DELETE FROM {table}")
        for ds in d.domains.values():
            ex(
                "INSERT INTO domains VALUES (?, ?, ?, ?, ?)",
                (
                    ds.name.ascii,
                    ds.description,
                    ds.client_settings_domain,
                    json.dumps(list(ds.subaddress_separators)),
                    int(ds.localpart_case_sensitive),
                ),
            )
        for a in d.accounts.values():
            ex(
                "INSERT INTO accounts VALUES (?, ?, ?, ?)",
                (a.name, a.full_name, a.description, a.quota),
            )
        for address, account in d.addresses.items():
            ex("INSERT INTO addresses VALUES (?, ?)", (address, account))
        for al in d.aliases.values():
            ex(
                "INSERT INTO aliases VALUES (?, ?, ?)",
                (al.address, int(al.post_public), int(al.list_members)),
            )
            for i, m in enumerate(al.members):
                ex("INSERT INTO alias_members VALUES (?, ?, ?)", (al.address, i, m))
        # Credentials of removed accounts, and keys of removed domains, go with them.
        ex("DELETE FROM credentials WHERE account NOT IN (SELECT name FROM accounts)")
        ex("DELETE FROM dkim_keys WHERE domain NOT IN (SELECT name FROM domains)")

    def replace_all(self, d: Dynamic) -> None:
        """Replace every dynamic setting (``config import``); credentials are kept."""
        with self.db:
            self._write(d)

    # Credentials and settings.

    def set_credentials(self, account: str, data: str) -> None:
        with self.db:
            if (
                self.db.execute("SELECT 1 FROM accounts WHERE name = ?", (account,)).fetchone()
                is None
            ):
                raise DynamicError(f"no such account: {account}")
            self.db.execute(
                "INSERT INTO credentials VALUES (?, ?, ?) ON CONFLICT(account) DO UPDATE "
                "SET data = excluded.data, changed = excluded.changed",
                (account, data, time.time()),
            )

    def credentials(self, account: str) -> str | None:
        row = self.db.execute(
            "SELECT data FROM credentials WHERE account = ?", (account,)
        ).fetchone()
        return None if row is None else str(row[0])

    # DKIM keys.

    def dkim_keys(self, domain: str | None = None) -> list[DKIMKey]:
        """Signing keys, oldest first, of one domain or all."""
        q = "SELECT domain, selector, algorithm, private_key, created FROM dkim_keys"
        args: tuple[str, ...] = ()
        if domain is not None:
            q += " WHERE domain = ?"
            args = (domain,)
        return [DKIMKey(*row) for row in self.db.execute(q + " ORDER BY created, selector", args)]

    def add_dkim_key(self, key: DKIMKey) -> None:
        with self.db:
            if (
                self.db.execute("SELECT 1 FROM domains WHERE name = ?", (key.domain,)).fetchone()
                is None
            ):
                raise DynamicError(f"no such domain: {key.domain}")
            if (
                self.db.execute(
                    "SELECT 1 FROM dkim_keys WHERE domain = ? AND selector = ?",
                    (key.domain, key.selector),
                ).fetchone()
                is not None
            ):
                raise DynamicError(f"selector {key.selector} exists for {key.domain}")
            self.db.execute(
                "INSERT INTO dkim_keys VALUES (?, ?, ?, ?, ?)",
                (key.domain, key.selector, key.algorithm, key.private_key, key.created),
            )

    def remove_dkim_key(self, domain: str, selector: str) -> None:
        with self.db:
            self.db.execute(
                "DELETE FROM dkim_keys WHERE domain = ? AND selector = ?", (domain, selector)
            )
            if self.db.changes() == 0:
                raise DynamicError(f"no selector {selector} for {domain}")

    def set_setting(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                "SET value = excluded.value",
                (key, value),
            )

    def setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])


def apply_migrations(db: apsw.Connection, migrations: Sequence[str]) -> list[int]:
    """Run the migrations a database has not had yet, in one transaction; returns the
    numbers applied. ``schema_version`` holds the number of the last one."""
    applied = []
    with db:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = int(row[0]) if row else 0
        if row is None:
            db.execute("INSERT INTO schema_version VALUES (0)")
        for n, sql in enumerate(migrations[version:], start=version + 1):
            db.execute(sql)
            db.execute("UPDATE schema_version SET version = ?", (n,))
            applied.append(n)
    return applied
