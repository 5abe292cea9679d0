"""The reports database (``data/reports.db``): DMARC evaluations of incoming mail.

Every message whose DMARC policy was evaluated on delivery leaves one row, whether
it was delivered, put in Junk or rejected: this is what DMARC aggregate reports
(RFC 7489 7.2, RFC 9990) are built from. Losing the last rows in a crash costs a
slightly low count in one report, so commits are not fsynced (synchronous=NORMAL).
"""

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import apsw

from app.store.admin import apply_migrations

MIGRATIONS = [
    """
    CREATE TABLE dmarc_evaluations (
        id INTEGER PRIMARY KEY,
        evaluated REAL NOT NULL,          -- unix time
        policy_domain TEXT NOT NULL,      -- where the DMARC record was found
        from_domain TEXT NOT NULL,        -- RFC5322.From domain
        source_ip TEXT NOT NULL,
        envelope_from TEXT NOT NULL,      -- domain of MAIL FROM ("" for the null sender)
        envelope_to TEXT NOT NULL,        -- our recipient domain
        disposition TEXT NOT NULL,        -- none, quarantine, reject
        dmarc TEXT NOT NULL,              -- pass, fail, temperror, ...
        aligned_spf INTEGER NOT NULL,
        aligned_dkim INTEGER NOT NULL,
        spf TEXT NOT NULL,                -- JSON: domain, scope, result
        dkim TEXT NOT NULL                -- JSON list: domain, selector, result
    );
    CREATE INDEX dmarc_evaluations_domain ON dmarc_evaluations (policy_domain, evaluated);
    """,
]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One DMARC evaluation of one message, as an aggregate report needs it."""

    policy_domain: str
    from_domain: str
    source_ip: str
    envelope_from: str
    envelope_to: str
    disposition: str
    dmarc: str
    aligned_spf: bool
    aligned_dkim: bool
    spf: dict[str, str]
    dkim: list[dict[str, str]]
    evaluated: float = 0.0


class ReportsDB:
    """Access to reports.db; use from one thread at a time (an executor of one)."""

    def __init__(self, path: Path) -> None:
        self.db = apsw.Connection(str(path))
        self.db.set_busy_timeout(10_000)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        apply_migrations(self.db, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def add(self, ev: Evaluation) -> None:
        d = asdict(ev)
        d["evaluated"] = ev.evaluated or time.time()
        d["spf"] = json.dumps(ev.spf)
        d["dkim"] = json.dumps(ev.dkim)
        d["aligned_spf"] = int(ev.aligned_spf)
        d["aligned_dkim"] = int(ev.aligned_dkim)
        cols = ", ".join(d)
        with self.db:
            self.db.execute(
                f"INSERT INTO dmarc_evaluations ({cols}) VALUES ({', '.join(':' + k for k in d)})",
                d,
            )

    def evaluations(self, policy_domain: str | None = None) -> list[Evaluation]:
        q = (
            "SELECT policy_domain, from_domain, source_ip, envelope_from, envelope_to, "
            "disposition, dmarc, aligned_spf, aligned_dkim, spf, dkim, evaluated "
            "FROM dmarc_evaluations"
        )
        args: tuple[Any, ...] = ()
        if policy_domain is not None:
            q += " WHERE policy_domain = ?"
            args = (policy_domain,)
        return [
            Evaluation(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                bool(r[7]),
                bool(r[8]),
                json.loads(r[9]),
                json.loads(r[10]),
                r[11],
            )
            for r in self.db.execute(q + " ORDER BY id", args)
        ]
