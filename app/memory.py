"""Giving memory back to the operating system once the server has gone idle.

A burst of work (a mailbox filled over IMAP, a queue of deliveries) leaves memory
behind that nothing uses any more but that the process keeps: SQLite page caches
of connections that went quiet, cyclic garbage, and above all free blocks in the
C allocator's arenas. glibc gives the top of the main heap back by itself, but not
the per-thread arenas that the store and CPU threads allocate from, nor free pages
in the middle of a heap; ``malloc_trim(0)`` does (measured: ~20 MiB of 35 MiB left
behind by the IMAP benchmark, in ~2 ms).

:class:`IdleRelease` runs a release once after every period of ``idle_seconds``
without activity (``tuning.idle_release_seconds``): first the caller's release of
caches that can be rebuilt (the store's, see
:meth:`app.store.runtime.StoreRuntime.release_memory`), then
:meth:`ProcessMemory.release` (a cyclic collection and ``malloc_trim``). It never
releases twice for the same idle period, and a release while work arrives costs
that work only a re-read of pages from the OS cache.

Layer 0: imports nothing from ``app``; the clock, sleep and executor are passed in.
"""

import asyncio
import ctypes
import gc
import logging
import math
import os
import sys
import time
from array import array
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MallocTrim = Callable[[int], int]


def _libc_function(name: str, *argtypes: Any) -> Any | None:
    """A C library function returning int, or None where the C library has none."""
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


def find_malloc_trim() -> MallocTrim | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    # ctypes.CDLL functions release the GIL while they run: trimming does not stop
    # other Python threads.
    trim: MallocTrim | None = _libc_function("malloc_trim", ctypes.c_size_t)
    return trim


def rss_kib() -> int:
    """Resident set size of this process in KiB (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


@dataclass(frozen=True, slots=True)
class ProcessRelease:
    """What :meth:`ProcessMemory.release` did."""

    collected: int  # objects the cyclic collector found unreachable
    trimmed: bool  # malloc_trim ran and returned memory to the OS


def _type_cache_clearer() -> Callable[[], None]:
    # Python 3.13 deprecates sys._clear_type_cache for _clear_internal_caches.
    clear: Callable[[], None] | None = getattr(sys, "_clear_internal_caches", None)
    return clear or sys._clear_type_cache


class ProcessMemory:
    """Process-wide release: a full cyclic collection, the interpreter's attribute
    lookup cache, then ``malloc_trim(0)``.

    The lookup cache (4,096 entries) keeps a reference to the attribute name of
    every entry, and C code makes a fresh name string for some lookups on every
    call (``re.finditer`` looks up ``"search"``, ``datetime.isoformat`` of an aware
    time ``"utcoffset"``). After a burst of mail the cache held ~700 such strings,
    made all through the burst, and each kept its allocator arena (1 MiB) from
    being returned. Emptying it costs a few hundred re-lookups.

    ``trim`` defaults to glibc's ``malloc_trim`` when present; without it (musl)
    only the collection and the cache run.
    """

    def __init__(self, trim: MallocTrim | None = None, *, find_trim: bool = True) -> None:
        self._trim = trim if trim is not None or not find_trim else find_malloc_trim()
        self._clear_type_cache = _type_cache_clearer()

    @property
    def can_trim(self) -> bool:
        """Whether the C library can return free heap memory on request."""
        return self._trim is not None

    def release(self) -> ProcessRelease:
        """Collect cyclic garbage and return free allocator memory to the OS.

        Blocking for a few milliseconds: call it from an executor thread. The
        collection holds the GIL; ``malloc_trim`` does not.
        """
        collected = gc.collect()
        self._clear_type_cache()
        trimmed = False
        if self._trim is not None:
            trimmed = bool(self._trim(0))
        return ProcessRelease(collected, trimmed)


_M_ARENA_MAX = -8  # glibc malloc.h


def limit_malloc_arenas(count: int) -> bool:
    """Let glibc's allocator use at most ``count`` arenas (``mallopt(M_ARENA_MAX)``).

    By default every thread that allocates may get an arena of its own (up to eight
    per CPU), and each keeps free memory that is hard to give back. Python threads
    take turns on the GIL, so sharing arenas costs little contention. Call it before
    threads start; False where the C library has no ``mallopt`` (or count < 1).
    """
    fn = _libc_function("mallopt", ctypes.c_int, ctypes.c_int) if count >= 1 else None
    return fn is not None and bool(fn(_M_ARENA_MAX, count))


def freeze_startup_objects() -> None:
    """Move every object alive now out of the cyclic collector's reach.

    Called once the server has started: modules, classes, configuration and other
    start-up objects live for the whole run, and without this every full collection
    (the automatic ones during load and each idle release) walks them again, ~15 ms
    for ~50,000 objects. Objects freed by reference counting are still freed.
    """
    gc.collect()
    gc.freeze()


@dataclass(frozen=True, slots=True)
class Released:
    """One idle release, as logged."""

    store_bytes: int  # SQLite cache memory given up by the store
    process: ProcessRelease
    rss_before_kib: int
    rss_after_kib: int
    seconds: float


class IdleRelease:
    """Release memory once after each period of ``idle_seconds`` without activity.

    ``last_activity()`` returns the ``clock()`` time of the latest activity (the
    store notes every operation). ``release_caches()`` frees what can be rebuilt,
    on the threads that own it, and returns the bytes freed; it runs on the event
    loop. The process-wide part runs in ``executor``. ``idle_seconds <= 0``
    disables releasing: :meth:`run` returns at once.

    :meth:`check` is one decision (tests drive it with a fake clock);
    :meth:`run` calls it in a loop, sleeping until the next possible release.
    """

    def __init__(
        self,
        *,
        idle_seconds: float,
        last_activity: Callable[[], float],
        release_caches: Callable[[], Awaitable[int]],
        executor: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        process: ProcessMemory | None = None,
    ) -> None:
        self.idle_seconds = idle_seconds
        self._last_activity = last_activity
        self._release_caches = release_caches
        self._executor = executor
        self._clock = clock
        self._sleep = sleep
        self._process = process or ProcessMemory()
        # Activity time the latest release followed (NaN: none yet), one release
        # per idle period. A C double, like everything kept from one release to
        # the next: objects made during a release and kept stay in whichever
        # allocator arena they landed in, and an arena holding even one object
        # cannot be given back.
        self._released_after = array("d", (math.nan,))
        self.releases = 0  # releases done; for tests and the log

    @property
    def enabled(self) -> bool:
        return self.idle_seconds > 0

    def due_in(self) -> float:
        """Seconds until a release is due; 0 when due now. An idle period already
        released waits for new activity, re-checked every ``idle_seconds``."""
        last = self._last_activity()
        if last == self._released_after[0]:
            return self.idle_seconds
        return max(0.0, last + self.idle_seconds - self._clock())

    async def check(self) -> bool:
        """Release if the process has been idle long enough and not yet released
        since its latest activity; returns whether it released."""
        if not self.enabled:
            return False
        last = self._last_activity()
        if last == self._released_after[0] or self._clock() - last < self.idle_seconds:
            return False
        self._released_after[0] = last
        await self.release()
        return True

    async def release(self) -> Released:
        """Release now, whatever the activity: the store's caches, then the process."""
        t0 = time.perf_counter()
        before = rss_kib()
        store_bytes = await self._release_caches()
        loop = asyncio.get_running_loop()
        proc = await loop.run_in_executor(self._executor, self._process.release)
        done = Released(store_bytes, proc, before, rss_kib(), time.perf_counter() - t0)
        self.releases += 1
        # Debug: on a quiet server this happens after every burst of mail.
        log.debug(
            "idle memory released",
            extra={
                "sqlite_kib": store_bytes // 1024,
                "gc_objects": proc.collected,
                "trimmed": proc.trimmed,
                "rss_before_kib": done.rss_before_kib,
                "rss_after_kib": done.rss_after_kib,
                "ms": round(done.seconds * 1000, 1),
            },
        )
        return done

    async def run(self) -> None:
        """Release after each idle period until cancelled. A failed release is
        logged and retried after the next idle period."""
        if not self.enabled:
            return
        while True:
            await self._sleep(max(self.due_in(), 0.05))
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("idle memory release failed")
