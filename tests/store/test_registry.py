"""The server's account registry: one open store per account, quotas follow settings."""

import asyncio
from pathlib import Path

import pytest

from app.store import QuotaExceeded, StoreClosed
from app.store.committer import Outcome
from app.store.registry import Accounts
from app.store.runtime import StoreRuntime


async def test_account_is_opened_once_and_quota_changes_apply(tmp_path: Path) -> None:
    quotas: dict[str, int | None] = {"you": 10_000}
    accounts = Accounts(StoreRuntime(workers=2), tmp_path, quotas.get)
    try:
        a = await accounts.get("you")
        assert await accounts.get("you") is a
        assert (tmp_path / "accounts" / "you" / "index.db").exists()
        await a.deliver("Inbox", b"Subject: x\r\n\r\n" + b"x" * 5000)
        with pytest.raises(QuotaExceeded):
            await a.deliver("Inbox", b"Subject: y\r\n\r\n" + b"y" * 6000)
        quotas["you"] = None
        await accounts.apply(["you"], quotas.get)
        await a.deliver("Inbox", b"Subject: y\r\n\r\n" + b"y" * 6000)
        assert a.quota_usage().messages == 2
    finally:
        await accounts.close()


async def test_removed_account_is_closed(tmp_path: Path) -> None:
    accounts = Accounts(StoreRuntime(workers=2), tmp_path, lambda _: None)
    try:
        a = await accounts.get("gone")
        await accounts.apply([], lambda _: None)
        with pytest.raises(StoreClosed):
            await a.deliver("Inbox", b"Subject: z\r\n\r\nz\r\n")
        # data stays on disk
        assert (tmp_path / "accounts" / "gone" / "index.db").exists()
    finally:
        await accounts.close()


async def test_messages_without_index_entries_are_indexed_in_the_background(
    tmp_path: Path,
) -> None:
    runtime = StoreRuntime(workers=2)
    accounts = Accounts(runtime, tmp_path, lambda _: None)
    try:
        store = await accounts.get("old")
        for n in range(5):
            await store.deliver("Inbox", f"Subject: m{n}\r\n\r\nneedle {n}\r\n".encode())
        await asyncio.gather(*accounts._indexers)
        # As if stored before the index existed:
        await store._write(lambda c: Outcome(c.execute("DELETE FROM message_text")))
        inbox = store.mailbox("Inbox").id
        assert len(store.unindexed_uids(inbox)) == 5
        await accounts.apply([], lambda _: None)  # close it
        store = await accounts.get("old")
        await asyncio.gather(*accounts._indexers)
        assert store.unindexed_uids(store.mailbox("Inbox").id) == []
    finally:
        await accounts.close()


async def test_account_connections_use_the_profiles_cache_size(tmp_path: Path) -> None:
    accounts = Accounts(StoreRuntime(workers=2, cache_kib=512), tmp_path, lambda _: None)
    try:
        store = await accounts.get("small")
        assert store._rconn.execute("PRAGMA cache_size").fetchone()[0] == -512
    finally:
        await accounts.close()
