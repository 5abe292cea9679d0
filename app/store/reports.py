"""The reports database (``data/reports.db``): DMARC evaluations of incoming mail and
TLS results of outgoing delivery attempts.

Every message whose DMARC policy was evaluated on delivery leaves one row, whether
it was delivered, put in Junk or rejected: this is what DMARC aggregate reports
(RFC 7489 7.2, RFC 9990) are built from. Every MX host tried by an outgoing delivery
attempt leaves one row of ``tls_results`` with the policy that applied to it and the
TLS outcome: the raw material of SMTP TLS reports (RFC 8460 4). Losing the last rows
in a crash costs a slightly low count in one report, so commits are not fsynced
(synchronous=NORMAL).
"""

import json
import time
from collections.abc import Sequence
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
    # One row per MX host tried in one outgoing delivery attempt (RFC 8460 4.4 names).
    """
    CREATE TABLE tls_results (
        id INTEGER PRIMARY KEY,
        recorded REAL NOT NULL,           -- unix time of the attempt
        recipient_domain TEXT NOT NULL,   -- the domain delivered to
        policy_domain TEXT NOT NULL,      -- sts: recipient domain; tlsa: TLSA base domain
        policy_type TEXT NOT NULL,        -- sts, tlsa, no-policy-found
        policy_strings TEXT NOT NULL,     -- JSON list: policy lines / TLSA records
        mx_host_patterns TEXT NOT NULL,   -- JSON list: the sts policy's mx lines
        mx_host TEXT NOT NULL,            -- receiving-mx-hostname
        sending_ip TEXT NOT NULL,         -- sending-mta-ip ("" when unknown)
        receiving_ip TEXT NOT NULL,       -- receiving-ip ("" when unknown)
        success_count INTEGER NOT NULL,   -- successful sessions (0 or 1 per attempt)
        failure_count INTEGER NOT NULL,   -- failed sessions
        result_type TEXT NOT NULL,        -- RFC 8460 4.3 of the last detail, "" if none
        failure_reason_code TEXT NOT NULL,
        additional_info TEXT NOT NULL,
        details TEXT NOT NULL             -- JSON list: every failure detail, RFC 8460 keys
    );
    CREATE INDEX tls_results_domain ON tls_results (policy_domain, recorded);
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


@dataclass(frozen=True, slots=True)
class TLSFailure:
    """One RFC 8460 4.4 failure-details item (``result_type`` by its 4.3 name)."""

    result_type: str
    receiving_mx_hostname: str = ""
    receiving_ip: str = ""
    sending_mta_ip: str = ""
    failure_reason_code: str = ""
    additional_information: str = ""

    def as_json(self) -> dict[str, str]:
        """The item with the key names of RFC 8460 4.4, empty fields left out."""
        d = {
            "result-type": self.result_type,
            "receiving-mx-hostname": self.receiving_mx_hostname,
            "receiving-ip": self.receiving_ip,
            "sending-mta-ip": self.sending_mta_ip,
            "failure-reason-code": self.failure_reason_code,
            "additional-information": self.additional_information,
        }
        return {k: v for k, v in d.items() if v}

    @classmethod
    def from_json(cls, d: dict[str, str]) -> "TLSFailure":
        return cls(
            d.get("result-type", ""),
            d.get("receiving-mx-hostname", ""),
            d.get("receiving-ip", ""),
            d.get("sending-mta-ip", ""),
            d.get("failure-reason-code", ""),
            d.get("additional-information", ""),
        )


@dataclass(frozen=True, slots=True)
class TLSRecord:
    """The TLS outcome of one MX host in one delivery attempt, under one policy.

    Session counts follow RFC 8460 4.4: a session counts as a success or a failure;
    ``failures`` also holds details that did not fail the session (an MX host not in
    an MTA-STS policy in mode testing, unusable TLSA records)."""

    recipient_domain: str
    policy_domain: str
    policy_type: str  # "sts", "tlsa", "no-policy-found" (RFC 8460 4.4)
    policy_strings: tuple[str, ...] = ()
    mx_host_patterns: tuple[str, ...] = ()
    mx_host: str = ""
    sending_ip: str = ""
    receiving_ip: str = ""
    success_count: int = 0
    failure_count: int = 0
    failures: tuple[TLSFailure, ...] = ()
    recorded: float = 0.0

    @property
    def result_type(self) -> str:
        """The result type of the last detail (the one that ended a failed session)."""
        return self.failures[-1].result_type if self.failures else ""


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

    def add_tls_results(self, records: Sequence[TLSRecord]) -> None:
        """Keep the TLS results of one delivery attempt (one commit)."""
        now = time.time()
        with self.db:
            for r in records:
                last = r.failures[-1] if r.failures else TLSFailure("")
                self.db.execute(
                    "INSERT INTO tls_results (recorded, recipient_domain, policy_domain, "
                    "policy_type, policy_strings, mx_host_patterns, mx_host, sending_ip, "
                    "receiving_ip, success_count, failure_count, result_type, "
                    "failure_reason_code, additional_info, details) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.recorded or now,
                        r.recipient_domain,
                        r.policy_domain,
                        r.policy_type,
                        json.dumps(list(r.policy_strings)),
                        json.dumps(list(r.mx_host_patterns)),
                        r.mx_host,
                        r.sending_ip or last.sending_mta_ip,
                        r.receiving_ip or last.receiving_ip,
                        r.success_count,
                        r.failure_count,
                        last.result_type,
                        last.failure_reason_code,
                        last.additional_information,
                        json.dumps([f.as_json() for f in r.failures]),
                    ),
                )

    def add_tls_result(self, record: TLSRecord) -> None:
        """Keep the TLS result of one MX host of one delivery attempt."""
        self.add_tls_results((record,))

    def tls_results(
        self, policy_domain: str | None = None, since: float | None = None
    ) -> list[TLSRecord]:
        """Stored TLS results in the order recorded, optionally of one policy domain
        and from ``since`` (unix time) on."""
        q = (
            "SELECT recipient_domain, policy_domain, policy_type, policy_strings, "
            "mx_host_patterns, mx_host, sending_ip, receiving_ip, success_count, "
            "failure_count, details, recorded FROM tls_results"
        )
        where: list[str] = []
        args: list[Any] = []
        if policy_domain is not None:
            where.append("policy_domain = ?")
            args.append(policy_domain)
        if since is not None:
            where.append("recorded >= ?")
            args.append(since)
        if where:
            q += " WHERE " + " AND ".join(where)
        return [
            TLSRecord(
                recipient_domain=r[0],
                policy_domain=r[1],
                policy_type=r[2],
                policy_strings=tuple(json.loads(r[3])),
                mx_host_patterns=tuple(json.loads(r[4])),
                mx_host=r[5],
                sending_ip=r[6],
                receiving_ip=r[7],
                success_count=int(r[8]),
                failure_count=int(r[9]),
                failures=tuple(TLSFailure.from_json(d) for d in json.loads(r[10])),
                recorded=float(r[11]),
            )
            for r in self.db.execute(q + " ORDER BY id", tuple(args))
        ]
