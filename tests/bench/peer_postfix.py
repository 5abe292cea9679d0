"""A private Postfix instance for ``make bench-peers``: ``main.cf``/``master.cf``, queue
and data directories under a directory we own, started with ``postfix -c DIR start``
(no postmulti, no chroot), smtpd on a free port of 127.0.0.1 only, no DNS lookups, and
durable Maildir delivery through virtual(8) for ``example.org`` (files owned by nobody).

Postfix answers 250 once its queue file is fsynced, before delivery to the Maildir; the
benchmark also waits for and counts the delivered files so the load was real.
"""

import os
import pwd
import subprocess
import time
from pathlib import Path

from tests import postfix as postfix_conf
from tests.bench.peer_common import (
    free_port,
    log,
    process_tree,
    tree_cpu_seconds,
    wait_port,
    which,
)

NOBODY = 65534  # virtual(8) refuses uids below virtual_minimum_uid (100)


class Postfix:
    def __init__(self, directory: Path, domain: str = "example.org") -> None:
        self.dir = directory
        self.domain = domain
        self.port = free_port()
        self.conf = directory / "etc"
        self.maildir = directory / "vmail" / "maildir"
        self.binary = which("postfix") or "postfix"
        self._pid: int | None = None

    def version(self) -> str:
        r = subprocess.run(
            [which("postconf") or "postconf", "-d", "-h", "mail_version"],
            capture_output=True,
            text=True,
        )
        return "postfix " + r.stdout.strip()

    def _main_cf(self) -> str:
        extra = f"""\
local_recipient_maps =
append_dot_mydomain = no
smtp_host_lookup = native
smtpd_client_connection_count_limit = 100
default_process_limit = 100
virtual_mailbox_maps = static:maildir/
virtual_uid_maps = static:{NOBODY}
virtual_gid_maps = static:{NOBODY}
"""
        return postfix_conf.main_cf(self.dir, self.domain, extra)

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return postfix_conf.run(self.binary, self.conf, *args)

    def start(self) -> None:
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)  # postfix's daemons run as postfix/nobody and must traverse it
        self.conf.mkdir(exist_ok=True)
        (d / "vmail").mkdir(exist_ok=True)
        (d / "queue").mkdir(mode=0o755, exist_ok=True)  # root's; postfix makes the rest
        (d / "data").mkdir(exist_ok=True)
        pw = pwd.getpwnam("postfix")
        os.chown(d / "data", pw.pw_uid, pw.pw_gid)
        os.chown(d / "vmail", NOBODY, NOBODY)
        (self.conf / "main.cf").write_text(self._main_cf())
        (self.conf / "master.cf").write_text(postfix_conf.master_cf(self.port))
        r = self._postfix("start")
        if r.returncode != 0:
            raise RuntimeError(f"postfix start failed: {r.stdout}{r.stderr}\n{self.log_tail()}")
        wait_port(self.port)
        log(f"{self.version()} listening on 127.0.0.1:{self.port}")

    @property
    def pid(self) -> int:
        """The master process (it daemonizes; its pid file is in the queue directory)."""
        if self._pid is None:
            pidfile = self.dir / "queue" / "pid" / "master.pid"
            deadline = time.monotonic() + 10
            while not pidfile.exists() or not pidfile.read_text().strip():
                if time.monotonic() > deadline:
                    raise RuntimeError("postfix wrote no master.pid")
                time.sleep(0.05)
            self._pid = int(pidfile.read_text().strip())
        return self._pid

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def delivered(self) -> int:
        n = 0
        for sub in ("new", "cur"):
            p = self.maildir / sub
            if p.is_dir():
                n += len(os.listdir(p))
        return n

    def wait_delivered(self, count: int, timeout: float = 120.0) -> float:
        """Wait until ``count`` messages are in the Maildir; returns seconds waited."""
        t0 = time.monotonic()
        while self.delivered() < count and time.monotonic() - t0 < timeout:
            time.sleep(0.1)
        return time.monotonic() - t0

    def log_tail(self, n: int = 20) -> str:
        p = self.dir / "postfix.log"
        return "\n".join(p.read_text().splitlines()[-n:]) if p.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the instance; kill what is left of its process tree after a grace time."""
        try:
            pids = process_tree(self.pid)
        except RuntimeError:
            pids = []
        self._postfix("stop")
        deadline = time.monotonic() + 15
        while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for p in pids:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
