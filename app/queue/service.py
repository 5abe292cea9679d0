"""The outgoing queue as a server service: store + scheduler + DSNs + control commands.

``app.serve`` creates one :class:`QueueService`, starts it after the other services
are opened and stops it before the accounts close. Submission calls
:meth:`QueueService.enqueue`; the control socket passes commands named ``queue.*``
to :meth:`QueueService.ctl`.

The per-attempt delivery (SMTP client, MX, MTA-STS, DANE) lives in
``app.queue.attempt``; it is looked up when the service is created, and tests
inject a fake through the constructor.
"""

import asyncio
import functools
import importlib
import logging
import random
from datetime import UTC, datetime
from typing import Any

from app.message.headers import parse_header
from app.queue import dsn, routes
from app.queue.scheduler import AttemptFn, Clock, Deps, Scheduler, SystemClock
from app.queue.store import STATE_FAILED, Entry, Filter, NewMessage, QueueError, QueueStore
from app.services import Services
from app.store.errors import QuotaExceeded

log = logging.getLogger(__name__)

MTASTS_REFRESH_S = 24 * 3600.0  # RFC 8461 10.2 suggests daily

MAX_DUMP = 8 * 1024 * 1024  # the control socket answers in one line of <= 16 MiB


def _filter(args: dict[str, Any]) -> Filter:
    ids = args.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise QueueError("ids must be a list of numbers")
    return Filter(
        ids=tuple(ids),
        account=str(args.get("account") or ""),
        sender=str(args.get("from") or ""),
        recipient=str(args.get("to") or ""),
    )


def _selective(args: dict[str, Any]) -> Filter:
    """The filter of a changing command: it must select something explicitly."""
    flt = _filter(args)
    if flt == Filter() and not args.get("all"):
        raise QueueError("give a filter (id, account, from, to) or all")
    return flt


class QueueService:
    """The outgoing queue of one server."""

    def __init__(
        self,
        svc: Services,
        *,
        attempt: AttemptFn | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.svc = svc
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.mtasts: Any = None  # MTASTSCache, when delivering through app.queue.attempt
        if attempt is None:
            # One MTA-STS policy cache for the server's lifetime (RFC 8461 3.3).
            self.mtasts = importlib.import_module("app.queue.mtasts").MTASTSCache()
            attempt = self._deliver
        self._attempt: AttemptFn = attempt
        self._store: QueueStore | None = None
        self._scheduler: Scheduler | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None

    @property
    def store(self) -> QueueStore:
        if self._store is None:
            raise QueueError("the queue is not running")
        return self._store

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            raise QueueError("the queue is not running")
        return self._scheduler

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Open ``queue.db``, clean up after a crash, start delivering."""
        store = await QueueStore.open(self.svc.data_dir)
        orphans = await store.remove_orphans()
        if orphans:
            log.warning("removed queue message files without a row", extra={"files": orphans})
        self._store = store
        deps = Deps(
            config=lambda: self.svc.config,
            resolver=lambda: self.svc.resolver,
            attempt=self._attempt,
            make_transport=self._make_transport,
            make_recipient=self._make_recipient,
            send_dsn=self._send_dsn,
            record_tls=self.svc.record_tls_results,
        )
        self._scheduler = Scheduler(store, deps, clock=self.clock, rng=self.rng)
        self._scheduler.start()
        self._recovery = asyncio.get_running_loop().create_task(self._recover())
        if self.mtasts is not None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_policies())
        log.info("queue started", extra={"queued": len(await store.entries())})

    async def _refresh_policies(self) -> None:
        """Renew cached MTA-STS policies once a day (RFC 8461 10.2)."""
        while True:
            await asyncio.sleep(MTASTS_REFRESH_S)  # a timer, not synchronisation
            try:
                n = await self.mtasts.refresh(self.svc.resolver)
                log.info("mta-sts policies refreshed", extra={"renewed": n})
            except Exception:
                log.exception("mta-sts policy refresh failed")

    async def stop(self) -> None:
        """Stop the scheduler (running attempts get a bounded time) and close the store."""
        if self._refresher is not None:
            self._refresher.cancel()
        if self._recovery is not None:
            await asyncio.wait([self._recovery], timeout=10)
        if self._scheduler is not None:
            await self._scheduler.stop()
        if self._store is not None:
            await self._store.close()
        self._scheduler = None
        self._store = None

    async def _recover(self) -> None:
        """Send the failure DSNs a crash left unsent (rows in STATE_FAILED)."""
        try:
            failed = await self.store.failed()
            if failed:
                await self.scheduler.send_failure_dsn(
                    [(e, e.last_error, e.last_code, e.last_secode, e.remote_mta) for e in failed],
                    None,
                )
        except Exception:
            log.exception("sending pending failure dsns failed")

    @staticmethod
    def _module() -> Any:
        """app.queue.attempt (the SMTP client, DANE, MX logic): imported by the first
        delivery, so a server that sends nothing does not keep it in memory."""
        return importlib.import_module("app.queue.attempt")

    async def _deliver(self, resolver: Any, **kw: Any) -> Any:
        return await self._module().attempt(resolver, mtasts_cache=self.mtasts, **kw)

    def _make_transport(self, fields: dict[str, Any]) -> Any:
        return self._module().Transport(**fields)

    def _make_recipient(self, address: str) -> Any:
        return self._module().Recipient(address)

    # --- enqueue ----------------------------------------------------------------------

    async def enqueue(self, msg: NewMessage) -> list[int]:
        """Queue ``msg`` durably (returns after the commit) and wake the scheduler.

        Recipients in our own domains never enter the queue: they are delivered
        locally at once by the caller; QueueError if one is passed."""
        local = self.svc.dynamic.domains
        for r in msg.recipients:
            dom = r.rpartition("@")[2].lower()
            if dom in local:
                raise QueueError(f"recipient {r} is local, deliver it directly")
        ids = await self.store.enqueue(msg, self.clock.now())
        log.info(
            "message queued",
            extra={"ids": ",".join(map(str, ids)), "account": msg.account},
        )
        self.scheduler.kick()
        return ids

    # --- DSNs -------------------------------------------------------------------------

    async def _send_dsn(self, entry: Entry, rcpts: tuple[dsn.Recipient, ...]) -> bool:
        """Compose, sign and deliver a DSN into the submitting account's Inbox."""
        svc = self.svc
        cfg = svc.config
        try:
            head = await self.store.read_content(entry, dsn.MAX_HEADER_COPY)
        except (QueueError, OSError):
            head = b""
        report = dsn.Report(
            reporting_mta=cfg.hostname,
            from_address=f"postmaster@{cfg.hostname}",
            to_address=entry.sender,
            recipients=rcpts,
            original_head=head,
            arrival=datetime.fromtimestamp(entry.created, UTC),
            original_message_id=entry.message_id,
            original_subject=entry.subject,
        )
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        message = dsn.compose(report, now=now, message_id_domain=cfg.hostname)
        signature = b""
        from app.mailauth import dkim

        selectors = dkim.selectors_for_domain(cfg.hostname, svc.dkim.selectors)
        if selectors:
            loop = asyncio.get_running_loop()
            sign = functools.partial(dkim.sign, message, selectors=selectors)
            try:
                signature = await loop.run_in_executor(svc.cpu_executor, sign)
            except dkim.SignError as e:
                log.warning("dkim signing of dsn failed", extra={"err": str(e)})
        if entry.account not in svc.dynamic.accounts:
            log.warning("dsn dropped, account is gone", extra={"account": entry.account})
            return True
        try:
            account = await svc.accounts.get(entry.account)
            await account.deliver("Inbox", message, prefix=b"Return-Path: <>\r\n" + signature)
        except QuotaExceeded:
            log.warning("dsn dropped, account over quota", extra={"account": entry.account})
            return True
        except Exception:
            log.exception("storing dsn failed", extra={"account": entry.account})
            return False
        log.info(
            "dsn delivered",
            extra={
                "account": entry.account,
                "action": str(rcpts[0].action),
                "recipients": len(rcpts),
                "msg_id": entry.msg_id,
            },
        )
        return True

    # --- control commands ---------------------------------------------------------------

    async def size(self) -> int:
        """Recipients waiting in the queue (for the metrics gauge)."""
        return len(await self.store.entries(Filter()))

    async def ctl(self, cmd: str, args: dict[str, Any]) -> Any:
        """Run a ``queue.*`` control command; raises QueueError for the operator."""
        name = cmd.removeprefix("queue.")
        fn = {
            "list": self._ctl_list,
            "hold": self._ctl_hold,
            "unhold": self._ctl_unhold,
            "schedule": self._ctl_schedule,
            "transport": self._ctl_transport,
            "fail": self._ctl_fail,
            "drop": self._ctl_drop,
            "dump": self._ctl_dump,
        }.get(name)
        if fn is None:
            raise QueueError(f"unknown command {cmd}")
        return await fn(args)

    async def _ctl_list(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return [e.as_dict() for e in await self.store.entries(_filter(args))]

    async def _ctl_hold(self, args: dict[str, Any]) -> dict[str, Any]:
        ids = await self.store.update(_selective(args), {"hold": 1})
        return {"count": len(ids), "ids": ids}

    async def _ctl_unhold(self, args: dict[str, Any]) -> dict[str, Any]:
        ids = await self.store.update(_selective(args), {"hold": 0})
        self.scheduler.kick()
        return {"count": len(ids), "ids": ids}

    async def _ctl_schedule(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            delta = float(args.get("duration") or 0)
        except (TypeError, ValueError):
            raise QueueError("duration must be a number of seconds") from None
        base = self.clock.now() if args.get("now") else None
        ids = await self.store.reschedule(_selective(args), delta, base)
        self.scheduler.kick()
        return {"count": len(ids), "ids": ids}

    async def _ctl_transport(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("transport") or "")
        if name:
            try:
                routes.lookup(self.svc.config.queue, name)
            except routes.UnknownTransport as e:
                raise QueueError(str(e)) from None
        ids = await self.store.update(_selective(args), {"transport": name})
        self.scheduler.kick()
        return {"count": len(ids), "ids": ids}

    async def _ctl_fail(self, args: dict[str, Any]) -> dict[str, Any]:
        """Fail entries now, with a failure DSN to the sender (as mox's queue fail)."""
        text = "delivery failed by the administrator"
        ids = await self.store.update(
            _selective(args), {"state": STATE_FAILED, "last_error": text, "last_code": 0}
        )
        if ids:
            entries = [
                e for e in await self.store.entries(Filter(ids=tuple(ids), include_failed=True))
            ]
            await self.scheduler.send_failure_dsn(
                [(e, text, 0, "", e.remote_mta) for e in entries],
                datetime.fromtimestamp(self.clock.now(), UTC),
            )
        return {"count": len(ids), "ids": ids}

    async def _ctl_drop(self, args: dict[str, Any]) -> dict[str, Any]:
        """Remove entries without a DSN."""
        entries = await self.store.entries(_selective(args))
        n = await self.store.remove(e.id for e in entries)
        return {"count": n, "ids": [e.id for e in entries]}

    async def _ctl_dump(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            qid = int(args.get("id") or 0)
        except (TypeError, ValueError):
            raise QueueError("id must be a number") from None
        entries = await self.store.entries(Filter(ids=(qid,), include_failed=True))
        if not entries:
            raise QueueError(f"no queue entry {qid}")
        data = await self.store.read_content(entries[0], MAX_DUMP + 1)
        return {
            "id": qid,
            "message": data[:MAX_DUMP].decode("utf-8", "replace"),
            "truncated": len(data) > MAX_DUMP,
        }


def tls_required_no(head: bytes) -> bool:
    """Whether a message header has ``TLS-Required: No`` (RFC 8689 5)."""
    value = parse_header(head).get("tls-required")
    return value is not None and value.strip().lower() == "no"
