"""Helpers shared by the peer servers of ``make bench-peers``: Debian packages,
process-tree CPU and memory from /proc, waiting for a port."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# The packages' daemons live in /usr/sbin, which a non-login root shell may miss.
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def log(msg: str) -> None:
    print(f"[peers] {msg}", file=sys.stderr, flush=True)


def which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN)
    return shutil.which(name, path=path)


def ensure_packages() -> None:
    """apt-get install postfix and dovecot-imapd when missing (non-interactive; postfix
    preseeded to "No configuration", so the package starts no system instance)."""
    if which("postfix") and which("dovecot"):
        return
    if os.geteuid() != 0:
        raise SystemExit("bench-peers: postfix and dovecot-imapd are missing; run as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    preseed = (
        "postfix postfix/main_mailer_type select No configuration\n"
        "postfix postfix/mailname string localhost\n"
    )
    subprocess.run(["debconf-set-selections"], input=preseed, text=True, check=True, env=env)
    log("apt-get install postfix dovecot-imapd")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postfix", "dovecot-imapd"],
        check=True,
        env=env,
        stdout=sys.stderr,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (f := _stat(int(name))) is not None:
            children.setdefault(int(f[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_seconds(root: int) -> float:
    """utime+stime+cutime+cstime over the live tree: work of reaped children counts."""
    ticks = 0
    for p in process_tree(root):
        if (f := _stat(p)) is not None:
            ticks += sum(int(x) for x in f[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_memory_mib(root: int) -> dict[str, float]:
    """Sum of RSS (double counts shared pages) and of PSS (fair share) over the tree."""
    rss = pss = 0
    for p in process_tree(root):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1)}
