"""The store's thread pool (app.store.workers): bounded, ordered, and idle threads exit.

Threads are observed by joining them and work is held with threading events, never
by sleeping; the few waits have long timeouts that only a broken pool reaches.
"""

import threading
from concurrent.futures import CancelledError, Future, wait

import pytest

from app.store.workers import WorkerPool

TIMEOUT = 30.0  # only reached if the pool is broken


def join_all(pool: WorkerPool) -> None:
    for t in pool.threads():
        t.join(TIMEOUT)
        assert not t.is_alive()


def test_runs_up_to_max_workers_at_once_and_no_more() -> None:
    pool = WorkerPool(3, idle_exit=TIMEOUT)
    barrier = threading.Barrier(3, timeout=TIMEOUT)
    release = threading.Event()
    try:
        # Three calls meet at the barrier: they ran at the same time on three threads.
        met = [pool.submit(barrier.wait) for _ in range(3)]
        assert sorted(f.result(TIMEOUT) for f in met) == [0, 1, 2]
        held = [pool.submit(release.wait, TIMEOUT) for _ in range(5)]
        assert len(pool.threads()) == 3
        release.set()
        assert all(f.result(TIMEOUT) for f in held)
        assert len(pool.threads()) <= 3
    finally:
        release.set()
        pool.shutdown()


def test_one_worker_runs_calls_in_submission_order() -> None:
    pool = WorkerPool(1, idle_exit=TIMEOUT)
    seen: list[int] = []
    futures = [pool.submit(seen.append, i) for i in range(200)]
    wait(futures, TIMEOUT)
    pool.shutdown()
    assert seen == list(range(200))


def test_results_and_exceptions_reach_the_future() -> None:
    pool = WorkerPool(2)
    try:
        assert pool.submit(pow, 2, 10).result(TIMEOUT) == 1024
        assert pool.submit(int, "12", base=16).result(TIMEOUT) == 18
        with pytest.raises(ZeroDivisionError):
            pool.submit(divmod, 1, 0).result(TIMEOUT)
        assert pool.submit(pow, 3, 2).result(TIMEOUT) == 9  # the thread survived
    finally:
        pool.shutdown()


def test_idle_threads_exit_and_come_back_on_demand() -> None:
    # An exiting thread hands glibc's per-thread cache of freed blocks back to the
    # allocator, where malloc_trim can return it.
    pool = WorkerPool(2, idle_exit=0.01, thread_name_prefix="store")
    try:
        barrier = threading.Barrier(2, timeout=TIMEOUT)
        wait([pool.submit(barrier.wait) for _ in range(2)], TIMEOUT)
        threads = pool.threads()
        assert len(threads) == 2 and all(t.name.startswith("store_") for t in threads)
        for t in threads:
            t.join(TIMEOUT)
            assert not t.is_alive()
        assert pool.threads() == []
        assert pool.submit(pow, 2, 5).result(TIMEOUT) == 32
        assert len(pool.threads()) == 1
    finally:
        pool.shutdown()


def test_no_call_is_lost_while_threads_time_out() -> None:
    # Threads give up waiting all the time here; every call must still run.
    pool = WorkerPool(3, idle_exit=0.0001)
    try:
        for _ in range(50):
            futures = [pool.submit(pow, i, 2) for i in range(20)]
            assert not wait(futures, TIMEOUT).not_done
            assert [f.result() for f in futures] == [i * i for i in range(20)]
            join_all(pool)
    finally:
        pool.shutdown()


def test_shutdown_finishes_queued_work_then_refuses_more() -> None:
    pool = WorkerPool(1, idle_exit=TIMEOUT)
    gate = threading.Event()
    first = pool.submit(gate.wait, TIMEOUT)
    queued = [pool.submit(pow, i, 2) for i in range(5)]
    gate.set()
    pool.shutdown(wait=True)
    assert first.result(0) is True and [f.result(0) for f in queued] == [0, 1, 4, 9, 16]
    assert all(not t.is_alive() for t in pool.threads())
    with pytest.raises(RuntimeError):
        pool.submit(pow, 1, 1)


def test_shutdown_can_cancel_queued_work() -> None:
    pool = WorkerPool(1, idle_exit=TIMEOUT)
    gate = threading.Event()
    running = threading.Event()

    def hold() -> str:
        running.set()
        gate.wait(TIMEOUT)
        return "done"

    first = pool.submit(hold)
    assert running.wait(TIMEOUT)
    queued: list[Future[int]] = [pool.submit(pow, i, 2) for i in range(3)]
    gate.set()
    pool.shutdown(wait=True, cancel_futures=True)
    assert first.result(0) == "done"
    for f in queued:
        with pytest.raises(CancelledError):
            f.result(0)


def test_max_workers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        WorkerPool(0)
