"""TLS results of delivery attempts are kept in reports.db for SMTP TLS reports
(RFC 8460): the queue (real scheduler, real attempt) delivers to a real Pillarbox
server and records the policy and outcome of every MX host tried.

:class:`RealQueue` (the queue service with the real attempt, an injected clock and a
real reports.db) is shared with ``test_peers``.
"""

import functools
import random
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import apsw
import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.queue.attempt import Timeouts, attempt
from app.queue.mtasts import MTASTSCache, PolicyFetcher
from app.queue.service import QueueService
from app.queue.store import Entry, NewMessage
from app.queue.tlsrpt import PolicyType, ResultType
from app.services import Services
from app.store.reports import MIGRATIONS, Evaluation, ReportsDB, TLSFailure, TLSRecord
from tests.mailserver import MailServer, start
from tests.queue.fakes import FakeAccounts, FakeClock, config, fake_services
from tests.queue.servers import message, receiver_server
from tests.queue.test_client_peer import Cert, make_ca, make_leaf, trust
from tests.queue.test_mtasts import PolicyServer

TIMEOUTS = Timeouts(
    connect=5, greeting=10, command=10, tls=10, data_init=10, data_block=10, data_end=20
)
RESULT_TYPES = {str(t) for t in ResultType}


class RealQueue:
    """A :class:`QueueService` with the real attempt (SMTP client, MX, MTA-STS),
    asking ``dns`` only, on an injected clock, recording TLS results in a real
    reports.db through ``Services.record_tls_results``."""

    def __init__(
        self,
        directory: Path,
        dns: LoopbackDNSServer,
        queue_config: str,
        *,
        timeouts: Timeouts = TIMEOUTS,
        max_attempts: int = 8,
        **attempt_kw: Any,
    ) -> None:
        self.directory = directory
        cfg = config(f"max_attempts = {max_attempts}\n" + queue_config)
        svc, self.accounts = fake_services(directory, cfg)
        self.reports = ReportsDB(directory / "reports.db")
        self.executor = ThreadPoolExecutor(1)
        raw: Any = svc
        raw.resolver = Resolver([dns.address], timeout=2.0, cache_size=0)
        raw.reports = self.reports
        raw.admin_executor = self.executor
        raw.record_tls_results = functools.partial(Services.record_tls_results, svc)
        self.clock = FakeClock()
        attempt_kw.setdefault("mtasts_cache", MTASTSCache())
        fn = functools.partial(attempt, timeouts=timeouts, **attempt_kw)
        self.queue = QueueService(svc, attempt=fn, clock=self.clock, rng=random.Random(7))

    async def start(self) -> "RealQueue":
        await self.queue.start()
        deps = self.queue.scheduler.deps
        if deps.record_tls is None:  # until app.queue.service passes it itself
            svc = cast(Any, self.queue.svc)
            self.queue.scheduler.deps = replace(deps, record_tls=svc.record_tls_results)
        await self.queue.scheduler.wait_idle()
        return self

    async def stop(self) -> None:
        await self.queue.stop()
        self.executor.submit(self.reports.close).result()
        self.executor.shutdown()

    async def enqueue(self, rcpts: list[str], subject: str, **kw: Any) -> list[int]:
        """Queue a small message from you@example.org; returns when it was attempted."""
        msg = message(subject, rcpts[0])
        new = NewMessage("you", "you@example.org", tuple(rcpts), msg, subject=subject, **kw)
        ids = await self.queue.enqueue(new)
        await self.queue.scheduler.wait_idle()
        return ids

    async def entries(self) -> list[Entry]:
        return await self.queue.store.entries()

    async def retry_now(self) -> None:
        """Move the clock to the earliest next attempt and let it happen."""
        entries = await self.entries()
        assert entries, "nothing queued"
        self.clock.t = max(self.clock.t, min(e.next_attempt for e in entries))
        self.queue.scheduler.kick()
        await self.queue.scheduler.wait_idle()

    def tls_results(self) -> list[TLSRecord]:
        return self.executor.submit(self.reports.tls_results).result()

    @property
    def dsns(self) -> FakeAccounts:
        return self.accounts


def route_to(port: int) -> str:
    """Queue config: direct delivery (MX lookups as usual) to ``port`` instead of 25."""
    return (
        f'[queue.transports.test]\nkind = "direct"\nport_override = {port}\n'
        '[queue.routes.all]\ntransport = "test"\n'
    )


def mx(dns: LoopbackDNSServer, domain: str = "remote.example") -> None:
    dns.add(domain, "MX", f"10 mx.{domain}.")
    dns.add(f"mx.{domain}", "A", "127.0.0.1")


# --- reports.db ----------------------------------------------------------------------


def test_reports_db_keeps_tls_results_and_migrates(tmp_path: Path) -> None:
    db = ReportsDB(tmp_path / "reports.db")
    try:
        ok = TLSRecord(
            "d.example",
            "d.example",
            "sts",
            ("version: STSv1", "mode: enforce"),
            ("mx.d.example",),
            "mx.d.example",
            success_count=1,
            recorded=100.0,
        )
        bad = TLSRecord(
            "e.example",
            "mx.e.example",
            "no-policy-found",
            mx_host="mx.e.example",
            failure_count=1,
            failures=(
                TLSFailure("starttls-not-supported", "mx.e.example", "127.0.0.1", "", "x", "y"),
            ),
            recorded=200.0,
        )
        db.add_tls_result(ok)
        db.add_tls_results([bad])
        assert db.tls_results() == [ok, replace(bad, receiving_ip="127.0.0.1")]
        assert db.tls_results("d.example") == [ok]
        assert db.tls_results(since=150.0)[0].result_type == "starttls-not-supported"
        row = db.db.execute(
            "SELECT result_type, failure_reason_code, additional_info, details FROM tls_results "
            "WHERE policy_domain = 'mx.e.example'"
        ).fetchall()
        assert row[0][:3] == ("starttls-not-supported", "x", "y")
        assert '"result-type": "starttls-not-supported"' in str(row[0][3])
    finally:
        db.close()
    # Reopening applies nothing twice.
    again = ReportsDB(tmp_path / "reports.db")
    try:
        assert len(again.tls_results()) == 2 and again.evaluations() == []
    finally:
        again.close()


def test_reports_db_of_version_1_gets_the_tls_table(tmp_path: Path) -> None:
    old = apsw.Connection(str(tmp_path / "reports.db"))
    with old:
        old.execute("CREATE TABLE schema_version (version INTEGER)")
        old.execute("INSERT INTO schema_version VALUES (1)")
        old.execute(MIGRATIONS[0])
    old.close()
    ev = Evaluation(
        "d.example",
        "d.example",
        "127.0.0.1",
        "",
        "example.org",
        "none",
        "pass",
        True,
        False,
        {"domain": "d.example", "result": "pass"},
        [],
        1.0,
    )
    db = ReportsDB(tmp_path / "reports.db")
    try:
        db.add(ev)
        db.add_tls_result(TLSRecord("d.example", "d.example", "no-policy-found", recorded=2.0))
        assert db.evaluations() == [ev] and len(db.tls_results()) == 1
        version = db.db.execute("SELECT version FROM schema_version").fetchall()
        assert version == [(len(MIGRATIONS),)]
    finally:
        db.close()


# --- through the queue to a real receiving server ------------------------------------


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    """A real Pillarbox server for remote.example (self-signed certificate)."""
    server = start(receiver_server(tmp_path_factory.mktemp("receiver")))
    yield server
    assert server.stop() == 0
    assert server.proc is not None and server.proc.tracebacks() == []


@pytest.fixture(scope="module")
def ca() -> Cert:
    return make_ca()


@pytest.fixture
async def queue(
    tmp_path: Path, dns_server: LoopbackDNSServer, receiver: MailServer
) -> AsyncIterator[RealQueue]:
    mx(dns_server)
    q = await RealQueue(tmp_path, dns_server, route_to(receiver.ports["smtp"])).start()
    yield q
    await q.stop()


async def test_delivery_records_no_policy_success(queue: RealQueue, receiver: MailServer) -> None:
    await queue.enqueue(["friend@remote.example"], "tls ok")
    assert await queue.entries() == []
    assert any(b"Subject: tls ok" in m for m in receiver.messages("other"))
    (rec,) = queue.tls_results()
    assert rec.policy_type == str(PolicyType.NO_POLICY_FOUND) == "no-policy-found"
    assert rec.policy_domain == "mx.remote.example" and rec.mx_host == "mx.remote.example"
    assert rec.recipient_domain == "remote.example"
    assert (rec.success_count, rec.failure_count, rec.result_type) == (1, 0, "")
    assert rec.recorded == queue.clock.now()


@pytest.fixture
def policy_server(ca: Cert, tmp_path: Path) -> Iterator[PolicyServer]:
    s = PolicyServer(make_leaf(ca, ["mta-sts.remote.example"]), ca, tmp_path)
    yield s
    s.stop()


@pytest.mark.parametrize(
    ("policy_mx", "result_type", "reason"),
    [
        # The receiver's certificate is self-signed: not PKIX-valid (RFC 8461 4.2).
        ("mx.remote.example", ResultType.CERTIFICATE_NOT_TRUSTED, ""),
        # The MX host is not in the policy: never contacted (RFC 8461 4.1).
        ("mx.elsewhere.example", ResultType.VALIDATION_FAILURE, "mtasts-policy-mx-mismatch"),
    ],
)
async def test_mtasts_enforce_failure_records_failure_row(
    tmp_path: Path,
    dns_server: LoopbackDNSServer,
    receiver: MailServer,
    ca: Cert,
    policy_server: PolicyServer,
    policy_mx: str,
    result_type: ResultType,
    reason: str,
) -> None:
    mx(dns_server)
    dns_server.add("mta-sts.remote.example", "A", "127.0.0.1")
    dns_server.add("_mta-sts.remote.example", "TXT", "v=STSv1; id=20250101")
    policy = f"version: STSv1\nmode: enforce\nmx: {policy_mx}\nmax_age: 86400\n"
    policy_server.responses["mta-sts.remote.example"] = (200, "text/plain", policy.encode())
    q = await RealQueue(
        tmp_path,
        dns_server,
        route_to(receiver.ports["smtp"]),
        mtasts_cache=MTASTSCache(PolicyFetcher(port=policy_server.port, context=trust(ca))),
        pkix_context=trust(ca),
    ).start()
    try:
        before = len(receiver.messages("other"))
        await q.enqueue(["friend@remote.example"], f"sts {result_type}")
        (entry,) = await q.entries()  # temporary: kept for the next attempt
        assert entry.attempts == 1 and entry.last_code == 451
        assert len(receiver.messages("other")) == before
        (rec,) = q.tls_results()
        assert rec.policy_type == "sts" and rec.policy_domain == "remote.example"
        assert rec.policy_strings == tuple(policy.splitlines())
        assert rec.mx_host_patterns == (policy_mx,) and rec.mx_host == "mx.remote.example"
        assert (rec.success_count, rec.failure_count) == (0, 1)
        assert rec.result_type == result_type and rec.result_type in RESULT_TYPES
        (detail,) = rec.failures
        assert detail.receiving_mx_hostname == "mx.remote.example"
        assert detail.failure_reason_code == reason
        assert q.dsns.delivered == []  # no DSN yet
        # The next attempt fails the same way and adds its own row.
        await q.retry_now()
        assert [r.result_type for r in q.tls_results()] == [result_type] * 2
        first, second = q.tls_results()
        assert second.recorded > first.recorded
    finally:
        await q.stop()
