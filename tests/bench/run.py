"""``make bench``: every benchmark, results printed as one JSON object.

Benchmarks measure; they never assert on timings. Each section is also runnable on
its own (``python -m tests.bench.store_bench``).
"""

import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.serverproc import ServerProcess, all_services_config, run_cli, write_config


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_rss(workdir: Path, profile: str) -> dict[str, Any]:
    """RSS of ``pillarbox serve`` with one account and every service listening on
    loopback, once it has started and settled."""
    cfg = write_config(
        workdir / profile, f'profile = "{profile}"\n' + all_services_config(workdir / profile)
    )
    for args in (
        ["config", "domain", "add", "example.com"],
        ["config", "account", "add", "you", "you@example.com"],
    ):
        r = run_cli(args, config=cfg)
        assert r.returncode == 0, r.stderr
    server = ServerProcess(["serve"], config=cfg)
    try:
        t0 = time.monotonic()
        server.wait_for("pillarbox started")
        startup_s = time.monotonic() - t0
        samples = []
        # RSS settles after start-up; take the last of a few samples a tenth apart.
        for _ in range(10):
            samples.append(rss_kib(server.proc.pid))
            time.sleep(0.1)
        return {
            "profile": profile,
            "idle_rss_mib": round(samples[-1] / 1024, 1),
            "startup_s": round(startup_s, 3),
        }
    finally:
        server.stop()


def main() -> None:
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
    }
    sections = sys.argv[1:] or ["store", "smtp", "imap", "queue", "serve", "profiles", "shipping"]
    with tempfile.TemporaryDirectory(prefix="pillarbox-bench-") as tmp:
        work = Path(tmp)
        if "store" in sections:
            from tests.bench import store_bench

            results["store"] = store_bench.run(work / "store")
        if "smtp" in sections:
            from tests.bench import smtp_bench

            results["smtp"] = smtp_bench.run(work / "smtp")
        if "imap" in sections:
            from tests.bench import imap_bench

            results["imap"] = imap_bench.run(work / "imap")
        if "queue" in sections:
            from tests.bench import queue_bench

            results["queue"] = queue_bench.run(work / "queue")
        if "serve" in sections:
            results["serve"] = [idle_rss(work / "serve", p) for p in ("default", "lowmem")]
        if "profiles" in sections:
            from tests.bench import profiles_bench

            results["profiles"] = profiles_bench.run(work / "profiles")
        if "shipping" in sections:
            from tests.packaging import bench as shipping

            results["shipping"] = shipping.run(work / "shipping")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
