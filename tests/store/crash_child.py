"""Child process of the crash test: deliver under load, acknowledge each on stdout.

Usage: ``python -m tests.store.crash_child ACCOUNT_DIR RUN_ID``. Sixteen concurrent
deliverers send a mix of small (inline) and large (file) messages to one account
forever; after each ``deliver`` returns, one line ``UID MARKER`` is written and
flushed. The parent kills the process with SIGKILL at a moment of its choosing and
then checks that every acknowledged message is stored, byte-exact.
"""

import asyncio
import sys
from pathlib import Path

from app.store import AccountStore, StoreRuntime

DELIVERERS = 16
LARGE_BODY = 150 * 1024  # above the 128 KiB inline threshold


def make_message(marker: str) -> bytes:
    """Deterministic content for a marker "RUN-WORKER-SEQ"; every 5th is large.

    Every 7th uses bare LF line endings, which the store turns into CRLF.
    """
    seq = int(marker.rsplit("-", 1)[1])
    size = LARGE_BODY if seq % 5 == 0 else 2000
    body = (marker.encode() + b" ") * (size // (len(marker) + 1))
    nl = b"\n" if seq % 7 == 0 else b"\r\n"
    head = f"Subject: crash {marker}{nl.decode()}Message-ID: <{marker}@crash>{nl.decode()}"
    return head.encode() + nl + body + nl


async def deliverer(store: AccountStore, run: str, worker: int) -> None:
    seq = 0
    out = sys.stdout
    while True:
        seq += 1
        marker = f"{run}-{worker}-{seq}"
        d = await store.deliver("Inbox", make_message(marker))
        out.write(f"{d.uid} {marker}\n")
        out.flush()


async def main(path: Path, run: str) -> None:
    runtime = StoreRuntime(workers=2)
    store = await AccountStore.open(path, name="crash", runtime=runtime)
    await asyncio.gather(*(deliverer(store, run, w) for w in range(DELIVERERS)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
