"""The running server's open account stores, by account name.

An account store is opened on first use (a delivery, a login) with the quota the
dynamic settings give it and stays open while the server runs, so a delivery never
pays for opening a database. After a settings change the server calls
:meth:`Accounts.apply` to update quotas and close accounts that were removed.
Account directories are ``DATA_DIR/accounts/NAME``.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from app.store.account import AccountStore
from app.store.errors import StoreClosed
from app.store.runtime import StoreRuntime

log = logging.getLogger(__name__)

QuotaFor = Callable[[str], int | None]


class Accounts:
    """Open account stores of one server."""

    def __init__(self, runtime: StoreRuntime, data_dir: Path, quota_for: QuotaFor) -> None:
        self.runtime = runtime
        self.root = data_dir / "accounts"
        self._quota_for = quota_for
        self._open: dict[str, AccountStore] = {}
        self._indexers: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def path(self, name: str) -> Path:
        return self.root / name

    async def get(self, name: str) -> AccountStore:
        """The open store of account ``name``, opening it on first use."""
        store = self._open.get(name)
        if store is not None:
            return store
        async with self._lock:
            store = self._open.get(name)
            if store is None:
                store = await AccountStore.open(
                    self.path(name), name=name, runtime=self.runtime, quota=self._quota_for(name)
                )
                self._open[name] = store
                log.info("account opened", extra={"account": name})
                task = asyncio.get_running_loop().create_task(self._index(store))
                self._indexers.add(task)
                task.add_done_callback(self._indexers.discard)
        return store

    async def _index(self, store: AccountStore) -> None:
        """Index messages stored before the full-text index existed, a batch at a time,
        in the background; searches scan them meanwhile."""
        total = 0
        try:
            while n := await store.index_missing():
                total += n
        except StoreClosed:
            return
        if total:
            log.info("messages indexed", extra={"account": store.name, "count": total})

    async def apply(self, existing: Iterable[str], quota_for: QuotaFor) -> None:
        """After a settings change: new quotas, and close accounts no longer configured."""
        self._quota_for = quota_for
        keep = set(existing)
        async with self._lock:
            for name in list(self._open):
                if name not in keep:
                    store = self._open.pop(name)
                    await store.close(force=True)
                    log.info("account closed, removed from settings", extra={"account": name})
                else:
                    self._open[name].set_quota(quota_for(name))

    async def close(self) -> None:
        for task in list(self._indexers):
            task.cancel()
        async with self._lock:
            for store in self._open.values():
                await store.close(force=True)
            self._open.clear()
        await self.runtime.close()
