"""Large messages stream through the server: three 50 MiB messages at once neither sit
in memory nor stall a small delivery on another connection."""

import asyncio
from pathlib import Path

import pytest

from tests.mailserver import setup_server, start
from tests.smtpload import run_load

SIZE = 50 * 1024 * 1024
CHUNK = 1024 * 1024


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # KiB
    raise AssertionError(key)


async def big(port: int, n: int, started: asyncio.Event, release: asyncio.Event) -> int:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await r.readline()
    w.write(
        b"HELO big.example\r\nMAIL FROM:<big@remote.example>\r\n"
        b"RCPT TO:<you@example.org>\r\nDATA\r\n"
    )
    for _ in range(4):
        await r.readline()
    w.write(f"Subject: big {n}\r\n\r\n".encode())
    line = b"y" * 998 + b"\r\n"
    sent = 0
    while sent < SIZE:
        w.write(line * (CHUNK // len(line)))
        sent += CHUNK
        await w.drain()
        if sent >= SIZE // 2 and not started.is_set():
            started.set()
            await release.wait()  # hold the upload half-way while the small mail goes
    w.write(b".\r\nQUIT\r\n")
    await w.drain()
    reply = await asyncio.wait_for(r.readline(), 120)
    w.close()
    return int(reply[:3])


async def scenario(port: int) -> tuple[list[int], int]:
    started = [asyncio.Event() for _ in range(3)]
    release = asyncio.Event()
    uploads = [asyncio.ensure_future(big(port, n, started[n], release)) for n in range(3)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 120)
    small = await asyncio.wait_for(
        run_load("127.0.0.1", port, connections=1, per_connection=1, max_seconds=60), 60
    )
    release.set()
    codes = await asyncio.wait_for(asyncio.gather(*uploads), 300)
    return list(codes), len(small.acked)


def test_three_50mib_messages_at_once_do_not_stall_a_small_one(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start(setup_server(tmp_path_factory.mktemp("large"), services=("smtp",)))
    try:
        assert server.proc is not None
        pid = server.proc.proc.pid
        rss_before = vm(pid, "VmRSS")
        codes, small_acked = asyncio.run(scenario(server.ports["smtp"]))
        assert small_acked == 1  # delivered while three uploads were half-way
        assert codes == [250, 250, 250]
        # 150 MiB went through; content was streamed, never held whole in memory.
        assert vm(pid, "VmHWM") - rss_before < 64 * 1024
        sizes = sorted(len(m) for m in server.messages("you"))
        assert len(sizes) == 4 and all(s > 50_000_000 for s in sizes[1:])
    finally:
        assert server.stop() == 0
