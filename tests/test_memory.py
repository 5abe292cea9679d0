"""Idle memory release (app.memory): when it runs, what it calls, how it is configured.

Time is a fake clock and sleeping a fake sleep that advances it: nothing here waits.
"""

import asyncio
import gc
import logging
import platform
import sys
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from app.config import static
from app.config.profiles import PROFILES, ProfileName
from app.memory import (
    IdleRelease,
    ProcessMemory,
    ProcessRelease,
    Released,
    find_malloc_trim,
    rss_kib,
)
from app.store.runtime import StoreRuntime
from app.store.workers import WorkerPool


@dataclass
class FakeTime:
    """A clock, an activity stamp and a sleep that only advances the clock."""

    now: float = 1000.0
    activity: float = 1000.0
    slept: list[float] = field(default_factory=list)
    stop_after_releases: int = 0
    releaser: IdleRelease | None = None

    def clock(self) -> float:
        return self.now

    def last_activity(self) -> float:
        return self.activity

    def active(self) -> None:
        self.activity = self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        r = self.releaser
        if r is not None and r.releases >= self.stop_after_releases:
            raise asyncio.CancelledError


@dataclass
class Recorder:
    """Stands in for the store's release and for malloc_trim."""

    cache_releases: int = 0
    trims: list[int] = field(default_factory=list)

    async def release_caches(self) -> int:
        self.cache_releases += 1
        return 4096

    def trim(self, pad: int) -> int:
        self.trims.append(pad)
        return 1


def releaser(
    t: FakeTime,
    rec: Recorder,
    idle: float = 2.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> IdleRelease:
    r = IdleRelease(
        idle_seconds=idle,
        last_activity=t.last_activity,
        release_caches=rec.release_caches,
        clock=t.clock,
        sleep=sleep or t.sleep,
        process=ProcessMemory(rec.trim),
    )
    t.releaser = r
    return r


async def test_release_runs_once_per_idle_period(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="app.memory")
    t, rec = FakeTime(), Recorder()
    r = releaser(t, rec, idle=2.0)
    t.now += 1.9
    assert not await r.check()
    t.now += 0.1
    assert await r.check()
    assert (rec.cache_releases, rec.trims, r.releases) == (1, [0], 1)
    [logged] = [x for x in caplog.records if x.getMessage() == "idle memory released"]
    assert (logged.sqlite_kib, logged.trimmed) == (4, True)  # type: ignore[attr-defined]
    # Still idle: nothing more to give back until there was activity again.
    t.now += 60
    assert not await r.check()
    t.active()
    t.now += 1.0
    assert not await r.check()
    t.now += 1.0
    assert await r.check()
    assert rec.cache_releases == 2


class Stamp(float):
    """An activity time that can be watched with a weak reference."""


async def test_release_keeps_nothing_from_the_idle_period() -> None:
    # Objects kept from one release to the next were made at the end of a burst or
    # during the release, and each pins the allocator arena it landed in.
    t, rec = FakeTime(), Recorder()
    stamps: list[weakref.ref[Stamp]] = []

    def last_activity() -> float:
        s = Stamp(t.activity)
        stamps.append(weakref.ref(s))
        return s

    r = IdleRelease(
        idle_seconds=2.0,
        last_activity=last_activity,
        release_caches=rec.release_caches,
        clock=t.clock,
        sleep=t.sleep,
        process=ProcessMemory(rec.trim),
    )
    t.now += 2.0
    assert await r.check()
    assert not await r.check()  # the same idle period: released already
    assert r.due_in() == 2.0
    assert [ref for ref in stamps if ref() is not None] == []
    state = {k: v for k, v in vars(r).items() if k != "idle_seconds"}  # configuration
    assert [v for v in state.values() if isinstance(v, Released | ProcessRelease | float)] == []


def test_store_threads_exit_before_the_idle_release() -> None:
    # Idle store threads give their allocator caches back when they exit; the
    # release must come after that to return the memory.
    rt = StoreRuntime()
    try:
        assert isinstance(rt.executor, WorkerPool)
        for profile in PROFILES.values():
            assert rt.executor.idle_exit < profile.idle_release_seconds
    finally:
        rt.executor.shutdown()


async def test_activity_postpones_the_release() -> None:
    t, rec = FakeTime(), Recorder()
    r = releaser(t, rec, idle=2.0)
    for _ in range(10):  # busy: activity every second
        t.now += 1.0
        t.active()
        assert not await r.check()
    assert r.due_in() == 2.0
    assert rec.cache_releases == 0


async def test_run_sleeps_until_due_then_releases() -> None:
    t, rec = FakeTime(), Recorder()
    r = releaser(t, rec, idle=5.0)
    t.now += 3.0  # idle for 3 s already when the loop starts
    t.stop_after_releases = 1
    with pytest.raises(asyncio.CancelledError):
        await r.run()
    # Due 2 s later; released; then back to checking once a period.
    assert t.slept == [2.0, 5.0]
    assert rec.cache_releases == 1


async def test_run_after_a_release_waits_for_new_activity() -> None:
    t, rec = FakeTime(), Recorder()
    sleeps = 0

    async def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 3:
            t.active()  # work arrives while idle-waiting
        await t.sleep(seconds)

    r = releaser(t, rec, idle=5.0, sleep=sleep)
    t.now += 5.0
    assert await r.check()
    t.stop_after_releases = 2
    with pytest.raises(asyncio.CancelledError):
        await r.run()
    # Three idle re-checks without activity released nothing; then one period later.
    assert t.slept == [5.0, 5.0, 5.0, 5.0]
    assert rec.cache_releases == 2


async def test_failed_release_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = FakeTime()
    calls = 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("disk on fire")

    sleeps = 0

    async def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        t.now += seconds
        if sleeps == 2:
            t.active()
        if sleeps == 4:
            raise asyncio.CancelledError

    r = IdleRelease(
        idle_seconds=1.0,
        last_activity=t.last_activity,
        release_caches=broken,
        clock=t.clock,
        sleep=sleep,
        process=ProcessMemory(None, find_trim=False),
    )
    caplog.set_level(logging.ERROR, logger="app.memory")
    with pytest.raises(asyncio.CancelledError):
        await r.run()
    assert calls == 2
    assert [rec.message for rec in caplog.records] == ["idle memory release failed"] * 2


async def test_disabled_release_never_runs() -> None:
    t, rec = FakeTime(), Recorder()
    for idle in (0.0, -1.0):
        r = releaser(t, rec, idle=idle)
        assert not r.enabled
        t.now += 3600
        assert not await r.check()
        await r.run()  # returns at once
    assert rec.cache_releases == 0 and t.slept == []


def test_process_release_without_malloc_trim() -> None:
    """Where the C library has no malloc_trim (musl), only the collection runs."""
    pm = ProcessMemory(None, find_trim=False)
    assert not pm.can_trim

    class Cycle:
        me: object = None

    c = Cycle()
    c.me = c
    del c
    out = pm.release()
    assert out.collected >= 1 and not out.trimmed


def test_process_release_uses_malloc_trim_on_glibc() -> None:
    trim = find_malloc_trim()
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc-only")
    assert trim is not None
    assert ProcessMemory().can_trim
    assert isinstance(ProcessMemory().release().trimmed, bool)
    assert rss_kib() > 0


def test_freeze_leaves_new_garbage_collectable() -> None:
    from app.memory import freeze_startup_objects

    freeze_startup_objects()
    try:

        class Cycle:
            me: object = None

        c = Cycle()
        c.me = c
        del c
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()


def test_profiles_release_when_idle_and_config_can_disable_it() -> None:
    base = 'hostname = "h.example"\ndata_dir = "d"\n'
    assert PROFILES[ProfileName.DEFAULT].idle_release_seconds > 0
    low = static.parse(base + 'profile = "lowmem"\n')
    assert 0 < low.tuned.idle_release_seconds <= PROFILES[ProfileName.DEFAULT].idle_release_seconds
    off = static.parse(base + "[tuning]\nidle_release_seconds = -1\n")
    assert off.tuned.idle_release_seconds == -1
    later = static.parse(base + "[tuning]\nidle_release_seconds = 30\n")
    assert later.tuned.idle_release_seconds == 30.0


def test_malloc_arenas_is_a_profile_setting_and_mallopt_accepts_it() -> None:
    from app.memory import limit_malloc_arenas

    assert PROFILES[ProfileName.LOWMEM].malloc_arenas == 1
    assert limit_malloc_arenas(0) is False  # nothing to set
    if find_malloc_trim() is not None:  # glibc: mallopt exists and takes M_ARENA_MAX
        assert limit_malloc_arenas(8) is True


def test_release_empties_the_attribute_lookup_cache() -> None:
    # The cache keeps a reference to every name looked up, and C code makes a fresh
    # name string for some lookups on every call (re.finditer, datetime.isoformat):
    # those strings must not outlive the burst that made them.
    class Probe:
        pass

    name = "".join(["never", "_set"])  # a fresh string object, as such C code makes
    before = sys.getrefcount(name)
    assert getattr(Probe, name, None) is None
    assert sys.getrefcount(name) > before  # held by the cache
    ProcessMemory(find_trim=False).release()
    assert sys.getrefcount(name) == before
