"""``pillarbox selftest``: start a throw-away server on loopback and check what it offers.

Meant for the installed executable (after an install or upgrade, under qemu, in a
fresh container): it proves that this build can run a server on this machine. Every
check prints one line; the exit status is 0 only when all passed.

What is checked, in order:

- ``idna``: IDNA 2008 mapping works (``Bücher.example`` -> ``xn--bcher-kva.example``,
  ``faß.example`` -> ``xn--fa-hia.example``). dnspython enables IDNA 2008 only when it
  finds the ``idna`` package's metadata, which a frozen build can lose silently.
- ``data``: the package data (Public Suffix List, web files, templates) is readable
  through :mod:`importlib.resources`, as the server reads it.
- ``store``: a message delivered into the account store reads back byte for byte.
  Done before the server starts: a running server holds the account's lock.
- ``start``: ``pillarbox serve`` starts as a child process, with its configuration
  written by the code ``localserve`` uses (loopback, account you@localhost) but on
  free ports, and a DNS server on loopback so nothing leaves the machine; readiness
  is the ``READY=1`` that systemd would receive (``NOTIFY_SOCKET``).
- ``ctl``: the control socket answers ``ping`` with this version and the child's pid.
- one check per service :func:`app.serve.services` reports: SMTP delivery with
  :mod:`smtplib` (``smtp``; ``submission``/``submissions`` with login), an IMAP login
  and FETCH of a delivered message with :mod:`imaplib` (``imap``, ``imaps``), one HTTP
  GET (``http``, ``https``, ``admin_http``). TLS is verified against the generated
  certificate.
- ``stop``: SIGTERM stops the server gracefully (exit 0, no traceback in its log).
"""

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import app

if TYPE_CHECKING:
    import imaplib
    import ssl
    import subprocess
    from importlib.resources.abc import Traversable

# Every other import is done where it is used: this module is imported by every
# `pillarbox` command (to register its subcommand), and start-up must stay fast.

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
IO_TIMEOUT_S = 30.0
# A message submitted for local delivery may pass through the queue first.
FIND_TIMEOUT_S = 30.0
SENDER = "selftest@localhost"
# Services with a check; services() may offer others, which are reported as unchecked.
SMTP_SERVICES = ("smtp", "submission", "submissions")
IMAP_SERVICES = ("imap", "imaps")
HTTP_SERVICES = ("http", "https", "admin_http")
IDNA_CASES = {"Bücher.example": "xn--bcher-kva.example", "faß.example": "xn--fa-hia.example"}


class CheckFailed(Exception):
    """A check did not pass; the message says what was seen."""


class Result(NamedTuple):
    """The outcome of one check. (A NamedTuple, not a dataclass: importing dataclasses
    costs every `pillarbox` command ~6 ms, see the note on imports above.)"""

    name: str
    ok: bool
    detail: str


class Run:
    """One selftest: its directory, the child server and what has been learnt so far."""

    def __init__(self, directory: Path, out: Callable[[Result], None]) -> None:
        self.directory = directory
        self.out = out
        self.results: list[Result] = []
        self.ports: dict[str, int] = {}
        self.server: subprocess.Popen[bytes] | None = None
        # Message-IDs (without brackets) of messages that must be in the account: the
        # one stored directly, and those delivered over SMTP (the port 25 one first).
        self.stored = ""
        self.delivered: list[str] = []

    @property
    def config(self) -> Path:
        return self.directory / "pillarbox.toml"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def check(self, name: str, fn: Callable[[], str]) -> bool:
        """Run one check, record and print its result; False when it failed."""
        try:
            res = Result(name, True, fn())
        except CheckFailed as e:
            res = Result(name, False, str(e))
        except Exception as e:  # a selftest reports every failure, never a traceback
            res = Result(name, False, f"{type(e).__name__}: {e}")
        self.results.append(res)
        self.out(res)
        return res.ok

    def tls_context(self) -> "ssl.SSLContext":
        """A client context that trusts only the throw-away server's certificate."""
        import ssl

        return ssl.create_default_context(cafile=str(self.directory / "localhost.crt"))


# In-process checks.


def check_idna() -> str:
    import dns.name

    from app.dns.domain import Domain, DomainError

    if not dns.name.have_idna_2008:
        raise CheckFailed(
            "dnspython has no IDNA 2008 (the idna package or its metadata is missing)"
        )
    for text, want in IDNA_CASES.items():
        try:
            got = Domain.parse(text).ascii
        except DomainError as e:
            raise CheckFailed(str(e)) from None
        if got != want:
            raise CheckFailed(f"{text} -> {got}, want {want}")
    return ", ".join(f"{k} -> {v}" for k, v in IDNA_CASES.items())


def _data_files(root: "Traversable") -> Iterator["Traversable"]:
    for item in root.iterdir():
        if item.is_dir():
            if item.name != "__pycache__":
                yield from _data_files(item)
        elif not item.name.endswith((".py", ".pyc", ".pyi", ".so")) and item.name != "py.typed":
            yield item


def check_data() -> str:
    from importlib import resources

    files = list(_data_files(resources.files(app)))
    size = sum(len(f.read_bytes()) for f in files)
    if not files:
        raise CheckFailed("no package data found (a build that left out app's data files?)")
    return f"{len(files)} files, {size} bytes readable"


def check_store(run: Run) -> str:
    """Deliver a message into the account store and read it back."""
    import asyncio
    import uuid

    from app.ops import localserve

    body = _message(f"store round trip {uuid.uuid4().hex}", "store")
    got = asyncio.run(_store_round_trip(run.data / "accounts" / localserve.ACCOUNT, body))
    if got != body:
        raise CheckFailed(f"read back {len(got)} bytes differing from the {len(body)} written")
    run.stored = _message_id(body)
    return f"{len(body)} bytes delivered to Inbox and read back"


async def _store_round_trip(path: Path, body: bytes) -> bytes:
    from app.ops import localserve
    from app.store.account import AccountStore
    from app.store.runtime import StoreRuntime

    runtime = StoreRuntime(workers=1)
    try:
        store = await AccountStore.open(path, name=localserve.ACCOUNT, runtime=runtime)
        delivered = await store.deliver("Inbox", body)
        msgs = await store.messages(delivered.mailbox_id, [delivered.uid])
        if not msgs:
            raise CheckFailed(f"delivered uid {delivered.uid} not listed")
        return await store.read_message(msgs[0])
    finally:
        await runtime.close()


def _message(subject: str, tag: str, sender: str = SENDER) -> bytes:
    import uuid

    msgid = f"selftest-{tag}-{uuid.uuid4().hex}@localhost"
    return (
        f"From: <{sender}>\r\n"
        "To: <you@localhost>\r\n"
        f"Subject: pillarbox selftest: {subject}\r\n"
        f"Message-ID: <{msgid}>\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        "\r\n"
        "This message was written by pillarbox selftest.\r\n"
    ).encode()


def _message_id(msg: bytes) -> str:
    m = re.search(rb"^Message-ID: <([^>]+)>", msg, re.MULTILINE)
    assert m is not None
    return m.group(1).decode()


# The throw-away server.


def free_ports(names: list[str]) -> dict[str, int]:
    """A distinct free loopback port per service (all held open until all are chosen)."""
    import socket

    socks = []
    try:
        for _ in names:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return {n: s.getsockname()[1] for n, s in zip(names, socks, strict=True)}
    finally:
        for s in socks:
            s.close()


def config_with_ports(text: str, ports: dict[str, int], dns_server: str) -> str:
    """localserve's configuration text with its fixed ports replaced by ``ports``.

    Services localserve does not configure (``admin_http``) get a table of their own;
    ``[dns]`` points at the loopback DNS server.
    """
    out, section = [], ""
    for line in text.splitlines():
        m = re.fullmatch(r"\s*\[listeners\.local\.(\w+)\]\s*", line)
        if line.lstrip().startswith("["):
            section = m.group(1) if m else ""
        elif section in ports and re.fullmatch(r"\s*port\s*=.*", line):
            line = f"port = {ports[section]}"
        out.append(line)
    for name, port in ports.items():
        if f"[listeners.local.{name}]" not in text:
            out += ["", f"[listeners.local.{name}]", "enabled = true", f"port = {port}"]
    out += ["", "[dns]", f'servers = ["{dns_server}"]', "timeout = 2.0"]
    return "\n".join(out) + "\n"


def prepare(run: Run, names: list[str], dns_server: str) -> None:
    """Initialise the directory as localserve does, then move its services to free ports."""
    from app.config.static import load
    from app.ops import localserve

    localserve.initialise(run.directory, names)
    run.ports = free_ports(names)
    run.config.write_text(config_with_ports(run.config.read_text(), run.ports, dns_server))
    cfg = load(run.config)
    lst = cfg.listeners["local"]
    for name, port in run.ports.items():
        if not getattr(lst, name).enabled or lst.port(name) != port:
            raise CheckFailed(f"could not place {name} on port {port}: localserve's config changed")


def start_dns() -> Any:
    """A DNS server on loopback answering for localhost, so checks stay on this machine."""
    from app.dns.loopback import LoopbackDNSServer

    dns = LoopbackDNSServer(HOST).start()
    dns.load_dict(
        {
            "localhost.": {
                "A": "127.0.0.1",
                "MX": "10 localhost.",
                "TXT": "v=spf1 ip4:127.0.0.1 -all",
            },
            "_dmarc.localhost.": {"TXT": "v=DMARC1; p=none"},
            "1.0.0.127.in-addr.arpa.": {"PTR": "localhost."},
        }
    )
    return dns


def server_command() -> list[str]:
    """How to run this same pillarbox: the executable itself when frozen."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "app.cli"]


def check_start(run: Run) -> str:
    """Start ``pillarbox serve`` and wait for READY=1 on our notify socket."""
    import contextlib
    import socket
    import subprocess

    notify = run.directory / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    env = dict(os.environ, NOTIFY_SOCKET=str(notify))
    env.pop("PILLARBOX_CONFIG", None)
    t0 = time.monotonic()
    with sock, open(run.directory / "server.log", "wb") as log:
        run.server = subprocess.Popen(
            [*server_command(), "--config", str(run.config), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        sock.settimeout(0.25)
        while time.monotonic() - t0 < START_TIMEOUT_S:
            with contextlib.suppress(TimeoutError):
                if b"READY=1" in sock.recv(4096).split(b"\n"):
                    return f"pid {run.server.pid}, ready in {time.monotonic() - t0:.2f} s"
            if run.server.poll() is not None:
                raise CheckFailed(f"server exited with {run.server.returncode}: {log_tail(run)}")
    raise CheckFailed(f"no READY=1 within {START_TIMEOUT_S:.0f} s: {log_tail(run)}")


def log_tail(run: Run, lines: int = 5) -> str:
    import contextlib

    with contextlib.suppress(OSError):
        text = (run.directory / "server.log").read_text(errors="replace")
        return " | ".join(text.splitlines()[-lines:]) or "(empty log)"
    return "(no log)"


def check_ctl(run: Run) -> str:
    from app.ops.ctl import call

    r = call(run.data, "ping", timeout=10)
    assert run.server is not None
    if r.get("version") != app.__version__ or r.get("pid") != run.server.pid:
        raise CheckFailed(f"unexpected answer {r!r}")
    return f"ping: version {r['version']}, pid {r['pid']}"


def check_stop(run: Run) -> str:
    import signal
    import subprocess

    assert run.server is not None
    run.server.send_signal(signal.SIGTERM)
    try:
        rc = run.server.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"still running {STOP_TIMEOUT_S:.0f} s after SIGTERM") from None
    log = (run.directory / "server.log").read_text(errors="replace")
    if rc != 0:
        raise CheckFailed(f"exit status {rc}: {log_tail(run)}")
    if "Traceback" in log:
        raise CheckFailed("the server log has a traceback (kept: run with --keep to read it)")
    return "SIGTERM: graceful stop, exit status 0, no traceback in the log"


# Service checks: what a mail client or another server would do.


def check_smtp(run: Run, name: str) -> str:
    """Deliver one message: port 25 as another server, submission as the account's user."""
    import smtplib

    from app.ops import localserve

    port, ctx = run.ports[name], run.tls_context()
    # Submission must use one of the account's addresses, in the envelope and From:.
    sender = SENDER if name == "smtp" else localserve.ADDRESS
    msg = _message(f"delivery over {name}", name, sender)
    client: smtplib.SMTP
    if name == "submissions":
        client = smtplib.SMTP_SSL(HOST, port, "localhost", timeout=IO_TIMEOUT_S, context=ctx)
    else:
        client = smtplib.SMTP(HOST, port, "localhost", timeout=IO_TIMEOUT_S)
    with client:
        client.ehlo()
        tls = "implicit TLS" if name == "submissions" else "plain"
        if name == "submission" or (name == "smtp" and client.has_extn("starttls")):
            client.starttls(context=ctx)
            client.ehlo()
            tls = "STARTTLS"
        if name != "smtp":
            client.login(localserve.ADDRESS, localserve.PASSWORD)
        refused = client.sendmail(sender, [localserve.ADDRESS], msg)
    if refused:
        raise CheckFailed(f"recipient refused: {refused!r}")
    # Port 25 delivers directly; a submitted message may wait in the queue first, so
    # the IMAP checks look for the port 25 one first.
    run.delivered.insert(0 if name == "smtp" else len(run.delivered), _message_id(msg))
    login = ", logged in" if name != "smtp" else ""
    return f"port {port}, {tls}{login}, {len(msg)} bytes accepted for {localserve.ADDRESS}"


_LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)')


def _mailboxes(client: "imaplib.IMAP4") -> list[str]:
    _, lines = client.list()
    names = []
    for line in lines:
        m = _LIST_LINE.fullmatch(line) if isinstance(line, bytes) else None
        if m is None or b"\\noselect" in m.group("flags").lower():
            continue
        raw = m.group("name")
        if raw.startswith(b'"'):
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        names.append(raw.decode())
    # INBOX first: that is where a delivery should land.
    return sorted(names, key=lambda n: n.upper() != "INBOX")


def _text(data: list[Any]) -> str:
    return " ".join(d.decode(errors="replace") if isinstance(d, bytes) else repr(d) for d in data)


def _quoted(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _find(client: "imaplib.IMAP4", message_ids: list[str]) -> tuple[str, bytes, str]:
    """(mailbox, uid, message-id) of the first wanted message found, polling a while."""
    deadline = time.monotonic() + FIND_TIMEOUT_S
    while True:
        for mailbox in _mailboxes(client):
            typ, data = client.select(_quoted(mailbox), readonly=True)
            if typ != "OK":
                raise CheckFailed(f"EXAMINE {mailbox}: {typ} {_text(data)}")
            for mid in message_ids:
                typ, data = client.uid("SEARCH", "HEADER", "Message-ID", _quoted(mid))
                if typ != "OK":
                    raise CheckFailed(f"UID SEARCH in {mailbox}: {typ} {_text(data)}")
                uids = data[0].split() if data and data[0] else []
                if uids:
                    return mailbox, uids[-1], mid
        if time.monotonic() > deadline:
            raise CheckFailed(f"none of {message_ids} found in any mailbox")
        time.sleep(0.5)  # waiting on the server's queue: nothing to be notified by


def check_imap(run: Run, name: str) -> str:
    """Log in as the localserve account and FETCH a message delivered before."""
    import contextlib
    import imaplib

    from app.ops import localserve

    port, ctx = run.ports[name], run.tls_context()
    client: imaplib.IMAP4
    if name == "imaps":
        client = imaplib.IMAP4_SSL(HOST, port, ssl_context=ctx, timeout=IO_TIMEOUT_S)
    else:
        client = imaplib.IMAP4(HOST, port, timeout=IO_TIMEOUT_S)
        client.starttls(ssl_context=ctx)
    try:
        client.login(localserve.ADDRESS, localserve.PASSWORD)
        mailbox, uid, mid = _find(client, run.delivered or [run.stored])
        typ, data = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
        body = next((d[1] for d in data if isinstance(d, tuple)), b"")
        if typ != "OK" or f"<{mid}>".encode() not in body:
            raise CheckFailed(f"UID FETCH {uid.decode()} in {mailbox}: {typ} {_text(data):.200}")
        client.logout()
    finally:
        with contextlib.suppress(OSError):
            client.shutdown()
    tls = "implicit TLS" if name == "imaps" else "STARTTLS"
    return f"port {port}, {tls}, logged in, fetched {len(body)} bytes from {mailbox}"


def check_http(run: Run, name: str) -> str:
    """One GET /: any answer but a server error shows the service works."""
    import http.client

    port = run.ports[name]
    conn: http.client.HTTPConnection
    if name == "https":
        conn = http.client.HTTPSConnection(
            HOST, port, timeout=IO_TIMEOUT_S, context=run.tls_context()
        )
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=IO_TIMEOUT_S)
    try:
        conn.request("GET", "/", headers={"Host": "localhost"})
        resp = conn.getresponse()
        body = resp.read(1 << 20)
    finally:
        conn.close()
    if resp.status >= 500:
        raise CheckFailed(f"GET / -> {resp.status} {resp.reason}")
    return f"port {port}, GET / -> {resp.status} {resp.reason}, {len(body)} bytes"


def check_service(run: Run, name: str) -> str:
    if name in SMTP_SERVICES:
        return check_smtp(run, name)
    if name in IMAP_SERVICES:
        return check_imap(run, name)
    if name in HTTP_SERVICES:
        return check_http(run, name)
    raise CheckFailed("no check for this service yet: add one to app/ops/selftest.py")


def service_order(names: list[str]) -> list[str]:
    """Deliveries first, so IMAP has a message to fetch."""
    known = [*SMTP_SERVICES, *IMAP_SERVICES, *HTTP_SERVICES]
    return sorted(names, key=lambda n: known.index(n) if n in known else len(known))


# Running it.


def selftest(out: Callable[[Result], None], keep: bool = False) -> list[Result]:
    """Run every check; ``out`` sees each result as it comes."""
    import shutil
    import tempfile

    run = Run(Path(tempfile.mkdtemp(prefix="pillarbox-selftest-")), out)
    names: list[str] = []
    dns = None
    try:
        run.check("idna", check_idna)
        run.check("data", check_data)

        def setup() -> str:
            from app.serve import services

            nonlocal dns
            names.extend(services())  # imports every service module: failures show here
            dns = start_dns()
            prepare(run, names, dns.address)
            return (
                f"{run.directory}: services {', '.join(names) or '(none yet)'}, DNS {dns.address}"
            )

        if run.check("setup", setup):
            run.check("store", lambda: check_store(run))
            if run.check("start", lambda: check_start(run)):
                run.check("ctl", lambda: check_ctl(run))
                for name in service_order(names):
                    run.check(name, partial(check_service, run, name))
                run.check("stop", lambda: check_stop(run))
    finally:
        if run.server is not None and run.server.poll() is None:
            run.server.kill()
            run.server.wait()
        if dns is not None:
            dns.stop()
        if not keep:
            shutil.rmtree(run.directory, ignore_errors=True)
    return run.results


def cmd_selftest(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))

    def show(r: Result) -> None:
        if not as_json:
            print(f"{'ok' if r.ok else 'FAIL':4}  {r.name:<12} {r.detail}", flush=True)

    results = selftest(show, keep=args.keep)
    failed = [r for r in results if not r.ok]
    if as_json:
        import json

        print(json.dumps([r._asdict() for r in results], ensure_ascii=False))
    elif failed:
        print(f"selftest FAILED: {len(failed)} of {len(results)} checks")
    else:
        print(f"selftest passed: {len(results)} checks, pillarbox {app.__version__}")
    return 1 if failed else 0


def register(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    sp = add(
        "selftest",
        cmd_selftest,
        "start a throw-away server on loopback and check every service it offers",
        sub,
    )
    sp.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (config, data, log)"
    )
