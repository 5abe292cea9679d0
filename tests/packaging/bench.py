"""The ``shipping`` section of ``make bench``: the built executables, if there are any.

For ``dist/pillarbox`` (one file, ``make binary``) and ``dist/onedir/pillarbox`` (what
the packages install, ``make deb``): size, the wall time of ``pillarbox version``
(median of warm runs) and the idle RSS of ``serve`` with one account for the
``default`` and ``lowmem`` profiles. The one-file executable runs the server in a
child of its unpacking bootloader: its RSS is the sum of both processes.
"""

import queue
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.serverproc import all_services_config, cli_env, write_config

ROOT = Path(__file__).resolve().parents[2]
EXECUTABLES = {
    "onefile": ROOT / "dist" / "pillarbox",
    "onedir": ROOT / "dist" / "onedir" / "pillarbox" / "pillarbox",
}
START_RUNS = 7


def tree_rss_kib(pid: int) -> tuple[int, int]:
    """(sum, largest) VmRSS of a process and its descendants, in KiB."""
    pids, rss = [pid], []
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        rss += [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")]
        pids += [int(k) for k in kids]
    return sum(rss), max(rss, default=0)


def size_mib(exe: Path) -> float:
    if exe.parent.name == "pillarbox" and (exe.parent / "_internal").is_dir():
        total = sum(f.stat().st_size for f in exe.parent.rglob("*") if f.is_file())
    else:
        total = exe.stat().st_size
    return round(total / 2**20, 2)


def start_time_s(exe: Path) -> float:
    """Median wall time of ``pillarbox version`` after one warm-up run."""
    times = []
    for i in range(START_RUNS + 1):
        t0 = time.perf_counter()
        subprocess.run([str(exe), "version"], check=True, capture_output=True)
        if i:
            times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def idle_rss(exe: Path, workdir: Path, profile: str) -> dict[str, Any]:
    cfg = write_config(
        workdir / profile, f'profile = "{profile}"\n' + all_services_config(workdir / profile)
    )
    env = cli_env(cfg)
    for args in (
        ["config", "domain", "add", "example.com"],
        ["config", "account", "add", "you", "you@example.com"],
    ):
        subprocess.run([str(exe), *args], check=True, capture_output=True, env=env)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(exe), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=60)
            if line is None:
                raise RuntimeError(f"{exe} serve exited with {proc.wait()}")
            if 'msg="pillarbox started"' in line:
                break
        startup_s = time.monotonic() - t0
        samples = []
        for _ in range(10):  # settles after start-up; the last of a few samples
            samples.append(tree_rss_kib(proc.pid))
            time.sleep(0.1)
        total, largest = samples[-1]
        return {
            "profile": profile,
            "idle_rss_mib": round(total / 1024, 1),
            "server_process_rss_mib": round(largest / 1024, 1),
            "startup_s": round(startup_s, 3),
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def run(workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, exe in EXECUTABLES.items():
        if not exe.exists():
            out[label] = {
                "skipped": f"no {exe.relative_to(ROOT)}: build it with "
                + ("make binary" if label == "onefile" else "make deb")
            }
            continue
        out[label] = {
            "size_mib": size_mib(exe),
            "start_version_s": start_time_s(exe),
            "serve": [idle_rss(exe, workdir / label, p) for p in ("default", "lowmem")],
        }
    return out


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pillarbox-bench-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=2))
