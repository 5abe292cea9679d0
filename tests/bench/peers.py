"""``make bench-peers``: Pillarbox against Postfix and Dovecot from Debian, on the same
machine in the same run, as the performance targets in DESIGN.md are stated.

- SMTP: the load of ``tests/bench/smtp_bench.py`` (4 KiB messages, 8 and 32
  connections, port 25 path) against Pillarbox (normal checks on; its loopback DNS
  server answers NXDOMAIN) and against a private Postfix instance delivering to a
  Maildir. Levels alternate between the two servers to share any drift in machine load.
  Postfix's delivered Maildir files are waited for and counted.
- IMAP: the load of ``tests/bench/imap_bench.py`` (5,000 messages APPENDed, then SEARCH,
  STORE, FETCH BODY.PEEK[] and FETCH 1:* phases with 8 clients) against Pillarbox and
  against a private Dovecot instance, both over implicit TLS.

Packages are installed with apt-get when missing (root). Peers listen on free ports of
127.0.0.1 only, live in a temporary directory, and are stopped and removed in
``finally``. JSON on stdout, progress on stderr.

Run: ``.venv/bin/python -m tests.bench.peers [smtp] [imap]`` (both by default).
"""

import asyncio
import json
import os
import platform
import ssl
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import apsw

from app.tls.certs import generate_self_signed
from tests.bench import imap_bench, smtp_bench
from tests.bench.peer_common import ensure_packages, log, tree_memory_mib
from tests.bench.peer_dovecot import Dovecot
from tests.bench.peer_postfix import Postfix
from tests.imapload import KINDS, Endpoint
from tests.mailserver import PASSWORD, MailServer, setup_server, start
from tests.smtpload import run_load

LEVELS = (8, 32)
USER = "you@example.org"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 3) if ours and theirs else None


def stored_count(server: MailServer, account: str = "you") -> int:
    """Messages stored for ``account``, over all mailboxes (read-only; WAL allows it)."""
    db = server.data / "accounts" / account / "index.db"
    if not db.exists():
        return 0
    conn = apsw.Connection(
        f"file:{db}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
    )
    try:
        row = conn.execute("SELECT count(*) FROM message").fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


def measure_postfix(pf: Postfix, connections: int, delivered_before: int) -> dict[str, Any]:
    total = smtp_bench.MESSAGES[connections]
    cpu0 = pf.cpu_seconds()
    res = asyncio.run(
        run_load(
            "127.0.0.1",
            pf.port,
            connections=connections,
            per_connection=total // connections,
            max_seconds=smtp_bench.MAX_SECONDS,
        )
    )
    cpu_accept = pf.cpu_seconds() - cpu0
    n = len(res.acked)
    drain = pf.wait_delivered(delivered_before + n)
    cpu_total = pf.cpu_seconds() - cpu0
    return {
        "connections": connections,
        "messages": n,
        "msgs_per_s": round(res.rate, 1),
        "p50_ms": round(res.percentile(50) * 1000, 2),
        "p99_ms": round(res.percentile(99) * 1000, 2),
        "server_cpu_ms_per_msg_during_load": round(cpu_accept / n * 1000, 3) if n else None,
        "server_cpu_ms_per_msg_incl_delivery": round(cpu_total / n * 1000, 3) if n else None,
        "delivery_backlog_drained_s": round(drain, 2),
        "delivered_to_maildir": pf.delivered() - delivered_before,
        "errors": len(res.errors),
    }


def smtp_compare(work: Path) -> dict[str, Any]:
    ours = start(
        setup_server(
            work / "pillarbox-smtp",
            services=("smtp",),
            extra_config="[tuning]\nmax_connections_per_ip = 100\n",
        )
    )
    pf = Postfix(work / "postfix")
    out: dict[str, Any] = {"postfix_version": ""}
    try:
        pf.start()
        out["postfix_version"] = pf.version()
        for conns in LEVELS:
            before = stored_count(ours)
            p = smtp_bench.measure(ours, "smtp", conns)
            p["stored"] = stored_count(ours) - before
            log(f"smtp {conns} conns: pillarbox {p['msgs_per_s']} msgs/s")
            f = measure_postfix(pf, conns, pf.delivered())
            log(f"smtp {conns} conns: postfix {f['msgs_per_s']} msgs/s")
            out[f"c{conns}"] = {
                "pillarbox": p,
                "postfix": f,
                "ratio_pillarbox_postfix": ratio(p["msgs_per_s"], f["msgs_per_s"]),
            }
    finally:
        try:
            pf.stop()
        finally:
            ours.stop()
    return out


def dovecot_run(work: Path) -> dict[str, Any]:
    d = work / "dovecot"
    d.mkdir()
    generate_self_signed(["mail.test.example"], d / "cert.pem", d / "key.pem")
    dv = Dovecot(d, USER, PASSWORD, d / "cert.pem", d / "key.pem")
    try:
        dv.start()
        ctx = ssl.create_default_context(cafile=str(d / "cert.pem"))
        ctx.check_hostname = False
        ep = Endpoint("127.0.0.1", dv.port, USER, PASSWORD, ctx, starttls=False)
        t0 = time.monotonic()
        out = asyncio.run(imap_bench.drive(ep, dv.cpu_seconds, "dovecot"))
        out["load_seconds"] = round(time.monotonic() - t0, 1)
        time.sleep(2)  # settle, as for Pillarbox
        out["idle_memory_5000_messages"] = tree_memory_mib(dv.pid)
        out["version"] = dv.version()
        return out
    finally:
        dv.stop()


def imap_compare(work: Path) -> dict[str, Any]:
    log("imap: pillarbox")
    ours = imap_bench.run(work / "pillarbox-imap")
    log("imap: dovecot")
    theirs = dovecot_run(work)
    ratios = {k: ratio(ours["ops"][k]["ops_per_s"], theirs["ops"][k]["ops_per_s"]) for k in KINDS}
    ratios["append"] = ratio(ours["append"]["msgs_per_s"], theirs["append"]["msgs_per_s"])
    return {"pillarbox": ours, "dovecot": theirs, "ratio_pillarbox_dovecot": ratios}


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The headline figures: rates side by side and the ratios."""
    out: dict[str, Any] = {}
    smtp = results.get("smtp", {})
    for conns in LEVELS:
        row = smtp.get(f"c{conns}")
        if row:
            out[f"smtp_c{conns}_msgs_per_s"] = {
                "pillarbox": row["pillarbox"]["msgs_per_s"],
                "postfix": row["postfix"]["msgs_per_s"],
                "ratio": row["ratio_pillarbox_postfix"],
            }
    imap = results.get("imap", {})
    if "ratio_pillarbox_dovecot" in imap:
        for k in KINDS:
            out[f"imap_{k}_ops_per_s"] = {
                "pillarbox": imap["pillarbox"]["ops"][k]["ops_per_s"],
                "dovecot": imap["dovecot"]["ops"][k]["ops_per_s"],
                "ratio": imap["ratio_pillarbox_dovecot"][k],
            }
    return out


def main() -> int:
    sections = sys.argv[1:] or ["smtp", "imap"]
    ensure_packages()
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "loadavg_start": os.getloadavg(),
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="pillarbox-peers-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # the peers' unprivileged processes must traverse it
        for name, fn in (("smtp", smtp_compare), ("imap", imap_compare)):
            if name not in sections:
                continue
            try:
                results[name] = fn(work)
            except Exception as e:  # report the other section all the same
                traceback.print_exc()
                results[name] = {"error": f"{type(e).__name__}: {e}"}
                failed = True
    results["loadavg_end"] = os.getloadavg()
    results["summary"] = summary(results)
    print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
