"""Group commit: concurrent writers share transactions; one failure stays alone."""

import asyncio

import apsw

from app.store import AccountStore, MailboxNotFound, MessageAdded, check_account
from tests.store.conftest import message


async def test_32_concurrent_deliveries_need_far_fewer_than_32_commits(
    store: AccountStore,
) -> None:
    before = store.commits
    results = await asyncio.gather(*(store.deliver("Inbox", message(i)) for i in range(32)))
    assert len({r.uid for r in results}) == 32
    assert store.commits - before <= 4
    assert store.writes >= 32


async def test_a_failing_item_fails_alone_in_its_batch(store: AccountStore) -> None:
    before = store.commits
    results = await asyncio.gather(
        *(store.deliver("Inbox" if i % 4 else "Missing", message(i)) for i in range(16)),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 4 and all(isinstance(e, MailboxNotFound) for e in failed)
    assert store.mailbox("Inbox").total == 12
    assert store.commits - before <= 3
    assert [m.uid for m in await store.messages(store.mailbox("Inbox").id)] == list(range(1, 13))
    assert check_account(store.path) == []


async def test_a_delivery_returns_only_after_its_batch_committed(store: AccountStore) -> None:
    d = await store.deliver("Inbox", message())
    # A fresh connection (another process would do the same) sees the committed row.
    conn = apsw.Connection(str(store.path / "index.db"))
    try:
        rows = conn.execute("SELECT uid FROM message WHERE mailbox_id = ?", (d.mailbox_id,))
        assert [r[0] for r in rows] == [d.uid]
    finally:
        conn.close()


async def test_a_cancelled_caller_does_not_withdraw_its_queued_delivery(
    store: AccountStore,
) -> None:
    sub = store.subscribe()
    task = asyncio.create_task(store.deliver("Inbox", message(1)))
    await asyncio.sleep(0)  # a scheduling yield: the task runs up to its await on the commit
    task.cancel()
    added = await sub.get()  # the delivery still commits and is broadcast
    assert isinstance(added, MessageAdded)
    assert added.mailbox_id == store.mailbox("Inbox").id
    assert task.cancelled() or task.done()
    assert len(await store.messages(added.mailbox_id)) == 1
    assert check_account(store.path) == []
