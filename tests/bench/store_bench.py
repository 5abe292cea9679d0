"""Benchmark: durable deliveries per second into one account, by concurrency.

``run(workdir)`` delivers 4 KiB messages with 1, 8 and 32 concurrent deliverers
(a fresh account per level; each level stops after MESSAGES deliveries or
TIME_LIMIT seconds) and reports rate, p50/p99 latency and the number of commits.
Durability is the production setting: WAL, ``synchronous=FULL``, each delivery
returns after the commit holding it.

Run: ``.venv/bin/python -m tests.bench.store_bench [WORKDIR]`` (prints JSON).
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.store import AccountStore, StoreRuntime

LEVELS = (1, 8, 32)
MESSAGES = 3000
TIME_LIMIT = 15.0
MESSAGE_SIZE = 4096


def make_message(n: int) -> bytes:
    """A 4 KiB message with CRLF line endings."""
    head = (
        f"From: bench@example.org\r\nTo: user@example.org\r\nSubject: bench {n}\r\n"
        f"Message-ID: <bench{n}@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
    body = (line * (MESSAGE_SIZE // len(line) + 1))[: MESSAGE_SIZE - len(head)]
    return head + body


async def level(workdir: Path, runtime: StoreRuntime, concurrency: int) -> dict[str, Any]:
    """Deliver with ``concurrency`` deliverers; return the figures of this level."""
    store = await AccountStore.open(
        workdir / f"c{concurrency}", name=f"bench{concurrency}", runtime=runtime
    )
    latencies: list[float] = []
    counter = iter(range(MESSAGES))
    deadline = time.perf_counter() + TIME_LIMIT

    async def deliverer() -> None:
        for n in counter:
            if time.perf_counter() > deadline:
                return
            data = make_message(n)
            t0 = time.perf_counter()
            await store.deliver("Inbox", data)
            latencies.append(time.perf_counter() - t0)

    commits0 = store.commits
    start = time.perf_counter()
    await asyncio.gather(*(deliverer() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    commits = store.commits - commits0
    await store.close()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "concurrency": concurrency,
        "messages": len(latencies),
        "seconds": round(elapsed, 3),
        "deliveries_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 3),
        "p99_ms": round(q[98] * 1000, 3),
        "commits": commits,
        "messages_per_commit": round(len(latencies) / max(1, commits), 2),
    }


def run(workdir: Path) -> dict[str, Any]:
    """Run every level in ``workdir``; returns {"store_deliver": [level figures...]}."""

    async def main() -> list[dict[str, Any]]:
        runtime = StoreRuntime(workers=4)
        try:
            return [await level(workdir, runtime, c) for c in LEVELS]
        finally:
            await runtime.close()

    return {"store_deliver": asyncio.run(main()), "message_size": MESSAGE_SIZE}


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps(run(Path(sys.argv[1])), indent=2))
    else:
        with tempfile.TemporaryDirectory(dir=".") as d:
            print(json.dumps(run(Path(d)), indent=2))
