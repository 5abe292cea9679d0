"""Group commit: one writer per account, everything waiting goes in one transaction.

Callers :meth:`Committer.submit` a write operation (a function of the write
connection) and await its future. When the committer is free it takes *all*
waiting operations — there is no time window to wait for company, which measured
slower at every concurrency — and runs them in one ``BEGIN IMMEDIATE … COMMIT``
in the executor, so a batch costs one WAL fsync however many deliveries it holds.
Each operation runs inside its own SAVEPOINT: one that raises (an over-quota
delivery, a missing mailbox) is rolled back alone and fails only its own caller.
At most one batch per account is in flight; futures resolve, and changes are
published, on the event loop only after COMMIT returned, in commit order.

Between batches the write connection can be lent out for upkeep that must not
overlap a transaction (freeing its page cache when the server is idle):
:meth:`Committer.run_idle` runs a function of the connection in the executor only
when nothing is queued or in flight, and writes submitted meanwhile wait for it.
"""

import asyncio
import logging
from array import array
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import apsw

from app.store.changes import Broadcaster, Change

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")


@dataclass(slots=True)
class Outcome(Generic[T]):
    """What a write operation returns: its value, changes to publish, files to remove."""

    value: T
    changes: list[Change] = field(default_factory=list)
    remove_files: list[str] = field(default_factory=list)


Operation = Callable[[apsw.Connection], Outcome[Any]]
# A function lent the idle write connection, and the future of its result.
_Upkeep = tuple[Callable[[apsw.Connection], Any], "asyncio.Future[Any]"]


@dataclass(slots=True)
class _Item:
    op: Operation
    future: "asyncio.Future[Any]"
    # Files written for this operation, removed if its rows do not commit.
    files: tuple[str, ...]


class Committer:
    """The single writer of one account database."""

    def __init__(
        self,
        conn: apsw.Connection,
        executor: Executor,
        broadcaster: Broadcaster,
        remove_files: Callable[[list[str]], None],
    ) -> None:
        self._conn = conn
        self._executor = executor
        self._broadcaster = broadcaster
        self._remove_files = remove_files
        self._pending: list[_Item] = []
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        # Transactions committed and operations attempted in them, for tests and
        # metrics. Kept in a C array: int attributes would hold the objects made by
        # a burst's last commit, which can pin an allocator arena after the burst
        # (see app.store.runtime).
        self._counts = array("Q", (0, 0))

    @property
    def commits(self) -> int:
        """Transactions committed."""
        return self._counts[0]

    @property
    def operations(self) -> int:
        """Operations attempted in committed transactions."""
        return self._counts[1]

    def submit(self, op: Operation, files: tuple[str, ...] = ()) -> "asyncio.Future[Any]":
        """Queue ``op``; the future resolves after the transaction holding it committed.

        ``files`` were written for ``op``: if it fails they are removed before its
        future resolves. Cancelling the future's awaiter does not withdraw ``op``.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Item(op, fut, files))
        if self._task is None:
            self._idle.clear()
            self._task = loop.create_task(self._run())
        return fut

    async def wait_idle(self) -> None:
        """Wait until nothing is queued or in flight."""
        await self._idle.wait()

    def run_idle(self, fn: Callable[[apsw.Connection], U]) -> "asyncio.Future[U] | None":
        """Run ``fn(conn)`` in the executor if the committer is idle, else do nothing.

        Returns a future of its result, or None when a batch is queued or in flight
        (the connection is busy: the caller tries again another time). While ``fn``
        runs the committer counts as busy: :meth:`submit` queues, and the queued
        operations run as one batch right after it; :meth:`wait_idle` waits for it.
        """
        if self._task is not None:
            return None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[U] = loop.create_future()
        self._idle.clear()
        self._task = loop.create_task(self._run((fn, fut)))
        return fut

    async def _upkeep(self, fn: Callable[[apsw.Connection], U], fut: "asyncio.Future[U]") -> None:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, fn, self._conn)
        except Exception as e:
            if not fut.done():
                fut.set_exception(e)
        else:
            if not fut.done():
                fut.set_result(result)

    async def _run(self, upkeep: _Upkeep | None = None) -> None:
        loop = asyncio.get_running_loop()
        try:
            if upkeep is not None:
                await self._upkeep(*upkeep)
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes = await loop.run_in_executor(self._executor, self._write, batch)
                except Exception as e:
                    log.exception("store commit failed", extra={"operations": len(batch)})
                    files = [f for item in batch for f in item.files]
                    if files:
                        await loop.run_in_executor(self._executor, self._discard, files)
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(e)
                    continue
                self._counts[0] += 1
                self._counts[1] += len(batch)
                self._finish(batch, outcomes)
        finally:
            self._task = None
            self._idle.set()

    def _finish(self, batch: list[_Item], outcomes: list[Outcome[Any] | Exception]) -> None:
        for item, out in zip(batch, outcomes, strict=True):
            if isinstance(out, Exception):
                if not item.future.done():
                    item.future.set_exception(out)
                continue
            # Publish before resolving, so when a writer's await returns every
            # subscriber already holds the change.
            self._broadcaster.publish(out.changes)
            if not item.future.done():
                item.future.set_result(out.value)

    def _write(self, batch: list[_Item]) -> list[Outcome[Any] | Exception]:
        """Run a batch in one transaction (executor thread)."""
        conn = self._conn
        outcomes: list[Outcome[Any] | Exception] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for item in batch:
                conn.execute("SAVEPOINT op")
                try:
                    out = item.op(conn)
                except Exception as e:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append(e)
                else:
                    conn.execute("RELEASE op")
                    outcomes.append(out)
            # synchronous=FULL: COMMIT returns after the WAL is fsynced.
            conn.execute("COMMIT")
        except BaseException:
            if not conn.getautocommit():
                conn.execute("ROLLBACK")
            raise
        removals = [f for o in outcomes if not isinstance(o, Exception) for f in o.remove_files]
        removals += [
            f
            for item, o in zip(batch, outcomes, strict=True)
            if isinstance(o, Exception)
            for f in item.files
        ]
        if removals:
            self._discard(removals)
        return outcomes

    def _discard(self, files: list[str]) -> None:
        try:
            self._remove_files(files)
        except OSError:
            # No row references them; leftovers are orphans that repair removes.
            log.warning("removing message files failed", exc_info=True)
