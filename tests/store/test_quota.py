"""Quota: exact limits, checked at commit time so concurrency cannot overshoot."""

import asyncio
from pathlib import Path

import pytest

from app.store import AccountStore, QuotaExceeded, StoreRuntime, check_account
from tests.store.conftest import message


async def open_with_quota(runtime: StoreRuntime, path: Path, quota: int | None) -> AccountStore:
    return await AccountStore.open(path, name="q", runtime=runtime, quota=quota)


async def test_quota_allows_exactly_the_limit_and_refuses_one_byte_more(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    data = message()
    store = await open_with_quota(runtime, tmp_path / "q", 2 * len(data))
    await store.deliver("Inbox", data)
    await store.deliver("Inbox", data)
    assert store.quota_usage().usage == 2 * len(data)
    with pytest.raises(QuotaExceeded) as e:
        await store.deliver("Inbox", b"x")
    assert (e.value.limit, e.value.usage, e.value.size) == (2 * len(data), 2 * len(data), 1)
    store.set_quota(2 * len(data) + 1)
    await store.deliver("Inbox", b"x")
    await store.close()


async def test_over_quota_large_message_leaves_no_file(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    store = await open_with_quota(runtime, tmp_path / "q", 1000)
    with pytest.raises(QuotaExceeded):
        await store.deliver("Inbox", message(body_size=store.inline_threshold))
    assert not [p for p in (store.path / "msg").rglob("*") if p.is_file()]
    assert check_account(store.path) == []
    await store.close()


async def test_concurrent_deliveries_near_the_limit_never_exceed_it(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    data = message(body_size=1000)
    fits = 10
    store = await open_with_quota(runtime, tmp_path / "q", fits * len(data) + len(data) // 2)
    results = await asyncio.gather(
        *(store.deliver("Inbox", data) for _ in range(40)), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(ok) == fits and len(refused) == 30
    usage = store.quota_usage()
    assert usage.usage == fits * len(data) <= usage.limit  # type: ignore[operator]
    assert store.commits < 40  # they really were concurrent, in shared batches
    assert check_account(store.path) == []
    await store.close()


async def test_no_quota_means_unlimited(runtime: StoreRuntime, tmp_path: Path) -> None:
    store = await open_with_quota(runtime, tmp_path / "q", None)
    for _ in range(5):
        await store.deliver("Inbox", message(body_size=50_000))
    assert store.quota_usage().limit is None
    assert store.quota_usage().messages == 5
    await store.close()


async def test_each_copy_counts_toward_quota_but_a_move_does_not(
    runtime: StoreRuntime, tmp_path: Path
) -> None:
    data = message()
    store = await open_with_quota(runtime, tmp_path / "q", 3 * len(data))
    d = await store.deliver("Inbox", data)
    archive = store.mailbox("Archive").id
    await store.copy(d.mailbox_id, [d.uid], archive)
    assert store.quota_usage().usage == 2 * len(data)
    await store.copy(archive, [1], d.mailbox_id)
    assert store.quota_usage().usage == 3 * len(data)
    with pytest.raises(QuotaExceeded):
        await store.copy(d.mailbox_id, [1, 2], archive)  # refused whole: nothing copied
    assert len(await store.messages(archive)) == 1
    await store.move(d.mailbox_id, [1, 2], archive)
    assert store.quota_usage().usage == 3 * len(data)
    assert check_account(store.path) == []
    await store.close()
