"""A SIGKILL during a 32-connection SMTP load loses no message that got a 250."""

import asyncio
import random
import signal

import apsw
import pytest

from app.store import ProblemKind, check_account
from tests.mailserver import MailServer, setup_server, start
from tests.smtpload import LoadResult, run_load

ROUNDS = 3


def stored_ids(server: MailServer) -> set[str]:
    db = server.data / "accounts" / "you" / "index.db"
    conn = apsw.Connection(str(db))  # the server is dead: a normal open recovers the WAL
    try:
        return {str(r[0]) for r in conn.execute("SELECT message_id FROM message")}
    finally:
        conn.close()


async def load_until_kill(server: MailServer, kill_after: int) -> LoadResult:
    """Run the load and SIGKILL the server once ``kill_after`` messages were acked."""
    assert server.proc is not None
    res = LoadResult()
    task = asyncio.ensure_future(
        run_load(
            "127.0.0.1",
            server.ports["smtp"],
            connections=32,
            per_connection=1000,
            max_seconds=60,
            result=res,
        )
    )
    while not task.done():
        await asyncio.wait({task}, timeout=0.005)  # poll the shared result, bounded by the load
        if len(res.acked) >= kill_after:
            server.proc.proc.send_signal(signal.SIGKILL)
            break
    return await task


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_sigkill_under_load_keeps_every_acknowledged_message(
    tmp_path_factory: pytest.TempPathFactory, round_: int
) -> None:
    server = start(
        setup_server(
            tmp_path_factory.mktemp(f"kill{round_}"),
            services=("smtp",),
            extra_config="[tuning]\nmax_connections_per_ip = 100\n",
        )
    )
    kill_after = random.Random(round_).randint(50, 400)
    res = asyncio.run(load_until_kill(server, kill_after))
    assert server.proc is not None
    assert server.proc.proc.wait(timeout=30) == -signal.SIGKILL
    assert len(res.acked) >= kill_after
    missing = set(res.acked) - stored_ids(server)
    assert not missing, f"{len(missing)} acknowledged messages lost"
    problems = check_account(server.data / "accounts" / "you")
    assert {p.kind for p in problems} <= {ProblemKind.ORPHAN}, problems
