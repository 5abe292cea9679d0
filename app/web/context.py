"""The bridge between WSGI handler threads and the server's event loop.

Bottle handlers run in the web thread pool. Store and admin-database code belongs
to the event loop or to the admin thread, so handlers reach it only through a
:class:`WebContext`: :meth:`~WebContext.run` runs a coroutine on the loop and waits
(bounded), :meth:`~WebContext.admin` runs a function on the admin database's thread,
:meth:`~WebContext.command` runs an admin command exactly as the CLI does and then
refreshes the server's settings.
"""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from app.auth.credentials import Credentials, check_password
from app.services import Services
from app.store import admincmds
from app.store.admin import AdminDB

log = logging.getLogger(__name__)

T = TypeVar("T")

CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class LoginResult:
    ok: bool
    limited: bool = False  # refused by the failed-login limiter, password not checked


class WebContext:
    """Services plus the loop, as seen from a WSGI thread."""

    def __init__(self, services: Services, loop: asyncio.AbstractEventLoop) -> None:
        self.services = services
        self.loop = loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run ``coro`` on the server loop and wait for its result (from a thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Call a plain function on the loop thread (for loop-only objects)."""

        async def call() -> T:
            return fn()

        return self.run(call())

    def admin(self, fn: Callable[[AdminDB], T]) -> T:
        """Run ``fn`` with the admin database on its thread and wait."""
        svc = self.services
        return svc.admin_executor.submit(fn, svc.admin).result(CALL_TIMEOUT_S)

    def command(self, name: str, args: dict[str, Any]) -> Any:
        """Run an admin command (raises admincmds.CommandError) and apply it at once."""
        return self.run(self._command(name, args))

    async def _command(self, name: str, args: dict[str, Any]) -> Any:
        svc = self.services
        result = await svc.admin_call(lambda db: admincmds.run(db, name, args))
        if name in admincmds.CHANGING and svc.settings_changed is not None:
            await svc.settings_changed()
        log.info("admin change from web", extra={"cmd": name})
        return result

    def check_login(self, remote_ip: str, stored: str | None, password: str) -> LoginResult:
        """Verify a password against stored credentials JSON, with rate limiting.

        The limiter is consulted and updated on the loop; the slow hash runs in the
        CPU executor; unknown users cost the same hashing as known ones.
        """
        svc = self.services
        if not self.on_loop(lambda: svc.auth_limiter.allowed(remote_ip)):
            svc.metrics.auth_attempts.inc(protocol="web", result="ratelimited")
            return LoginResult(False, limited=True)
        creds = None
        if stored is not None:
            try:
                creds = Credentials.from_json(stored)
            except Exception:
                log.error("stored credentials unreadable")
        ok = svc.cpu_executor.submit(check_password, creds, password).result(CALL_TIMEOUT_S)
        if ok:
            self.on_loop(lambda: svc.auth_limiter.reset(remote_ip))
        else:
            self.on_loop(lambda: svc.auth_limiter.record_failure(remote_ip))
        svc.metrics.auth_attempts.inc(protocol="web", result="ok" if ok else "badcreds")
        return LoginResult(ok)
