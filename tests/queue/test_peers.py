"""The outgoing queue against Debian's Postfix: a private Postfix instance as a real
receiving MTA, and Postfix's ``smtp-sink`` for fault injection (4xx and 5xx at
chosen stages, dropped connections, slow replies).

Postfix runs from its own configuration, queue and mail directories under the test's
tmp directory (``postfix -c DIR start``, no chroot, smtpd on a free port of
127.0.0.1 only, no DNS lookups) and delivers ``remote.example`` to a Maildir through
virtual(8). Starting it needs root (its master runs as root and drops privileges,
as on a real system); CI runs as root. ``smtp-sink`` comes with the postfix package.

Needs: ``apt-get install postfix`` (preseed ``postfix postfix/main_mailer_type
select No configuration`` so the package configures and starts no system instance).
"""

import contextlib
import email
import email.policy
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.queue.attempt import Timeouts
from app.tls.certs import generate_self_signed
from tests import postfix as postfix_conf
from tests.mailserver import MailServer, free_port, start
from tests.queue.servers import message, sender_server, submit, wait_count
from tests.queue.test_tls_results import RealQueue, mx, route_to

SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")
NOBODY = "nobody"
INSTALL = (
    "apt-get install postfix (DEBIAN_FRONTEND=noninteractive, preseeded "
    "'postfix postfix/main_mailer_type select No configuration')"
)


def which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN)
    return shutil.which(name, path=path)


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    """Wait until something accepts on 127.0.0.1:``port`` (a daemon we started that
    gives no other sign of being ready); fails early when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"exited with {proc.returncode} before listening") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.02)


def wait_files(directory: Path, n: int, timeout: float = 30) -> list[Path]:
    """The files of ``directory`` once there are ``n`` (a daemon's asynchronous
    delivery has no other completion signal we can wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        files = sorted(directory.iterdir()) if directory.is_dir() else []
        if len(files) >= n or time.monotonic() > deadline:
            return files
        time.sleep(0.02)


# --- a private Postfix ----------------------------------------------------------------


class Postfix:
    """A private Postfix receiving ``friend@<domain>`` into ``vmail/friend/``."""

    def __init__(self, directory: Path, binary: str, domain: str = "remote.example") -> None:
        self.dir = directory
        self.binary = binary
        self.domain = domain
        self.port = free_port()
        self.conf = directory / "etc"
        self.maildir = directory / "vmail" / "friend"

    def _main_cf(self) -> str:
        d = self.dir
        uid = pwd.getpwnam(NOBODY).pw_uid
        extra = f"""\
disable_dns_lookups = yes
smtpd_tls_security_level = may
smtpd_tls_chain_files = {d}/key.pem, {d}/cert.pem
smtpd_tls_received_header = yes
virtual_mailbox_maps = inline:{{ friend@{self.domain}=friend/ }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}
"""
        return postfix_conf.main_cf(d, self.domain, extra)

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return postfix_conf.run(self.binary, self.conf, *args)

    def start(self) -> "Postfix":
        d = self.dir
        for sub in ("etc", "queue", "data", "vmail"):
            (d / sub).mkdir(mode=0o755, exist_ok=True)
        nobody = pwd.getpwnam(NOBODY)
        postfix = pwd.getpwnam("postfix")
        os.chown(d / "data", postfix.pw_uid, postfix.pw_gid)
        os.chown(d / "vmail", nobody.pw_uid, nobody.pw_gid)
        generate_self_signed(["mx." + self.domain], d / "cert.pem", d / "key.pem")
        (self.conf / "main.cf").write_text(self._main_cf())
        (self.conf / "master.cf").write_text(postfix_conf.master_cf(self.port))
        r = self._postfix("start")
        if r.returncode != 0:
            raise AssertionError(f"postfix start failed: {r.stdout}{r.stderr}\n{self.log()}")
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """``postfix stop`` waits (bounded) for the master to exit."""
        r = self._postfix("stop")
        assert r.returncode == 0, f"postfix stop failed: {r.stdout}{r.stderr}"

    def log(self) -> str:
        p = self.dir / "postfix.log"
        return p.read_text() if p.exists() else "(no postfix log)"

    def delivered(self, n: int) -> list[bytes]:
        """The messages in the Maildir once there are ``n`` (Postfix answers 250 when
        its queue file is safe, and delivers after that)."""
        files = wait_files(self.maildir / "new", n)
        assert len(files) >= n, f"{len(files)} of {n} delivered:\n{self.log()[-3000:]}"
        return [f.read_bytes() for f in files]


def need_postfix() -> str:
    binary = which("postfix")
    if binary is None:
        pytest.skip(f"postfix is not installed ({INSTALL})")
    if os.geteuid() != 0:
        pytest.skip("a private postfix instance needs root: its master runs as root")
    return binary


@contextlib.contextmanager
def shared_tmp(prefix: str) -> Iterator[Path]:
    """A tmp directory other users may enter: pytest's own are private (0700), and
    Postfix's daemons and smtp-sink run as postfix and nobody."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(d, 0o755)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix() -> Iterator[Postfix]:
    binary = need_postfix()
    with shared_tmp("pillarbox-test-postfix-") as d:
        p = Postfix(d, binary).start()
        try:
            yield p
        finally:
            p.stop()


@pytest.fixture(scope="module")
def sender(tmp_path_factory: pytest.TempPathFactory, postfix: Postfix) -> Iterator[MailServer]:
    """A Pillarbox server with submission whose queue sends remote.example (MX
    mx.remote.example -> 127.0.0.1) to Postfix's port."""
    s = sender_server(tmp_path_factory.mktemp("sender"), route_to(postfix.port))
    s.dns.add("remote.example", "MX", "10 mx.remote.example.")
    s.dns.add("mx.remote.example", "A", "127.0.0.1")
    start(s)
    yield s
    assert s.stop() == 0
    assert s.proc is not None and s.proc.tracebacks() == []


def test_postfix_receives_what_the_queue_delivers(sender: MailServer, postfix: Postfix) -> None:
    assert sender.proc is not None
    submit(sender, ["friend@remote.example"], message("to postfix"))
    wait_count(sender.proc, 'msg="delivery attempt done"', 1)
    (got,) = postfix.delivered(1)
    assert b"Subject: to postfix" in got and b"hello to postfix" in got
    assert b"DKIM-Signature:" in got  # signed at submission
    head = got.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    assert b"by peer.localhost (Postfix) with ESMTPS" in head  # opportunistic STARTTLS
    assert b"Return-Path: <you@example.org>" in head
    assert b"Delivered-To: friend@remote.example" in head


def test_postfix_refusal_comes_back_as_failure_dsn(sender: MailServer, postfix: Postfix) -> None:
    assert sender.proc is not None
    submit(sender, ["nobody@remote.example"], message("refused", "nobody@remote.example"))
    wait_count(sender.proc, 'msg="dsn delivered"', 1)
    (dsn,) = [m for m in sender.messages("you") if b"Subject: refused" in m]
    m: Any = email.message_from_bytes(dsn, policy=email.policy.default)
    per_rcpt = m.get_payload()[1].get_payload()[1]
    assert per_rcpt["Final-Recipient"] == "rfc822; nobody@remote.example"
    assert per_rcpt["Action"] == "failed" and per_rcpt["Status"] == "5.1.1"
    assert "User unknown in virtual mailbox table" in per_rcpt["Diagnostic-Code"]


# --- smtp-sink for fault injection ---------------------------------------------------


class Sink:
    """``smtp-sink`` on a loopback port, keeping each message as a file in ``dumps``."""

    def __init__(self, directory: Path, binary: str, port: int = 0) -> None:
        self.binary = binary
        self.dumps = directory / "dumps"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> "Sink":
        self.dumps.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dumps.parent, 0o755)
        user: list[str] = []
        if os.geteuid() == 0:  # smtp-sink refuses to run as root without -u
            user = ["-u", NOBODY]
            pw = pwd.getpwnam(NOBODY)
            os.chown(self.dumps, pw.pw_uid, pw.pw_gid)
        self.proc = subprocess.Popen(
            [
                self.binary,
                *user,
                "-h",
                "sink.remote.example",
                "-d",
                f"{self.dumps}/m.",
                *options,
                f"127.0.0.1:{self.port}",
                "64",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def received(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.dumps.iterdir())]


class Sinks:
    """Starts smtp-sinks for one test and stops them all after it."""

    def __init__(self, directory: Path, binary: str) -> None:
        self.directory = directory
        self.binary = binary
        self.made: list[Sink] = []

    def make(self, *options: str, port: int = 0) -> Sink:
        """A started smtp-sink with ``options`` (on ``port``, or a free one)."""
        s = Sink(self.directory / f"sink{len(self.made)}", self.binary, port).start(*options)
        self.made.append(s)
        return s

    def stop(self) -> None:
        for s in self.made:
            s.stop()


@pytest.fixture
def sinks() -> Iterator[Sinks]:
    binary = which("smtp-sink")
    if binary is None:
        pytest.skip(f"smtp-sink is not installed ({INSTALL})")
    with shared_tmp("pillarbox-test-sink-") as d:
        made = Sinks(d, binary)
        try:
            yield made
        finally:
            made.stop()


SHORT = Timeouts(connect=2, greeting=2, command=2, tls=2, data_init=2, data_block=2, data_end=2)
PATIENT = Timeouts(connect=5, greeting=5, command=5, tls=5, data_init=5, data_block=5, data_end=5)


@pytest.fixture
async def queues(tmp_path: Path, dns_server: LoopbackDNSServer) -> AsyncIterator["Queues"]:
    mx(dns_server)
    made = Queues(tmp_path, dns_server)
    try:
        yield made
    finally:
        await made.stop()


class Queues:
    """Starts in-process queues (real attempt, injected clock) for one test."""

    def __init__(self, directory: Path, dns: LoopbackDNSServer) -> None:
        self.directory = directory
        self.dns = dns
        self.made: list[RealQueue] = []

    async def make(self, port: int, timeouts: Timeouts = SHORT) -> RealQueue:
        """A queue delivering remote.example to 127.0.0.1:``port``."""
        d = self.directory / f"queue{len(self.made)}"
        d.mkdir()
        q = await RealQueue(d, self.dns, route_to(port), timeouts=timeouts).start()
        self.made.append(q)
        return q

    async def stop(self) -> None:
        for q in self.made:
            await q.stop()


def dsn_status(q: RealQueue) -> list[tuple[str, str, str]]:
    """(Action, Status, Diagnostic-Code) of every DSN the queue sent to you@."""
    out = []
    for d in q.dsns.delivered:
        m: Any = email.message_from_bytes(d.message, policy=email.policy.default)
        fields = m.get_payload()[1].get_payload()[1]
        out.append((fields["Action"], fields["Status"], fields["Diagnostic-Code"]))
    return out


async def sink_queue(sinks: Sinks, queues: Queues, *options: str) -> tuple[Sink, RealQueue]:
    sink = sinks.make(*options)
    return sink, await queues.make(sink.port)


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data", "."])
async def test_4xx_is_retried_and_delivered_later(sinks: Sinks, queues: Queues, stage: str) -> None:
    sink, q = await sink_queue(sinks, queues, "-r", stage)
    await q.enqueue(["friend@remote.example"], f"soft {stage}")
    (e,) = await q.entries()
    assert (e.attempts, e.last_code, e.last_secode) == (1, 450, "3.0")
    assert q.dsns.delivered == []
    await q.retry_now()  # still refusing: attempt 2, still queued
    (e,) = await q.entries()
    assert e.attempts == 2 and 880 <= e.next_attempt - q.clock.now() <= 910  # 7.5 min * 2
    # The receiver is fixed; at the next attempt the message goes through.
    sink.stop()
    good = sinks.make(port=sink.port)
    await q.retry_now()
    assert await q.entries() == [] and q.dsns.delivered == []
    (got,) = good.received()
    assert b"Subject: soft " + stage.encode() in got
    assert b"X-Rcpt-Args: <friend@remote.example>" in got


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data", "."])
async def test_5xx_fails_at_once_with_dsn(sinks: Sinks, queues: Queues, stage: str) -> None:
    _, q = await sink_queue(sinks, queues, "-f", stage)
    await q.enqueue(["friend@remote.example"], f"hard {stage}")
    assert await q.entries() == []
    (status,) = dsn_status(q)
    assert status[:2] == ("failed", "5.3.0")
    assert status[2].startswith("smtp; 500 5.3.0")


@pytest.mark.parametrize("stage", ["connect", "ehlo", "rcpt", "data", "."])
async def test_dropped_connection_is_temporary(sinks: Sinks, queues: Queues, stage: str) -> None:
    _, q = await sink_queue(sinks, queues, "-q", stage)
    await q.enqueue(["friend@remote.example"], f"dropped {stage}")
    (e,) = await q.entries()
    assert e.attempts == 1 and e.last_error and q.dsns.delivered == []
    await q.retry_now()
    (e,) = await q.entries()
    assert e.attempts == 2 and q.dsns.delivered == []


# smtp-sink's -W delays a reply but goes on reading: under PIPELINING its replies
# then come out of order (the DATA reply before the delayed RCPT one), so slow RCPT
# replies are tried with pipelining off (-p).
@pytest.mark.parametrize("options", [("-w", "1"), ("-p", "-W", "rcpt:1"), ("-W", ".:1")])
async def test_slow_reply_within_timeout_delivers(
    sinks: Sinks, queues: Queues, options: Sequence[str]
) -> None:
    sink = sinks.make(*options)
    q = await queues.make(sink.port, PATIENT)
    await q.enqueue(["friend@remote.example"], "slow but fine")
    assert await q.entries() == [] and q.dsns.delivered == [], dsn_status(q)
    (got,) = sink.received()
    assert b"Subject: slow but fine" in got


@pytest.mark.parametrize("options", [("-w", "4"), ("-p", "-W", "rcpt:4"), ("-W", ".:4")])
async def test_slow_reply_beyond_timeout_is_temporary(
    sinks: Sinks, queues: Queues, options: Sequence[str]
) -> None:
    _, q = await sink_queue(sinks, queues, *options)  # SHORT: 2 s per step
    await q.enqueue(["friend@remote.example"], "too slow")
    (e,) = await q.entries()
    assert e.attempts == 1 and "timeout" in e.last_error.lower() and q.dsns.delivered == []
