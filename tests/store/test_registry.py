"""The server's account registry: one open store per account, quotas follow settings."""

from pathlib import Path

import pytest

from app.store import QuotaExceeded, StoreClosed
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
