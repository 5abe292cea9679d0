"""The process-wide part of the store: one bounded executor and the open accounts.

The server creates one :class:`StoreRuntime` and passes it to every
:meth:`AccountStore.open`. Every SQLite write, fsync and large file read of every
account runs in its executor, so the number of threads stays bounded however many
accounts are active (2 for the ``lowmem`` profile, 4 otherwise); threads left idle
exit (:class:`app.store.workers.WorkerPool`).

It also keeps the time of the latest store operation (:meth:`StoreRuntime.touch`,
called by every :class:`AccountStore` operation) and can release the memory open
accounts hold and can rebuild (:meth:`StoreRuntime.release_memory`), which the
server does once it has been idle a while (see :mod:`app.memory`).
"""

import asyncio
import time
from array import array
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Protocol

from app.store.workers import WorkerPool

# Threads per profile; a Raspberry-Pi-class machine gains nothing from more
# threads than cores for fsync-bound work.
PROFILE_WORKERS = {"lowmem": 2, "default": 4}


class OpenAccount(Protocol):
    """What the runtime needs of an open account store (AccountStore)."""

    async def close(self, *, force: bool = False) -> None:
        """Close, finishing queued writes."""

    async def release_memory(self) -> int:
        """Free caches that can be rebuilt, from idle connections; bytes freed."""


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
        executor: Executor | None = None,
        cache_kib: int = 2048,
        clock: Callable[[], float] = time.monotonic,
        worker_idle_exit: float = 0.5,
    ) -> None:
        self.cache_kib = cache_kib  # SQLite page cache of each account connection
        self.clock = clock
        # clock() at the latest store operation, as a C double: a float object
        # would be the one made by the last operation of a burst, left in whichever
        # allocator arena it landed in, and keep that arena (1 MiB) from being
        # returned once the burst's other objects are gone.
        self._last_activity = array("d", (clock(),))
        self._owns_executor = executor is None
        # Idle threads exit (and give their allocator caches back) after
        # ``worker_idle_exit`` seconds: less than any profile's idle release delay.
        self.executor: Executor = executor or WorkerPool(
            workers or PROFILE_WORKERS["default"],
            idle_exit=worker_idle_exit,
            thread_name_prefix="store",
        )
        self.accounts: dict[Path, OpenAccount] = {}
        self.refcounts: dict[Path, int] = {}
        self.open_lock = asyncio.Lock()

    @classmethod
    def for_profile(cls, profile: str) -> "StoreRuntime":
        """Runtime sized for a config profile ("lowmem" or "default")."""
        return cls(workers=PROFILE_WORKERS.get(profile, PROFILE_WORKERS["default"]))

    @property
    def last_activity(self) -> float:
        """clock() at the latest store operation."""
        return self._last_activity[0]

    def touch(self) -> None:
        """Note store activity now (on the event loop thread; ~50 ns)."""
        self._last_activity[0] = self.clock()

    async def release_memory(self) -> int:
        """Ask every open account to free what it caches and can rebuild.

        Returns the bytes of SQLite cache freed. Each account only touches
        connections no read or write is using (see
        :meth:`AccountStore.release_memory`), so this is safe at any time; the
        server calls it after a period without activity.
        """
        freed = 0
        for store in list(self.accounts.values()):
            freed += await store.release_memory()
        return freed

    async def close(self) -> None:
        """Close every open account, then the executor if this runtime created it."""
        for store in list(self.accounts.values()):
            await store.close(force=True)
        if self._owns_executor:
            self.executor.shutdown(wait=True)
