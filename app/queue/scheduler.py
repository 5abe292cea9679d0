"""The queue scheduler: when to attempt which queued recipients, and what follows.

One loop task sleeps until the earliest next attempt (an asyncio timer raced
against a wake event; no polling) and is woken early by :meth:`Scheduler.kick`
(enqueue, schedule-now, unhold, a finished attempt). Each pass starts a delivery
job for every due group of recipients — same message, same recipient domain, same
forced transport, so they go in one SMTP transaction — within two limits: at most
``workers`` jobs at once, at most ``per_domain`` per recipient domain.

A job (RFC 5321 4.5.4.1 retry strategy, mox's schedule):

1. *claim*: one commit raises the attempt count and already sets the next attempt
   (``7.5 min ± 5 s`` doubled per earlier attempt: ~0, 7.5 m, 15 m, 30 m, 1 h, 2 h,
   4 h, 8 h), so a crash mid-attempt never makes us hammer the receiver;
2. the attempt (``app.queue.attempt.attempt``, injected);
3. *record*, the first thing after the attempt returns: one commit removes the
   recipients the receiver accepted and stores the errors of the others. This is
   the at-least-once window: a crash between the receiver's 250 and this commit
   makes us deliver that recipient again;
4. DSNs: recipients that failed permanently (5xx, or the last attempt) get a
   failure DSN, then their rows go; after the 5th failed attempt a delayed DSN;
5. TLS results: the policy and TLS outcome of every MX host the attempt tried go to
   ``Deps.record_tls`` (reports.db, for SMTP TLS reports, RFC 8460). Only after the
   record commit, so reporting never delays it; a failure there is logged, not fatal.

Time comes from an injectable :class:`Clock` and jitter from an injectable
``random.Random``, so tests drive the whole schedule without sleeping.
"""

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from app.config.static import Config, TransportKind
from app.delivery.localserve import Stage, simulated
from app.queue import dsn, routes
from app.queue.store import Entry, QueueStore, Result
from app.store.reports import TLSFailure, TLSRecord

log = logging.getLogger(__name__)

DISPATCH_BATCH = 200  # due entries read at a time

# The longest the loop sleeps without looking at the queue: bounds the effect of a
# wall-clock jump. Not polling: an idle queue wakes once an hour.
MAX_SLEEP = 3600.0
BASE_BACKOFF = 7 * 60 + 30
DELAYED_DSN_AFTER = 5  # failed attempts before the sender hears of the delay
STOP_GRACE = 10.0

AttemptFn = Callable[..., Awaitable[Any]]


class Clock(Protocol):
    """Wall-clock time (seconds since the epoch) and sleeping until a moment."""

    def now(self) -> float:
        """The current time."""
        ...

    async def sleep_until(self, deadline: float | None, wake: asyncio.Event) -> None:
        """Return at ``deadline`` (None: never) or when ``wake`` is set, if earlier."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float | None, wake: asyncio.Event) -> None:
        delay = MAX_SLEEP if deadline is None else min(MAX_SLEEP, deadline - self.now())
        if delay <= 0:
            return
        try:
            await asyncio.wait_for(wake.wait(), delay)
        except TimeoutError:
            pass


def backoff(attempts_before: int, rng: random.Random) -> float:
    """Seconds until the next attempt after ``attempts_before`` earlier attempts:
    7.5 minutes with ±5 s jitter, doubled per earlier attempt (as mox)."""
    return float((BASE_BACKOFF + rng.randint(-5, 4)) * 2**attempts_before)


@dataclass(frozen=True, slots=True)
class Deps:
    """What the scheduler needs from the server, as functions so that a reloaded
    configuration or resolver takes effect at the next attempt."""

    config: Callable[[], Config]
    resolver: Callable[[], Any]
    attempt: AttemptFn
    make_transport: Callable[[dict[str, Any]], Any]
    make_recipient: Callable[[str], Any]
    # Compose, sign and store a DSN for the sender of ``entry``'s message; returns
    # whether it was stored (False: keep the rows and try again later).
    send_dsn: Callable[[Entry, tuple[dsn.Recipient, ...]], Awaitable[bool]]
    # Keep the TLS results of an attempt for TLS reports (Services.record_tls_results);
    # None: not kept.
    record_tls: Callable[[Sequence[TLSRecord]], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One recipient's result of one attempt, normalised."""

    ok: bool
    permanent: bool
    code: int
    secode: str
    text: str
    remote_mta: str = ""


# An attempt's outcome per entry id, the IPs dialed, and the TLS results per MX host.
_Attempted = tuple[dict[int, _Outcome], tuple[str, ...], tuple[TLSRecord, ...]]


def _localpart(address: str) -> str:
    return address.rpartition("@")[0].strip('"').lower()


def tls_records(domain: str, reports: Sequence[Any], when: float) -> tuple[TLSRecord, ...]:
    """The attempt's TLS results (``app.queue.tlsrpt.TLSResult``) as reports.db rows."""
    return tuple(
        TLSRecord(
            recipient_domain=domain,
            policy_domain=str(r.policy_domain),
            policy_type=str(r.policy_type),
            policy_strings=tuple(r.policy_strings),
            mx_host_patterns=tuple(r.mx_host_patterns),
            mx_host=str(r.host),
            success_count=int(r.success_count),
            failure_count=int(r.failure_count),
            failures=tuple(
                TLSFailure(
                    result_type=str(f.result_type),
                    receiving_mx_hostname=f.receiving_mx_hostname,
                    receiving_ip=f.receiving_ip,
                    sending_mta_ip=f.sending_mta_ip,
                    failure_reason_code=f.failure_reason_code,
                    additional_information=f.additional_information,
                )
                for f in r.failures
            ),
            recorded=when,
        )
        for r in reports
    )


class Scheduler:
    """Runs delivery attempts for a :class:`QueueStore`. Start with :meth:`start`."""

    def __init__(
        self,
        store: QueueStore,
        deps: Deps,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.deps = deps
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._kicks = 0
        self._idle_gen = -1
        self._idle_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._jobs: dict[asyncio.Task[None], tuple[str, tuple[int, ...]]] = {}
        self._running: set[int] = set()
        self._per_domain: Counter[str] = Counter()
        self.attempts_started = 0  # for tests and metrics

    # --- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Start the loop (on the running event loop)."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop starting jobs; give running ones a bounded time, then cancel them."""
        self._stopping = True
        self.kick()
        if self._loop_task is not None:
            await self._loop_task
        jobs = set(self._jobs)
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=STOP_GRACE)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    def kick(self) -> None:
        """Look at the queue now (after enqueue, unhold, reschedule, a finished job)."""
        self._kicks += 1
        self._wake.set()

    async def wait_idle(self) -> None:
        """Wait until the loop has looked at the queue after the latest kick and no
        job runs: everything due at the current clock time has been attempted."""
        target = self._kicks
        if self._idle_gen >= target and not self._jobs:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append((target, fut))
        await fut

    @property
    def running(self) -> int:
        """Jobs in progress."""
        return len(self._jobs)

    # --- the loop -------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            gen = self._kicks
            try:
                deadline = await self._dispatch()
            except Exception:
                log.exception("queue scheduling failed")
                deadline = self.clock.now() + 60.0
            if not self._jobs:
                self._idle_gen = gen
                self._notify_idle()
            if self._stopping:
                break
            await self.clock.sleep_until(deadline, self._wake)

    def _notify_idle(self) -> None:
        keep = []
        for target, fut in self._idle_waiters:
            if target <= self._idle_gen:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self._idle_waiters = keep

    async def _dispatch(self) -> float | None:
        """Start due jobs; returns when to look again (None: only when kicked).

        Due entries are read in small batches that leave out domains already at
        their concurrency limit, so a large backlog to one domain is not read again
        each time one of its deliveries finishes."""
        cfg = self.deps.config().queue
        now = self.clock.now()
        while len(self._jobs) < cfg.workers:
            due = await self.store.due(
                now, self._running, limit=DISPATCH_BATCH, busy_domains=self._busy(cfg)
            )
            groups: dict[tuple[int, str, str], list[Entry]] = {}
            for e in due:
                groups.setdefault((e.msg_id, e.domain, e.transport), []).append(e)
            started = 0
            for (_, domain, _), entries in groups.items():
                if len(self._jobs) >= cfg.workers:
                    break
                if self._per_domain[domain] < cfg.per_domain:
                    self._start_job(domain, entries)
                    started += 1
            if started == 0 or len(due) < DISPATCH_BATCH:
                break
        if len(self._jobs) >= cfg.workers:
            return None  # a finishing job kicks
        # Entries of busy domains are left out: their finishing job kicks.
        return await self.store.next_attempt(self._running, self._busy(cfg))

    def _busy(self, cfg: Any) -> list[str]:
        """Domains at their limit of concurrent deliveries."""
        return [d for d, n in self._per_domain.items() if n >= cfg.per_domain]

    def _start_job(self, domain: str, entries: list[Entry]) -> None:
        ids = tuple(e.id for e in entries)
        self._running.update(ids)
        self._per_domain[domain] += 1
        self.attempts_started += 1
        task = asyncio.get_running_loop().create_task(self._job(entries))
        self._jobs[task] = (domain, ids)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: "asyncio.Task[None]") -> None:
        domain, ids = self._jobs.pop(task)
        self._running.difference_update(ids)
        self._per_domain[domain] -= 1
        if self._per_domain[domain] <= 0:
            del self._per_domain[domain]
        if not task.cancelled() and task.exception() is not None:
            log.error("queue delivery job failed", exc_info=task.exception())
        self.kick()

    # --- one job ---------------------------------------------------------------------

    async def _job(self, entries: list[Entry]) -> None:
        now = self.clock.now()
        await self.store.claim({e.id: now + backoff(e.attempts, self.rng) for e in entries}, now)
        outcomes, dialed, tls = await self._attempt(entries)
        await self._record(entries, outcomes, dialed, now)
        if tls and self.deps.record_tls is not None:
            try:
                await self.deps.record_tls(tls)
            except Exception:  # reporting must not make a delivery look failed
                log.exception("recording tls results failed", extra={"domain": entries[0].domain})

    async def _attempt(self, entries: list[Entry]) -> _Attempted:
        """Run one attempt for a group: one outcome per entry id, the IPs dialed and
        the TLS results."""
        config = self.deps.config()
        e0 = entries[0]
        out: dict[int, _Outcome] = {}
        todo = list(entries)
        if config.localserve:
            # As mox's localserve: a local part starting with "queue" fails the way
            # the rest of it asks for (queuetemperror, queuepermerror, queue550, ...).
            todo = []
            for e in entries:
                lp = _localpart(e.recipient)
                sim = simulated(lp, Stage.DATA) if lp.startswith("queue") else None
                if sim is None:
                    todo.append(e)
                elif sim.code == 0:
                    out[e.id] = _Outcome(False, False, 0, "", "simulated timeout")
                else:
                    out[e.id] = _Outcome(
                        False,
                        sim.code >= 500,
                        sim.code,
                        f"{sim.code // 100}.{sim.secode}",
                        sim.text,
                    )
            if not todo:
                return out, (), ()
            chosen = routes.localserve_transport(config)
        else:
            try:
                chosen = routes.choose(
                    config.queue,
                    forced=e0.transport,
                    account=e0.account,
                    sender_domain=e0.sender.rpartition("@")[2].lower(),
                    rcpt_domain=e0.domain,
                    attempts=e0.attempts,
                )
            except routes.UnknownTransport as err:
                return {e.id: _Outcome(False, False, 0, "", str(err)) for e in entries}, (), ()
        if chosen is None:
            failed = _Outcome(False, False, 0, "", "localserve has no smtp listener to deliver to")
            return out | {e.id: failed for e in todo}, (), ()
        t = chosen.settings
        if t.kind is TransportKind.FAIL:
            res = _Outcome(False, t.fail_code >= 500, t.fail_code, "", t.fail_text)
            return out | {e.id: res for e in todo}, (), ()
        more, dialed, tls = await self._call_attempt(todo, chosen)
        return out | more, dialed, tls

    async def _call_attempt(self, entries: list[Entry], chosen: routes.Chosen) -> _Attempted:
        d = self.deps
        config = d.config()
        e0 = entries[0]
        try:
            message = await self.store.content(e0)
            result = await d.attempt(
                d.resolver(),
                sender=e0.sender,
                recipients=[d.make_recipient(e.recipient) for e in entries],
                domain=e0.domain,
                message=message,
                size=e0.size,
                smtputf8=e0.smtputf8,
                eight_bit=e0.eight_bit,
                requiretls=e0.requiretls,
                tls_required_no=e0.tls_required_no,
                transport=d.make_transport(routes.attempt_fields(chosen.settings)),
                ehlo_hostname=config.hostname,
                attempt_number=e0.attempts + 1,
                log=log,
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery attempt failed", extra={"domain": e0.domain})
            err = _Outcome(False, False, 0, "", "internal error during delivery attempt")
            return {e.id: err for e in entries}, (), ()
        by_addr = {str(r.address).lower(): r for r in result.recipients}
        out: dict[int, _Outcome] = {}
        for e in entries:
            r = by_addr.get(e.recipient.lower())
            if r is None:
                out[e.id] = _Outcome(False, False, 0, "", "no result for this recipient")
            else:
                out[e.id] = _Outcome(
                    bool(r.ok),
                    bool(r.permanent),
                    int(r.code),
                    str(r.secode),
                    str(r.text),
                    str(r.remote_mta or result.host or ""),
                )
        log.info(
            "delivery attempt done",
            extra={
                "domain": e0.domain,
                "transport": chosen.name,
                "delivered": sum(1 for o in out.values() if o.ok),
                "recipients": len(entries),
            },
        )
        try:
            tls = tls_records(e0.domain, result.tls_reports or (), self.clock.now())
        except Exception:  # never in the way of recording the delivery itself
            log.exception("unusable tls results", extra={"domain": e0.domain})
            tls = ()
        return out, tuple(str(x) for x in (result.dialed or ())), tls

    async def _record(
        self,
        entries: list[Entry],
        outcomes: dict[int, _Outcome],
        dialed: tuple[str, ...],
        now: float,
    ) -> None:
        max_attempts = self.deps.config().queue.max_attempts
        results: list[Result] = []
        finals: list[tuple[Entry, _Outcome]] = []
        delays: list[tuple[Entry, _Outcome]] = []
        for e in entries:
            o = outcomes[e.id]
            attempts = e.attempts + 1
            if o.ok:
                results.append(Result(e.id, delivered=True))
                continue
            final = o.permanent or attempts >= max_attempts
            delayed = (
                not final
                and attempts >= DELAYED_DSN_AFTER
                and not e.delayed_dsn
                and max_attempts > DELAYED_DSN_AFTER
            )
            error = dsn.smtp_diagnostic(o.code, o.secode, o.text)
            results.append(
                Result(
                    e.id,
                    final=final,
                    code=o.code,
                    secode=o.secode,
                    error=error,
                    remote_mta=o.remote_mta,
                    dialed=dialed,
                    delayed_dsn=delayed,
                )
            )
            if final:
                finals.append((e, o))
            elif delayed:
                delays.append((e, o))
        # The first thing after the attempt: make "delivered" durable (see module doc).
        await self.store.record(results)
        when = datetime.fromtimestamp(now, UTC)
        if finals:
            await self.send_failure_dsn(
                [
                    (
                        e,
                        dsn.smtp_diagnostic(o.code, o.secode, o.text),
                        o.code,
                        o.secode,
                        o.remote_mta,
                    )
                    for e, o in finals
                ],
                when,
            )
        if delays:
            await self._send_delayed_dsn(delays, when)

    async def send_failure_dsn(
        self, failed: Sequence[tuple[Entry, str, int, str, str]], when: datetime | None
    ) -> None:
        """Send failure DSNs (one per message) and remove the failed entries after.

        ``failed``: (entry, diagnostic, code, secode, remote MTA). Entries of a
        null-sender message get no DSN (RFC 3464 2: never a DSN about a DSN)."""
        by_msg: dict[int, list[tuple[Entry, str, int, str, str]]] = {}
        for item in failed:
            by_msg.setdefault(item[0].msg_id, []).append(item)
        for items in by_msg.values():
            e0 = items[0][0]
            ok = True
            if e0.sender:
                rcpts = tuple(
                    dsn.Recipient(
                        address=e.recipient,
                        action=dsn.Action.FAILED,
                        status=dsn.status_for(code, secode, True),
                        remote_mta=mta,
                        diagnostic=diag,
                        smtp_reply=bool(code),
                        last_attempt=when
                        or (
                            datetime.fromtimestamp(e.last_attempt, UTC)
                            if e.last_attempt is not None
                            else None
                        ),
                    )
                    for e, diag, code, secode, mta in items
                )
                ok = await self.deps.send_dsn(e0, rcpts)
            if ok:
                await self.store.remove(e.id for e, *_ in items)

    async def _send_delayed_dsn(self, delays: list[tuple[Entry, _Outcome]], when: datetime) -> None:
        max_attempts = self.deps.config().queue.max_attempts
        by_msg: dict[int, list[tuple[Entry, _Outcome]]] = {}
        for e, o in delays:
            by_msg.setdefault(e.msg_id, []).append((e, o))
        for items in by_msg.values():
            e0 = items[0][0]
            if not e0.sender:
                continue
            # Remaining schedule: the sum of the backoffs still to come.
            left = sum(BASE_BACKOFF * 2**n for n in range(e0.attempts + 1, max_attempts))
            until = datetime.fromtimestamp(when.timestamp() + left, UTC)
            rcpts = tuple(
                dsn.Recipient(
                    address=e.recipient,
                    action=dsn.Action.DELAYED,
                    status=dsn.status_for(o.code, o.secode, False),
                    remote_mta=o.remote_mta,
                    diagnostic=dsn.smtp_diagnostic(o.code, o.secode, o.text),
                    smtp_reply=bool(o.code),
                    last_attempt=when,
                    will_retry_until=until,
                )
                for e, o in items
            )
            await self.deps.send_dsn(e0, rcpts)
