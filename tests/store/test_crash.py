"""Kill -9 under concurrent delivery loses no acknowledged message.

A child process delivers with 16 concurrent deliverers and acknowledges each
returned delivery on stdout. The parent kills it with SIGKILL after a random
number (1..200) of acknowledgements, 20 times, and after each kill checks: every
acknowledged message is present and byte-exact, and the account is consistent
except possibly for orphan files (written before a commit that never happened),
which repair removes.
"""

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from app.message.fixup import crlf
from app.store import AccountStore, ProblemKind, StoreRuntime, check_account, repair_account
from tests.store.crash_child import make_message

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 20


def run_child_and_kill(path: Path, run: str, kill_after: int) -> dict[int, str]:
    """Start a child, SIGKILL it after ``kill_after`` acks; return all acks {uid: marker}."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_child", str(path), run],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    acks: dict[int, str] = {}
    try:
        for line in child.stdout:
            uid, marker = line.decode().split()
            acks[int(uid)] = marker
            if len(acks) >= kill_after:
                child.send_signal(signal.SIGKILL)
                break
        # Lines written before the kill landed are acknowledgements too.
        for line in child.stdout:
            if line.endswith(b"\n"):
                uid, marker = line.decode().split()
                acks[int(uid)] = marker
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL, "the child must be killed, not exit"
    return acks


async def verify(path: Path, acks: dict[int, str]) -> int:
    runtime = StoreRuntime(workers=2)
    store = await AccountStore.open(path, name="crash", runtime=runtime)
    try:
        inbox = store.mailbox("Inbox")
        stored = {m.uid: m for m in await store.messages(inbox.id)}
        missing = sorted(set(acks) - set(stored))
        assert not missing, f"acknowledged but lost: {missing[:10]}"
        for uid, marker in acks.items():
            data = await store.read_message(stored[uid])
            assert data == crlf(make_message(marker)), f"uid {uid} ({marker}) differs"
        return len(stored)
    finally:
        await store.close()
        await runtime.close()


def test_sigkill_during_concurrent_delivery_loses_no_acknowledged_message(
    tmp_path: Path,
) -> None:
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    path = tmp_path / "acct"
    all_acks: dict[int, str] = {}
    orphans_seen = 0
    for round_ in range(ROUNDS):
        acks = run_child_and_kill(path, f"r{round_}", rnd.randint(1, 200))
        assert not set(acks) & set(all_acks), "a UID was reused after a crash"
        all_acks |= acks
        problems = check_account(path)
        assert {p.kind for p in problems} <= {ProblemKind.ORPHAN}, (seed, problems)
        orphans_seen += len(problems)
        assert repair_account(path) == problems
        assert check_account(path) == []
        stored = asyncio.run(verify(path, all_acks))
        assert stored >= len(all_acks), seed
