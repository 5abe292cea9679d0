"""SMTP benchmark: 4 KiB messages over 8 and 32 connections, to port 25 (local
recipient) and to submission (STARTTLS + AUTH), connections spread over several
127.0.0.x source addresses. Reports msgs/s, p50/p99 latency, server CPU seconds per
message and peak RSS, as JSON."""

import asyncio
import json
import os
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.mailserver import PASSWORD, MailServer, setup_server, start
from tests.smtpload import run_load

MESSAGES = {8: 2000, 32: 4000}  # per level, bounded
MAX_SECONDS = 120


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def measure(server: MailServer, kind: str, connections: int) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.proc.pid
    total = MESSAGES[connections]
    tls = None
    login = None
    port = server.ports["smtp"]
    if kind == "submission":
        port = server.ports["submission"]
        tls = ssl.create_default_context(cafile=str(server.directory / "cert.pem"))
        tls.check_hostname = False
        login = ("you@example.org", PASSWORD)
    cpu0 = cpu_seconds(pid)
    res = asyncio.run(
        run_load(
            "127.0.0.1",
            port,
            connections=connections,
            per_connection=total // connections,
            max_seconds=MAX_SECONDS,
            login=login,
            tls=tls,
            sender="you@example.org" if login else "bench@remote.example",
        )
    )
    cpu = cpu_seconds(pid) - cpu0
    n = len(res.acked)
    return {
        "service": kind,
        "connections": connections,
        "messages": n,
        "msgs_per_s": round(res.rate, 1),
        "p50_ms": round(res.percentile(50) * 1000, 2),
        "p99_ms": round(res.percentile(99) * 1000, 2),
        "server_cpu_ms_per_msg": round(cpu / n * 1000, 3) if n else None,
        "peak_rss_mib": peak_rss_mib(pid),
        "errors": len(res.errors),
    }


def run(workdir: Path, extra_config: str = "") -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = start(
        setup_server(
            workdir,
            services=("smtp", "submission"),
            extra_config="[tuning]\nmax_connections_per_ip = 100\n" + extra_config,
        )
    )
    try:
        return [
            measure(server, kind, conns) for kind in ("smtp", "submission") for conns in (8, 32)
        ]
    finally:
        server.stop()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="pillarbox-smtp-bench-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
        sys.stdout.flush()
