"""The services object: long-lived things shared by every listener and session.

It is built by ``app.serve`` and handed to each service's starter, so protocol
servers and web interfaces reach configuration, stores and helpers without
importing the supervisor, and tests can build two differently configured servers
in one process.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.auth.base import AuthError
from app.auth.connlimit import ConnectionLimiter
from app.auth.ratelimit import FailedAuthLimiter
from app.config.dynamic import Dynamic
from app.config.static import Config
from app.dns.resolver import Resolver
from app.metrics import Metrics
from app.store.admin import AdminDB
from app.store.admincmds import DKIMSet
from app.store.registry import Accounts
from app.store.reports import Evaluation, ReportsDB, TLSRecord
from app.tls.certs import CertStore

if TYPE_CHECKING:  # app.queue is a layer above; only the type is needed here
    from app.auth.credentials import Credentials
    from app.queue.service import QueueService


log = logging.getLogger(__name__)


@dataclass
class Services:
    """Long-lived objects shared by every listener and session.

    ``dynamic`` is replaced (never mutated) when settings change, so a session that
    read it once sees a consistent snapshot.
    """

    config: Config
    data_dir: Path
    admin: AdminDB
    admin_executor: ThreadPoolExecutor
    cpu_executor: ThreadPoolExecutor
    accounts: Accounts
    dynamic: Dynamic
    resolver: Resolver = field(default_factory=Resolver)
    dkim: DKIMSet = field(default_factory=DKIMSet)  # signing keys, reloaded with settings
    reports: ReportsDB | None = None  # DMARC evaluations, TLS results; on the admin thread
    # Per-server state of a protocol service, by service ("imap": recent marks, ...).
    protocol_state: dict[str, Any] = field(default_factory=dict)
    certs: dict[str, CertStore] = field(default_factory=dict)  # by listener name
    started: float = 0.0
    tasks: set["asyncio.Task[Any]"] = field(default_factory=set)
    # Connection admission, shared by every protocol listener (use on the loop).
    connections: ConnectionLimiter = field(
        default_factory=lambda: ConnectionLimiter(max_total=2000)
    )
    # Hooks into the server, for services that change settings (the web interface):
    # after an admin-database change, and to apply a new static configuration text.
    settings_changed: Callable[[], Awaitable[None]] | None = None
    reconfigure: Callable[[str], Awaitable[None]] | None = None
    # Failed-login counts per IP class, shared by every protocol (use on the loop).
    auth_limiter: FailedAuthLimiter = field(default_factory=FailedAuthLimiter)
    metrics: Metrics = field(default_factory=Metrics)
    # Threads for the web interfaces' WSGI handlers; created by app.web on first use.
    web_executor: ThreadPoolExecutor | None = None
    # The outgoing queue (app.queue.service), started by app.serve; None when not running.
    queue: "QueueService | None" = None

    async def admin_call(self, fn: Callable[[AdminDB], Any]) -> Any:
        """Run ``fn`` with the admin database on its own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.admin_executor, fn, self.admin)

    async def credentials(self, account: str | None) -> "Credentials | None":
        """The stored credentials of ``account``; None when unknown or unreadable (logged),
        which a login treats like a wrong password."""
        if account is None:
            return None
        text = await self.admin_call(lambda db: db.credentials(account))
        if text is None:
            return None
        from app.auth.credentials import Credentials  # with hashlib: on the first login

        try:
            return Credentials.from_json(text)
        except AuthError as e:
            log.error("stored credentials unusable", extra={"account": account, "err": e.detail})
            return None

    async def record_evaluation(self, ev: Evaluation) -> None:
        """Keep a DMARC evaluation for aggregate reports (on the admin thread)."""
        reports = self.reports
        if reports is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.admin_executor, reports.add, ev)

    async def record_tls_results(self, records: Sequence[TLSRecord]) -> None:
        """Keep the TLS results of one outgoing delivery attempt for TLS reports
        (RFC 8460), on the admin thread."""
        reports = self.reports
        if reports is not None and records:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.admin_executor, reports.add_tls_results, records)

    def quota_for(self, account: str) -> int | None:
        """The byte limit of ``account`` under the current settings (None: unlimited)."""
        if account not in self.dynamic.accounts:
            return None
        return self.dynamic.effective_quota(account, self.config.quota.default)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> "asyncio.Task[Any]":
        """Run a session or background task that graceful shutdown waits for."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
