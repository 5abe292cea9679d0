"""The process-wide part of the store: one bounded executor and the open accounts.

The server creates one :class:`StoreRuntime` and passes it to every
:meth:`AccountStore.open`. Every SQLite write, fsync and large file read of every
account runs in its executor, so the number of threads stays fixed however many
accounts are active (2 for the ``lowmem`` profile, 4 otherwise).
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

# Threads per profile; a Raspberry-Pi-class machine gains nothing from more
# threads than cores for fsync-bound work.
PROFILE_WORKERS = {"lowmem": 2, "default": 4}


class OpenAccount(Protocol):
    """What the runtime needs of an open account store (AccountStore)."""

    async def close(self, *, force: bool = False) -> None:
        """Close, finishing queued writes."""


class StoreRuntime:
    """Executor and registry of open account stores, shared by the whole process.

    The registry makes opening an account that is already open return the same
    :class:`AccountStore` object (reference counted), so one account never has two
    committers racing for its database.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        executor: ThreadPoolExecutor | None = None,
        cache_kib: int = 2048,
    ) -> None:
        self.cache_kib = cache_kib  # SQLite page cache of each account connection
        self._owns_executor = executor is None
        self.executor = executor or ThreadPoolExecutor(
            max_workers=workers or PROFILE_WORKERS["default"], thread_name_prefix="store"
        )
        self.accounts: dict[Path, OpenAccount] = {}
        self.refcounts: dict[Path, int] = {}
        self.open_lock = asyncio.Lock()

    @classmethod
    def for_profile(cls, profile: str) -> "StoreRuntime":
        """Runtime sized for a config profile ("lowmem" or "default")."""
        return cls(workers=PROFILE_WORKERS.get(profile, PROFILE_WORKERS["default"]))

    async def close(self) -> None:
        """Close every open account, then the executor if this runtime created it."""
        for store in list(self.accounts.values()):
            await store.close(force=True)
        if self._owns_executor:
            self.executor.shutdown(wait=True)
