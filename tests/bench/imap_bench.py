"""IMAP benchmark: 5,000 4 KiB messages APPENDed into ``you``'s INBOX over 8
connections, then 8 logged-in clients (imaps, INBOX selected) run one bounded phase
per operation kind: ``UID SEARCH`` (BODY, SUBJECT, UNSEEN, FROM in rotation),
``UID STORE n +FLAGS/-FLAGS (\\Flagged)``, ``UID FETCH n BODY.PEEK[]`` and
``FETCH 1:* (FLAGS UID RFC822.SIZE)``. Reports ops/s, p50/p99 latency and server CPU ms
per op for each, the APPEND rate, idle RSS before the fill and with the 5,000 messages
(after the load, once settled) and peak RSS, as JSON.

Clients connect over implicit TLS (the imaps port), as Dovecot does in the comparison.

``drive()`` is shared with the Dovecot comparison in ``tests/bench/peers.py``.

Run: ``.venv/bin/python -m tests.bench.imap_bench [PROFILE]`` (``default`` unless
``lowmem`` is given; ``make bench`` runs every section).
"""

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.imapload import KINDS, Endpoint, Load, fill
from tests.mailserver import PASSWORD, MailServer, setup_server, start

MESSAGES = 5000
FILL_CONNECTIONS = 8
FILL_SECONDS = 90.0
CLIENTS = 8
# Commands per client in each phase, and each phase's time limit.
PER_CLIENT = {"search": 60, "store": 1500, "fetch_body": 1500, "fetch_all": 25}
PHASE_SECONDS = 20.0
WARMUP_PER_CLIENT = 2
SETTLE_SECONDS = 30.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


async def settle(server_cpu: Callable[[], float]) -> float:
    """Wait until the server is idle (under 10% of a CPU over half a second, e.g. once
    background indexing after the fill is done), at most SETTLE_SECONDS; the phases
    measure the steady state. Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < SETTLE_SECONDS:
        c0 = server_cpu()
        await asyncio.sleep(0.5)
        if server_cpu() - c0 < 0.05:
            break
    return round(time.monotonic() - t0, 1)


async def drive(
    ep: Endpoint, server_cpu: Callable[[], float], label: str, messages: int = MESSAGES
) -> dict[str, Any]:
    """Fill the mailbox, then run every phase; returns {"append": ..., "ops": {kind: ...}}."""
    cpu0 = server_cpu()
    f = await fill(ep, messages, connections=FILL_CONNECTIONS, max_seconds=FILL_SECONDS)
    append: dict[str, Any] = {
        "messages": f.appended,
        "seconds": round(f.seconds, 2),
        "msgs_per_s": round(f.rate, 1),
        "server_cpu_ms_per_msg": round((server_cpu() - cpu0) / max(1, f.appended) * 1000, 3),
        "errors": len(f.errors),
    }
    if f.errors:
        append["error_samples"] = f.errors[:5]
    log(f"{label}: appended {f.appended} in {f.seconds:.1f}s ({f.rate:.0f}/s)")
    append["background_work_after_s"] = await settle(server_cpu)
    ops: dict[str, Any] = {}
    async with Load(ep, CLIENTS) as load:
        if len(load.uids) < messages:
            log(f"{label}: INBOX has {len(load.uids)} messages, expected {messages}")
        for kind in KINDS:  # warm-up: caches and indexes built before measuring
            await load.phase(kind, WARMUP_PER_CLIENT, PHASE_SECONDS)
        for kind in KINDS:
            r = await load.phase(kind, PER_CLIENT[kind], PHASE_SECONDS, server_cpu)
            ops[kind] = r.summary()
            log(f"{label}: {kind}: {r.rate:.1f} ops/s p50 {r.percentile(50) * 1000:.1f} ms")
    return {"append": append, "mailbox_messages": len(load.uids), "ops": ops}


def settled_rss_mib(pid: int, samples: int = 6, interval: float = 0.5) -> float:
    """VmRSS once the server has been idle a moment: the last of a few samples."""
    values = []
    for _ in range(samples):
        time.sleep(interval)
        values.append(status_kib(pid, "VmRSS"))
    return round(values[-1] / 1024, 1)


def imaps_endpoint(server: MailServer) -> Endpoint:
    """``you@example.org`` over the server's implicit-TLS IMAP port."""
    return Endpoint(
        "127.0.0.1",
        server.ports["imaps"],
        "you@example.org",
        PASSWORD,
        server.client_tls(),
        starttls=False,
    )


def run(workdir: Path, profile: str = "default") -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = start(
        setup_server(
            workdir,
            services=("imaps",),
            top_config=f'profile = "{profile}"\n',
            extra_config="[tuning]\nmax_connections_per_ip = 100\n",
        )
    )
    try:
        assert server.proc is not None
        pid = server.proc.proc.pid
        ep = imaps_endpoint(server)
        idle_empty = settled_rss_mib(pid, samples=4)
        t0 = time.monotonic()
        out = asyncio.run(drive(ep, lambda: cpu_seconds(pid), "pillarbox"))
        out["idle_rss_mib_empty_account"] = idle_empty
        out["load_seconds"] = round(time.monotonic() - t0, 1)
        out["idle_rss_mib_5000_messages"] = settled_rss_mib(pid)
        out["peak_rss_mib"] = round(status_kib(pid, "VmHWM") / 1024, 1)
        out["server_tracebacks"] = len(server.proc.tracebacks())
        out["loadavg"] = os.getloadavg()
        return out
    finally:
        server.stop()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="pillarbox-imap-bench-") as tmp:
        print(json.dumps(run(Path(tmp), *sys.argv[1:2]), indent=2))
        sys.stdout.flush()
