"""Outgoing queue benchmark: 2,000 messages of 4 KiB submitted over 8 connections
(submission: STARTTLS + AUTH PLAIN, DKIM-signed and queued durably) and delivered by
the queue to a local ``smtp-sink`` (Postfix's test server: accepts everything, keeps
nothing), found through MX records on a loopback DNS server.

Enqueueing goes through submission rather than straight into the queue store, so the
figure is the server's whole path for outgoing mail. Reported per scenario: msgs/s
from the first submission to the last delivery, the submission phase on its own, and
server CPU per message (utime+stime of the server process from /proc/PID/stat, over
the whole run, so it includes submission, signing, queueing and delivery).

Scenarios: one recipient domain (the default ``per_domain = 1``: deliveries to it are
one at a time), and ten domains (``workers = 10`` deliveries at once).
"""

import asyncio
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.bench.smtp_bench import cpu_seconds, peak_rss_mib
from tests.mailserver import PASSWORD, MailServer, free_port, setup_server, start
from tests.smtpload import LoadResult, run_load

MESSAGES = 2000
CONNECTIONS = 8
MAX_SECONDS = 300.0
DONE = 'msg="delivery attempt done"'
DELIVERED = re.compile(r"\bdelivered=(\d+)")
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def sink_binary() -> str:
    for d in (*os.environ.get("PATH", "").split(os.pathsep), *SBIN):
        p = Path(d) / "smtp-sink"
        if d and p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise SystemExit("queue bench: smtp-sink is missing (apt-get install postfix)")


def start_sink(port: int) -> subprocess.Popen[bytes]:
    """smtp-sink on 127.0.0.1:``port``, discarding messages; ready when it accepts."""
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses root without -u
    proc = subprocess.Popen(
        [sink_binary(), *user, "-h", "sink.bench.example", f"127.0.0.1:{port}", "256"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("smtp-sink did not start") from None
            time.sleep(0.02)


class DeliveryCounter:
    """Counts delivered recipients in the server's log lines as they come."""

    def __init__(self, server: MailServer) -> None:
        assert server.proc is not None
        self.proc = server.proc
        self.seen = len(self.proc.lines)
        self.delivered = 0
        self.attempts = 0

    def _scan(self) -> None:
        lines = self.proc.lines
        end = len(lines)
        for line in lines[self.seen : end]:
            if DONE in line:
                self.attempts += 1
                m = DELIVERED.search(line)
                self.delivered += int(m.group(1)) if m else 0
        self.seen = end

    def wait(self, n: int, timeout: float) -> float:
        """Block (reading the log as it is written) until ``n`` recipients were
        delivered; returns the time (monotonic) it happened."""

        def reached(_: str) -> bool:
            self._scan()
            return self.delivered >= n

        if not reached(""):
            self.proc.wait_for(reached, timeout=timeout)
        return time.monotonic()


def measure(server: MailServer, domains: int) -> dict[str, Any]:
    assert server.proc is not None
    pid = server.proc.proc.pid
    tls = ssl.create_default_context(cafile=str(server.directory / "cert.pem"))
    tls.check_hostname = False
    counter = DeliveryCounter(server)
    base = counter.delivered
    per_domain_conns = max(1, CONNECTIONS // domains)
    loads = [(f"friend@d{d}.bench.example", per_domain_conns) for d in range(domains)]
    total_conns = sum(c for _, c in loads)
    per_connection = MESSAGES // total_conns
    expected = per_connection * total_conns
    res = LoadResult()

    async def submit_all() -> None:
        await asyncio.gather(
            *(
                run_load(
                    "127.0.0.1",
                    server.ports["submission"],
                    connections=conns,
                    per_connection=per_connection,
                    max_seconds=MAX_SECONDS,
                    login=("you@example.org", PASSWORD),
                    tls=tls,
                    sender="you@example.org",
                    rcpt=rcpt,
                    result=res,
                )
                for rcpt, conns in loads
            )
        )

    cpu0 = cpu_seconds(pid)
    t0 = time.monotonic()
    asyncio.run(submit_all())
    t_enqueued = time.monotonic()
    acked = len(res.acked)
    t_end = counter.wait(base + acked, MAX_SECONDS)
    cpu = cpu_seconds(pid) - cpu0
    delivered = counter.delivered - base
    total = t_end - t0
    return {
        "domains": domains,
        "submission_connections": total_conns,
        "messages": acked,
        "expected": expected,
        "delivered": delivered,
        "msgs_per_s": round(delivered / total, 1) if total > 0 else None,
        "total_s": round(total, 2),
        "enqueue_s": round(t_enqueued - t0, 2),
        "enqueue_msgs_per_s": round(acked / (t_enqueued - t0), 1),
        "server_cpu_ms_per_msg": round(cpu / delivered * 1000, 3) if delivered else None,
        "peak_rss_mib": peak_rss_mib(pid),
        "submission_errors": len(res.errors),
    }


def run(workdir: Path) -> list[dict[str, Any]]:
    """Both scenarios, each on a fresh server and queue; a list of result dicts."""
    workdir.mkdir(parents=True, exist_ok=True)
    sink_port = free_port()
    sink = start_sink(sink_port)
    try:
        return [_scenario(workdir / f"d{n}", sink_port, n) for n in (1, 10)]
    finally:
        sink.terminate()
        sink.wait(timeout=10)


def _scenario(directory: Path, sink_port: int, domains: int) -> dict[str, Any]:
    server = setup_server(
        directory,
        services=("submission",),
        extra_config=(
            "[tuning]\nmax_connections_per_ip = 100\n"
            "[queue]\nworkers = 10\n"
            "[queue.transports.sink]\n"
            f'kind = "direct"\nport_override = {sink_port}\n'
            '[queue.routes.all]\ntransport = "sink"\n'
        ),
    )
    for d in range(domains):
        server.dns.add(f"d{d}.bench.example", "MX", "10 mx.bench.example.")
    server.dns.add("mx.bench.example", "A", "127.0.0.1")
    start(server)
    try:
        return measure(server, domains)
    finally:
        server.stop()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="pillarbox-queue-bench-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
        sys.stdout.flush()
