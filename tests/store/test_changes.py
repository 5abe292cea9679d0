"""Change broadcasting: after commit, in commit order, bounded per subscriber."""

import asyncio
from pathlib import Path

import pytest

from app.store import (
    AccountStore,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxExists,
    MailboxRenamed,
    MessageAdded,
    MessagesExpunged,
    StoreRuntime,
    SubscriptionChanged,
    SubscriptionOverflow,
)
from tests.store.conftest import message


async def test_every_subscriber_gets_changes_in_commit_order(store: AccountStore) -> None:
    subs = [store.subscribe(), store.subscribe()]
    results = await asyncio.gather(*(store.deliver("Inbox", message(i)) for i in range(20)))
    for sub in subs:
        got = sub.drain()
        assert all(isinstance(c, MessageAdded) for c in got)
        assert [(c.uid, c.modseq) for c in got] == sorted(  # type: ignore[union-attr]
            (r.uid, r.modseq) for r in results
        )
        modseqs = [c.modseq for c in got]  # type: ignore[union-attr]
        assert modseqs == sorted(modseqs)


async def test_changes_are_visible_when_the_writer_resumes(store: AccountStore) -> None:
    sub = store.subscribe()
    d = await store.deliver("Inbox", message())
    await store.set_flags(d.mailbox_id, [d.uid], add=["\\Seen", "\\Deleted"])
    await store.expunge(d.mailbox_id)
    kinds = [type(c) for c in sub.drain()]
    assert kinds == [MessageAdded, FlagsChanged, MessagesExpunged]


async def test_mailbox_and_subscription_changes_are_broadcast(store: AccountStore) -> None:
    sub = store.subscribe()
    await store.create_mailbox("A", subscribe=False)
    await store.rename_mailbox("A", "B")
    await store.delete_mailbox("B")
    await store.set_subscribed("B", True)
    got = sub.drain()
    assert [type(c) for c in got] == [
        MailboxCreated,
        MailboxRenamed,
        MailboxDeleted,
        SubscriptionChanged,
    ]


async def test_async_iteration_waits_for_changes_and_ends_on_unsubscribe(
    store: AccountStore,
) -> None:
    sub = store.subscribe()
    seen: list[object] = []

    async def reader() -> None:
        async for change in sub:
            seen.append(change)

    task = asyncio.create_task(reader())
    await store.deliver("Inbox", message(1))
    await store.deliver("Inbox", message(2))
    store.unsubscribe(sub)
    await task
    assert [c.uid for c in seen] == [1, 2]  # type: ignore[attr-defined]


async def test_failed_writes_publish_nothing(store: AccountStore) -> None:
    sub = store.subscribe()
    with pytest.raises(MailboxExists):
        await store.create_mailbox("Inbox")
    assert sub.drain() == []


async def test_a_subscriber_that_does_not_read_overflows_without_blocking(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    store = await AccountStore.open(tmp_path / "o", name="o", runtime=runtime, subscriber_buffer=5)
    slow, fast = store.subscribe(), store.subscribe()
    for i in range(10):
        await store.deliver("Inbox", message(i))
        assert len(fast.drain()) == 1
    assert slow.overflowed and not fast.overflowed
    with pytest.raises(SubscriptionOverflow):
        slow.drain()
    with pytest.raises(SubscriptionOverflow):
        await slow.get()
    slow.reset()  # the session resynchronised from the store
    await store.deliver("Inbox", message(11))
    assert [c.uid for c in slow.drain()] == [11]  # type: ignore[union-attr]
    await store.close()
