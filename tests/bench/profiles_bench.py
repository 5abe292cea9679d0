"""The ``profiles`` section of ``make bench``: memory of one server through a day's
work, for the ``default`` and the ``lowmem`` profile.

One server per profile with SMTP (25) and IMAPS, in this order:

1. idle RSS once started;
2. the SMTP load of ``smtp_bench`` at 32 connections (4 KiB messages, port 25 path):
   RSS sampled every 50 ms during the load (its maximum) and the rate;
3. idle RSS after it, once settled;
4. the IMAP load of ``imap_bench`` (5,000 messages APPENDed, then SEARCH, STORE and
   FETCH phases with 8 clients);
5. idle RSS after it, once settled, and the process's peak (VmHWM).

Run: ``.venv/bin/python -m tests.bench.profiles_bench``.
"""

import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.bench import imap_bench, smtp_bench
from tests.mailserver import setup_server, start

PROFILES = ("default", "lowmem")
SMTP_CONNECTIONS = 32
SAMPLE_INTERVAL = 0.05


class RSSSampler:
    """The largest VmRSS of ``pid`` seen while running (a thread polling /proc)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_kib = max(self.max_kib, imap_bench.status_kib(self.pid, "VmRSS"))
            self._stop.wait(SAMPLE_INTERVAL)

    def __enter__(self) -> "RSSSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_profile(workdir: Path, profile: str) -> dict[str, Any]:
    server = start(
        setup_server(
            workdir,
            services=("smtp", "imaps"),
            top_config=f'profile = "{profile}"\n',
            extra_config="[tuning]\nmax_connections_per_ip = 100\n",
        )
    )
    try:
        assert server.proc is not None
        pid = server.proc.proc.pid
        out: dict[str, Any] = {"profile": profile}
        out["idle_rss_mib_started"] = imap_bench.settled_rss_mib(pid, samples=4)
        with RSSSampler(pid) as sampler:
            smtp = smtp_bench.measure(server, "smtp", SMTP_CONNECTIONS)
        out["smtp_32"] = {
            "messages": smtp["messages"],
            "msgs_per_s": smtp["msgs_per_s"],
            "errors": smtp["errors"],
            "max_rss_mib_during_load": round(sampler.max_kib / 1024, 1),
        }
        out["idle_rss_mib_after_smtp"] = imap_bench.settled_rss_mib(pid)
        ep = imap_bench.imaps_endpoint(server)
        t0 = time.monotonic()
        with RSSSampler(pid) as sampler:
            imap = asyncio.run(imap_bench.drive(ep, lambda: imap_bench.cpu_seconds(pid), profile))
        out["imap"] = {
            "seconds": round(time.monotonic() - t0, 1),
            "mailbox_messages": imap["mailbox_messages"],
            "ops_per_s": {k: v["ops_per_s"] for k, v in imap["ops"].items()},
            "max_rss_mib_during_load": round(sampler.max_kib / 1024, 1),
        }
        out["idle_rss_mib_after_imap"] = imap_bench.settled_rss_mib(pid)
        out["peak_rss_mib"] = round(imap_bench.status_kib(pid, "VmHWM") / 1024, 1)
        out["server_tracebacks"] = len(server.proc.tracebacks())
        return out
    finally:
        server.stop()


def run(workdir: Path) -> list[dict[str, Any]]:
    return [run_profile(workdir / p, p) for p in PROFILES]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="pillarbox-profiles-bench-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
        sys.stdout.flush()
