"""Wiring and supervision of a running server.

``Server`` builds the services object from the configuration (admin database,
dynamic settings snapshot, certificates, thread pools), starts the control socket
and the configured listeners, and runs until SIGTERM/SIGINT or a ``stop`` command.
SIGHUP reloads dynamic settings and certificates. Shutdown is graceful: listeners
close first, running sessions get a bounded time to finish, databases close last.
"""

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import app
from app import memory
from app.auth.connlimit import ConnectionLimiter
from app.auth.ratelimit import WindowLimit
from app.config.schema import ConfigError, Problem
from app.config.static import STANDARD_PORTS, Config, Listener, parse
from app.dns.resolver import Resolver
from app.ops.ctl import MAX_LINE, ctl_path
from app.queue.service import QueueService
from app.queue.store import QueueError
from app.services import Services
from app.store import admincmds
from app.store.admin import AdminDB
from app.store.registry import Accounts
from app.store.reports import ReportsDB
from app.store.runtime import StoreRuntime
from app.tls.certs import CertStore, TLSError, generate_self_signed

log = logging.getLogger(__name__)

# A service starter opens the listening sockets of one service on one listener.
ServiceStarter = Callable[[Services, str, Listener], Awaitable[list[asyncio.AbstractServer]]]

# The module implementing each service, by the service's name in the configuration.
# Each module has ``STARTERS: dict[str, ServiceStarter]``. A module is imported only
# when a listener enables one of its services, so a server without, say, SMTP
# listeners never loads the SMTP stack and its mail checks.
SERVICE_MODULES: dict[str, str] = {
    "smtp": "app.smtp.service",
    "submission": "app.smtp.service",
    "submissions": "app.smtp.service",
    "http": "app.web.service",
    "https": "app.web.service",
    "admin_http": "app.web.service",
    "imap": "app.imap.service",
    "imaps": "app.imap.service",
}


def starter(name: str) -> ServiceStarter:
    """The starter of one service (imports its module)."""
    import importlib

    starters: dict[str, ServiceStarter] = importlib.import_module(SERVICE_MODULES[name]).STARTERS
    return starters[name]


def services() -> dict[str, ServiceStarter]:
    """The services this version implements, by configuration name (imports them all)."""
    return {name: starter(name) for name in SERVICE_MODULES}


SHUTDOWN_GRACE_S = 10.0


class StartupError(Exception):
    """The server cannot start; the message says why, for the operator."""


class Server:
    """One running Pillarbox instance."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.data_dir = config.data_path
        self.stopping = asyncio.Event()
        self.servers: list[asyncio.AbstractServer] = []
        self.services: Services | None = None
        self._ctl_server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.idle_release: memory.IdleRelease | None = None
        self._idle_release_task: asyncio.Task[None] | None = None

    # Start-up.

    def _open_services(self) -> Services:
        cfg = self.config
        tuned = cfg.tuned
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        admin_executor = ThreadPoolExecutor(1, thread_name_prefix="admin")
        admin = admin_executor.submit(
            AdminDB, self.data_dir / "admin.db", cache_kib=tuned.sqlite_cache_kib
        ).result()
        dynamic = admin_executor.submit(admin.snapshot).result()
        dkim = admin_executor.submit(admincmds.load_dkim, admin).result()
        levels = admin_executor.submit(admincmds.stored_log_levels, admin).result()
        admincmds.apply_log_levels(levels)  # set at run time earlier, kept in admin.db
        runtime = StoreRuntime(workers=tuned.store_threads, cache_kib=tuned.sqlite_cache_kib)
        svc = Services(
            config=cfg,
            data_dir=self.data_dir,
            admin=admin,
            admin_executor=admin_executor,
            cpu_executor=ThreadPoolExecutor(tuned.cpu_threads, thread_name_prefix="cpu"),
            accounts=Accounts(runtime, self.data_dir, lambda name: None),
            dynamic=dynamic,
            started=asyncio.get_running_loop().time(),
        )
        svc.accounts = Accounts(runtime, self.data_dir, svc.quota_for)
        svc.resolver = Resolver(cfg.dns.servers, timeout=cfg.dns.timeout)
        svc.dkim = dkim
        svc.reports = admin_executor.submit(ReportsDB, self.data_dir / "reports.db").result()
        per_ip, rate = tuned.max_connections_per_ip, tuned.max_connection_rate_per_ip
        svc.connections = ConnectionLimiter(
            max_total=tuned.max_connections,
            concurrent=(per_ip, 3 * per_ip, 9 * per_ip),
            rate=(WindowLimit(60.0, (rate, 3 * rate, 9 * rate)),),
        )
        svc.settings_changed = self.refresh_dynamic
        svc.reconfigure = self.apply_config_text
        for name, lst in cfg.listeners.items():
            store = self._certs_for(name, lst)
            if store is not None:
                svc.certs[name] = store
        return svc

    def _certs_for(self, name: str, lst: Listener, cfg: Config | None = None) -> CertStore | None:
        cfg = cfg or self.config
        base = Path(cfg.path).parent if cfg.path else Path.cwd()
        pairs = [(str(base / c.cert), str(base / c.key)) for c in lst.tls.certificates]
        if lst.tls.self_signed and not pairs:
            cert = self.data_dir / "tls" / f"{name}-selfsigned.crt"
            key = self.data_dir / "tls" / f"{name}-selfsigned.key"
            if not cert.exists() or not key.exists():
                hostname = lst.hostname or cfg.hostname
                generate_self_signed([hostname], cert, key)
                log.warning(
                    "generated self-signed certificate", extra={"listener": name, "path": str(cert)}
                )
            pairs = [(str(cert), str(key))]
        if not pairs:
            return None
        try:
            return CertStore(pairs, min_version=lst.tls.min_version)
        except TLSError as e:
            raise StartupError(f"listener {name}: {e}") from None

    async def start(self) -> None:
        """Open everything; raises StartupError with a message for the operator."""
        try:
            self.services = self._open_services()
        except OSError as e:
            raise StartupError(f"cannot use data directory {self.data_dir}: {e}") from None
        await self._start_ctl()
        await self._start_queue()
        await self._start_listeners()
        self._start_idle_release()
        log.info(
            "pillarbox started",
            extra={
                "version": app.__version__,
                "pid": os.getpid(),
                "data": str(self.data_dir),
                "profile": str(self.config.profile),
                "accounts": len(self.services.dynamic.accounts),
            },
        )

    def _start_idle_release(self) -> None:
        """Give memory back after each ``tuning.idle_release_seconds`` without store work."""
        assert self.services is not None
        rt = self.services.accounts.runtime
        self.idle_release = memory.IdleRelease(
            idle_seconds=self.config.tuned.idle_release_seconds,
            last_activity=lambda: rt.last_activity,
            release_caches=rt.release_memory,
            executor=rt.executor,
            clock=rt.clock,
        )
        self._idle_release_task = asyncio.get_running_loop().create_task(self.idle_release.run())

    async def _start_queue(self) -> None:
        """Open the outgoing queue before the listeners, so submission can use it."""
        assert self.services is not None
        queue = QueueService(self.services)
        try:
            await queue.start()
        except OSError as e:
            raise StartupError(f"cannot open the queue: {e}") from None
        self.services.queue = queue

    async def _start_listeners(self) -> None:
        assert self.services is not None
        for name, lst in self.config.listeners.items():
            for svc_name in SERVICE_MODULES:
                if getattr(lst, svc_name).enabled:
                    try:
                        self.servers += await starter(svc_name)(self.services, name, lst)
                    except OSError as e:
                        raise StartupError(
                            f"listener {name}: cannot listen for {svc_name}: {e.strerror}"
                        ) from None
        for svc_name in STANDARD_PORTS:
            if svc_name in SERVICE_MODULES:
                continue
            for name, lst in self.config.listeners.items():
                if getattr(lst, svc_name).enabled:
                    log.warning(
                        "service not available in this version, not listening",
                        extra={"listener": name, "service": svc_name},
                    )

    async def apply_config_text(self, text: str) -> None:
        """Validate, write and apply a new static configuration; listeners restart.

        Raises ConfigError (nothing changed) for invalid text. The data directory
        cannot change while running.
        """
        new = parse(text, self.config.path)
        if new.data_path != self.data_dir:
            raise ConfigError([Problem("data_dir", "cannot change while the server runs")])
        path = Path(self.config.path)
        tmp = path.with_name(path.name + ".tmp")
        await asyncio.to_thread(_write_synced, tmp, text)
        tmp.replace(path)
        for srv in self.servers:
            srv.close()
        for srv in self.servers:
            await srv.wait_closed()
        self.servers = []
        assert self.services is not None
        certs = {}
        for name, lst in new.listeners.items():
            store = self._certs_for(name, lst, new)
            if store is not None:
                certs[name] = store
        self.config = new
        self.services.config = new
        self.services.certs = certs
        await self._start_listeners()
        log.info("configuration applied", extra={"listeners": len(new.listeners)})

    async def _start_ctl(self) -> None:
        path = ctl_path(self.data_dir)
        if path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except (ConnectionRefusedError, FileNotFoundError):
                path.unlink(missing_ok=True)  # left over from a crash
            else:
                raise StartupError(f"another server is running on {self.data_dir}")
            finally:
                probe.close()
        old = os.umask(0o077)
        try:
            self._ctl_server = await asyncio.start_unix_server(
                self._ctl_conn, str(path), limit=MAX_LINE
            )
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    # Control socket.

    async def _ctl_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                req = json.loads(line)
                cmd, args = str(req["cmd"]), dict(req.get("args") or {})
            except (ValueError, KeyError, TypeError):
                reply: dict[str, Any] = {"ok": False, "error": "malformed request"}
            else:
                reply = await self._ctl_dispatch(cmd, args)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _ctl_dispatch(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        assert self.services is not None
        log.info("control command", extra={"cmd": cmd})
        try:
            if cmd == "ping":
                return {"ok": True, "result": {"version": app.__version__, "pid": os.getpid()}}
            if cmd == "stop":
                self.stopping.set()
                return {"ok": True, "result": {}}
            if cmd == "reload":
                await self.reload()
                return {"ok": True, "result": {}}
            if cmd.startswith("queue."):
                if self.services.queue is None:
                    return {"ok": False, "error": "the queue is not running"}
                return {"ok": True, "result": await self.services.queue.ctl(cmd, args)}
            result = await self.services.admin_call(lambda db: admincmds.run(db, cmd, args))
            if cmd in admincmds.CHANGING:
                await self.refresh_dynamic()
            return {"ok": True, "result": result}
        except (admincmds.CommandError, QueueError) as e:
            return {"ok": False, "error": str(e)}
        except Exception:
            log.exception("control command failed", extra={"cmd": cmd})
            return {"ok": False, "error": "internal error, see the server log"}

    # Changes at run time.

    async def refresh_dynamic(self) -> None:
        """Load dynamic settings from the admin database and swap the snapshot."""
        assert self.services is not None
        svc = self.services
        svc.dynamic = await svc.admin_call(lambda db: db.snapshot())
        svc.dkim = await svc.admin_call(admincmds.load_dkim)
        await svc.accounts.apply(svc.dynamic.accounts, svc.quota_for)
        log.info(
            "dynamic settings loaded",
            extra={
                "domains": len(self.services.dynamic.domains),
                "accounts": len(self.services.dynamic.accounts),
            },
        )

    async def reload(self) -> None:
        """SIGHUP: reload dynamic settings and certificate files."""
        if self.services is None:  # still starting: it reads everything fresh anyway
            return
        await self.refresh_dynamic()
        for name, store in self.services.certs.items():
            try:
                await asyncio.to_thread(store.reload)
            except TLSError as e:
                log.error(
                    "certificate reload failed, keeping the old ones",
                    extra={"listener": name, "err": str(e)},
                )

    # Running and stopping.

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Start a background task that shutdown waits for."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self) -> None:
        """Start, notify readiness, serve until asked to stop, then shut down."""
        loop = asyncio.get_running_loop()
        # Handlers first: a SIGTERM during start-up then stops us gracefully once
        # started, instead of killing a half-opened server.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.spawn(self.reload()))
        await self.start()
        memory.freeze_startup_objects()
        # Start-up (imports, configuration) leaves free blocks behind: give them back.
        memory.ProcessMemory().release()
        sd_notify("READY=1")
        try:
            await self.stopping.wait()
        finally:
            sd_notify("STOPPING=1")
            await self.shutdown()

    async def shutdown(self) -> None:
        log.info("pillarbox stopping")
        if self._idle_release_task is not None:  # before the stores it releases close
            self._idle_release_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._idle_release_task
        for s in [*self.servers, *([self._ctl_server] if self._ctl_server else [])]:
            s.close()
        with contextlib.suppress(OSError):
            ctl_path(self.data_dir).unlink()
        tasks = set(self._tasks) | (set(self.services.tasks) if self.services else set())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        svc = self.services
        if svc is not None:
            if svc.queue is not None:  # before the accounts: it stores DSNs in them
                await svc.queue.stop()
                svc.queue = None
            await svc.accounts.close()
            await svc.admin_call(lambda db: db.close())
            if svc.reports is not None:
                reports = svc.reports
                await svc.admin_call(lambda db: reports.close())
            for ex in (svc.admin_executor, svc.cpu_executor):
                ex.shutdown(wait=True)
        log.info("pillarbox stopped")


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def sd_notify(state: str) -> None:
    """Tell systemd about our state when started with Type=notify (no-op otherwise)."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(state.encode())


def serve(config: Config) -> int:
    """Run a server for ``config`` until it is stopped; returns the exit code."""
    memory.limit_malloc_arenas(config.tuned.malloc_arenas)  # before any thread starts
    server = Server(config)
    try:
        asyncio.run(server.run())
    except StartupError as e:
        log.error("cannot start", extra={"err": str(e)})
        return 1
    return 0
