"""The store's thread pool: like ``ThreadPoolExecutor``, but idle threads exit.

glibc gives every thread a cache of recently freed blocks (the tcache: up to 7
blocks in each of 64 size classes) that ``malloc_trim`` leaves alone. A store
thread that ran SQLite reads and commits keeps its cache full for as long as it
lives: with the four threads of the default profile that was ~0.7 MiB still held
after the IMAP benchmark's load, whatever the idle release did. A thread that exits
hands its cache back to the allocator, so a :class:`WorkerPool` thread exits once
it has waited ``idle_exit`` seconds for work; the next submission starts one again
(~0.1 ms, nothing next to an fsync). ``idle_exit`` is shorter than the idle memory
release delay of every profile (:mod:`app.memory`), so the threads of a finished
burst are gone when the release trims the heap.

Work runs in submission order on at most ``max_workers`` threads. Threads are not
daemons: a process that ends without :meth:`WorkerPool.shutdown` still finishes
the work it queued (a commit is never cut short), and idle threads leave on their
own within ``idle_exit``.
"""

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# A queued call: (future, fn, args, kwargs).
_Job = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class WorkerPool(Executor):
    """An executor of at most ``max_workers`` threads that exit after ``idle_exit``
    seconds without work."""

    def __init__(
        self, max_workers: int, *, idle_exit: float = 0.5, thread_name_prefix: str = "worker"
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.idle_exit = idle_exit
        self._prefix = thread_name_prefix
        # One lock for everything: the queue, the threads and the count of threads
        # waiting for work. (queue.SimpleQueue.get with a timeout can block past it.)
        self._cond = threading.Condition(threading.Lock())
        self._jobs: deque[_Job] = deque()
        self._threads: set[threading.Thread] = set()
        self._waiting = 0
        self._started = 0
        self._shutdown = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> "Future[T]":
        future: Future[T] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._jobs.append((future, fn, args, kwargs))
            if self._waiting:
                self._cond.notify()
            # A waiting thread only leaves the count once it holds the lock again:
            # start another thread while the queue is longer than the waiters.
            if len(self._jobs) > self._waiting and len(self._threads) < self.max_workers:
                self._start_thread()
        return future

    def _start_thread(self) -> None:
        self._started += 1
        t = threading.Thread(target=self._work, name=f"{self._prefix}_{self._started}")
        self._threads.add(t)
        t.start()

    def threads(self) -> list[threading.Thread]:
        """The pool's threads now (for tests and diagnostics)."""
        with self._cond:
            return list(self._threads)

    def _next_job(self) -> _Job | None:
        """The next job, or None when this thread should end (idle, or shut down)."""
        with self._cond:
            while not self._jobs:
                if self._shutdown:
                    return None
                self._waiting += 1
                try:
                    got = self._cond.wait(self.idle_exit)
                finally:
                    self._waiting -= 1
                if not got and not self._jobs and not self._shutdown:
                    self._threads.discard(threading.current_thread())
                    return None
            return self._jobs.popleft()

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            future, fn, args, kwargs = job
            del job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as e:
                    future.set_exception(e)
                else:
                    future.set_result(result)
            # Drop references now: the thread may wait a while for the next job.
            del future, fn, args, kwargs

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; queued work still runs unless ``cancel_futures``."""
        with self._cond:
            self._shutdown = True
            if cancel_futures:
                while self._jobs:
                    self._jobs.popleft()[0].cancel()
            self._cond.notify_all()
            threads = list(self._threads)
        if wait:
            for t in threads:
                t.join()
