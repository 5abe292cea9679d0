"""Releasing an account's SQLite memory when idle: what is freed, and that reads and
writes before, during and after a release keep working and see committed data.

Synchronisation is by events the test controls (a write blocked in the executor on
a threading.Event), never by sleeping.
"""

import asyncio
import threading
import weakref
from pathlib import Path

import apsw
import pytest

from app.store import AccountStore, StoreRuntime
from app.store.committer import Outcome
from app.store.registry import Accounts
from app.store.workers import WorkerPool
from tests.store.conftest import message

BLOCK_TIMEOUT = 30.0  # only reached if the test is broken


def cache_used(conn: apsw.Connection) -> int:
    used: int = conn.status(apsw.SQLITE_DBSTATUS_CACHE_USED)[0]
    return used


async def fill(store: AccountStore, n: int) -> int:
    await asyncio.gather(*(store.deliver("Inbox", message(i, 2000)) for i in range(n)))
    return store.mailbox("Inbox").id


async def test_operations_mark_the_runtime_active(tmp_path: Path) -> None:
    now = [100.0]
    rt = StoreRuntime(workers=2, clock=lambda: now[0])
    try:
        store = await AccountStore.open(tmp_path / "a", name="a", runtime=rt)
        assert rt.last_activity == 100.0
        now[0] = 150.0
        store.list_mailboxes()
        assert rt.last_activity == 150.0
        now[0] = 160.0
        await store.deliver("Inbox", message(1))
        assert rt.last_activity == 160.0
    finally:
        await rt.close()


async def test_release_frees_page_caches_and_closes_idle_pooled_connections(
    store: AccountStore,
) -> None:
    inbox = await fill(store, 300)
    # Large listings and text searches run on pooled connections in the executor.
    await asyncio.gather(*(store.messages(inbox) for _ in range(4)))
    assert store._pool
    assert cache_used(store._wconn) > 100_000 and cache_used(store._rconn) > 0
    held = (
        cache_used(store._wconn)
        + cache_used(store._rconn)
        + sum(cache_used(c) for c in store._pool)
    )

    freed = await store.release_memory()

    assert freed == held
    assert store._pool == []
    assert cache_used(store._wconn) < 20_000 and cache_used(store._rconn) < 20_000
    assert len(await store.messages(inbox)) == 300  # reopens a pooled connection


async def test_reopened_connections_see_data_committed_after_release(
    store: AccountStore,
) -> None:
    inbox = await fill(store, 250)
    await store.messages(inbox)
    await store.release_memory()
    delivered = await store.deliver("Inbox", message(999, subject="after"))
    await store.set_flags(inbox, [1], add=["\\Flagged"])
    msgs = await store.messages(inbox)  # > LOOP_READ_ROWS: a fresh pooled connection
    assert len(msgs) == 251 and msgs[-1].uid == delivered.uid
    assert "\\Flagged" in msgs[0].flags
    assert store.mailbox("Inbox").total == 251  # the loop thread's shrunk connection
    assert await store.read_message(msgs[-1]) == message(999, subject="after")


async def test_writer_is_left_alone_while_a_batch_is_in_flight(store: AccountStore) -> None:
    await fill(store, 50)
    entered, go = threading.Event(), threading.Event()

    def slow(conn: apsw.Connection) -> Outcome[None]:
        conn.execute("UPDATE account SET modseq = modseq")
        entered.set()
        go.wait(BLOCK_TIMEOUT)
        return Outcome(None)

    write = asyncio.ensure_future(store._write(slow))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, entered.wait, BLOCK_TIMEOUT)
    writer_cache = cache_used(store._wconn)
    assert store._committer.run_idle(lambda c: None) is None  # busy: refused
    await store.release_memory()  # rconn and pool only, no wait for the batch
    assert not write.done()
    assert cache_used(store._wconn) == writer_cache
    go.set()
    await write
    await store.release_memory()  # idle now: the writer shrinks too
    assert cache_used(store._wconn) < writer_cache


async def test_writes_submitted_during_upkeep_run_right_after_it(store: AccountStore) -> None:
    await fill(store, 20)
    entered, go = threading.Event(), threading.Event()
    order: list[str] = []

    def upkeep(conn: apsw.Connection) -> int:
        entered.set()
        go.wait(BLOCK_TIMEOUT)
        order.append("upkeep")
        return 7

    def count(conn: apsw.Connection) -> Outcome[int]:
        order.append("write")
        return Outcome(int(conn.execute("SELECT messages FROM account").fetchall()[0][0]))

    fut = store._committer.run_idle(upkeep)
    assert fut is not None
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, entered.wait, BLOCK_TIMEOUT)
    queued = store._committer.submit(count)
    assert store._committer.run_idle(lambda c: None) is None  # busy: refused
    go.set()
    assert await fut == 7
    assert await queued == 20
    assert order == ["upkeep", "write"]  # one after the other, never together
    await store.deliver("Inbox", message(21))
    assert store.quota_usage().messages == 21


async def test_close_waits_for_a_release_in_progress(tmp_path: Path) -> None:
    rt = StoreRuntime(workers=2)
    try:
        store = await AccountStore.open(tmp_path / "a", name="a", runtime=rt)
        inbox = await fill(store, 250)
        await store.messages(inbox)
        # The release starts first (tasks run in creation order) and is inside its
        # executor awaits when close() begins.
        release = asyncio.ensure_future(store.release_memory())
        close = asyncio.ensure_future(store.close())
        freed, _ = await asyncio.gather(release, close)
        assert freed > 0
        assert await store.release_memory() == 0  # closed: nothing to do
    finally:
        await rt.close()


async def test_releases_interleaved_with_reads_and_writes(store: AccountStore) -> None:
    inbox = await fill(store, 210)

    async def reader() -> None:
        for _ in range(15):
            assert len(await store.messages(inbox)) >= 210
            store.mailbox("Inbox")

    async def writer(k: int) -> None:
        for i in range(10):
            await store.deliver("Inbox", message(1000 + 100 * k + i))

    async def releaser() -> None:
        for _ in range(20):
            await store.release_memory()

    await asyncio.gather(reader(), reader(), writer(0), writer(1), releaser())
    assert len(await store.messages(inbox)) == 230
    assert store.quota_usage().messages == 230


async def test_runtime_releases_every_open_account(tmp_path: Path) -> None:
    accounts = Accounts(StoreRuntime(workers=2), tmp_path, lambda _: None)
    try:
        a, b = await accounts.get("a"), await accounts.get("b")
        ia, ib = await fill(a, 220), await fill(b, 220)
        await asyncio.gather(a.messages(ia), b.messages(ib))
        assert a._pool and b._pool
        assert await accounts.runtime.release_memory() > 0
        assert a._pool == [] and b._pool == []
        assert len(await b.messages(ib)) == 220
    finally:
        await accounts.close()


async def test_failing_upkeep_fails_alone(store: AccountStore) -> None:
    def broken(conn: apsw.Connection) -> None:
        raise apsw.SQLError("upkeep failed")

    fut = store._committer.run_idle(broken)
    assert fut is not None
    queued = asyncio.ensure_future(store.deliver("Inbox", message(1)))
    with pytest.raises(apsw.SQLError):
        await fut
    assert (await queued).uid == 1
    await store._committer.wait_idle()
    assert store._committer.run_idle(lambda c: None) is not None


class Stamp(float):
    """A clock reading that can be watched with a weak reference."""


async def test_activity_and_commit_counts_keep_no_objects_of_the_last_operation(
    tmp_path: Path,
) -> None:
    # Bookkeeping updated by every operation must not hold the objects made by the
    # last one: after a burst they sit alone in otherwise empty allocator arenas,
    # which can then not be given back to the OS.
    stamps: list[weakref.ref[Stamp]] = []

    def clock() -> float:
        s = Stamp(200.0 + len(stamps))
        stamps.append(weakref.ref(s))
        return s

    rt = StoreRuntime(workers=2, clock=clock)
    try:
        store = await AccountStore.open(tmp_path / "a", name="a", runtime=rt)
        await store.deliver("Inbox", message(1))
        store.list_mailboxes()
        assert rt.last_activity == 200.0 + len(stamps) - 1
        assert [r for r in stamps if r() is not None] == []
        assert (store.commits, store.writes) == (1, 1)
        committer = store._committer
        assert [v for v in vars(committer).values() if type(v) is int] == []
    finally:
        await rt.close()


async def test_idle_store_threads_exit_and_are_started_again(tmp_path: Path) -> None:
    # glibc keeps a cache of freed blocks per thread that malloc_trim leaves alone;
    # a thread that exits gives it back.
    rt = StoreRuntime(workers=2, worker_idle_exit=0.01)
    try:
        store = await AccountStore.open(tmp_path / "a", name="a", runtime=rt)
        await fill(store, 20)
        pool = rt.executor
        assert isinstance(pool, WorkerPool)
        for t in pool.threads():
            t.join(BLOCK_TIMEOUT)
            assert not t.is_alive()
        assert pool.threads() == []
        await store.deliver("Inbox", message(99))
        assert store.quota_usage().messages == 21
    finally:
        await rt.close()
