"""The web services a listener can enable: ``http``, ``https`` and ``admin_http``.

* ``admin_http`` (8080; keep it on loopback or a LAN): ``/admin/``, ``/metrics``,
  plus everything ``http`` serves, so one port is enough for a local instance
  (``localserve`` enables only admin_http on 1080 and https on 1443, as mox serves
  its admin pages on its plain-HTTP port).
* ``http`` (80): autoconfig, MTA-STS, and redirects to HTTPS for the account pages.
* ``https`` (443): ``/account/``, autoconfig/autodiscover, MTA-STS.

WSGI apps run in ``services.web_executor`` (``tuning.web_threads`` threads), shared
by all web listeners of the server and created on first use.
"""

import asyncio
import errno
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.config.static import Listener
from app.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from app.services import Services
from app.web import wellknown
from app.web.context import WebContext
from app.web.http import (
    EventStream,
    HTTPServer,
    Request,
    Response,
    Router,
    WSGIRunner,
    redirect,
    text_response,
)

log = logging.getLogger(__name__)


def _context(services: Services) -> tuple[WebContext, WSGIRunner]:
    if services.web_executor is None:
        services.web_executor = ThreadPoolExecutor(
            services.config.tuned.web_threads, thread_name_prefix="web"
        )
    return WebContext(services, asyncio.get_running_loop()), WSGIRunner(services.web_executor)


def _https_redirect(lst: Listener, req: Request) -> Response | None:
    """Redirect to the same path over HTTPS, when this listener serves HTTPS."""
    if not lst.https.enabled:
        return None
    port = lst.port("https")
    host = req.host or "localhost"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port == 443 else f"{host}:{port}"
    target = req.path + (f"?{req.query}" if req.query else "")
    return redirect(f"https://{netloc}{target}", 301)


def _public_router(services: Services, lst: Listener) -> Router:
    """``http``: well-known endpoints, and HTTPS redirects for the user interfaces."""

    async def route(req: Request) -> Response | EventStream:
        r = await wellknown.handle(services, req)
        if r is not None:
            return r
        if req.path == "/" or req.path.startswith("/account"):
            r = _https_redirect(lst, req)
            if r is not None:
                return r
        return text_response(404, "not found")

    return route


async def _setup_token(services: Services, name: str, lst: Listener) -> str:
    """A one-time setup link token, logged, when the server has no admin password and
    no domain yet; "" otherwise."""
    from app.store.admincmds import ADMIN_PASSWORD_KEY

    has_password = await services.admin_call(lambda db: db.setting(ADMIN_PASSWORD_KEY))
    if has_password or services.dynamic.domains:
        return ""
    token = secrets.token_urlsafe(24)
    host = lst.ips[0] if lst.ips else "localhost"
    host = f"[{host}]" if ":" in host else host
    log.warning(
        "setup wizard waiting",
        extra={"url": f"http://{host}:{lst.port('admin_http')}/admin/setup?token={token}"},
    )
    return token


def _admin_router(
    services: Services, lst: Listener, runner: WSGIRunner, ctx: WebContext, token: str
) -> Router:
    public = _public_router(services, lst)
    admin: Any = None  # the bottle app, built (and bottle imported) on first use

    async def route(req: Request) -> Response | EventStream:
        nonlocal admin
        if req.path == "/metrics":
            if services.queue is not None:
                services.metrics.queue_size.set(await services.queue.size())
            body = services.metrics.render().encode()
            return Response(200, (("Content-Type", METRICS_CONTENT_TYPE),), body)
        if req.path in ("/", "/admin"):
            return redirect("/admin/")
        if req.path.startswith("/admin/"):
            if admin is None:
                from app.web.admin.app import build as build_admin

                admin = build_admin(ctx, token)
            return await runner.call(admin, req)
        return await public(req)

    return route


def _https_router(services: Services, runner: WSGIRunner, ctx: WebContext) -> Router:
    account: Any = None  # the bottle app, built (and bottle imported) on first use

    async def route(req: Request) -> Response | EventStream:
        nonlocal account
        r = await wellknown.handle(services, req)
        if r is not None:
            return r
        if req.path in ("/", "/account"):
            return redirect("/account/")
        if req.path.startswith("/account/"):
            if account is None:
                from app.web.account.app import build as build_account

                account = build_account(ctx)
            return await runner.call(account, req)
        return text_response(404, "not found")

    return route


async def _listen(
    services: Services, name: str, lst: Listener, service: str, router: Router, tls: bool
) -> list[asyncio.AbstractServer]:
    ssl_ctx = None
    if tls:
        store = services.certs.get(name)
        if store is None:
            raise OSError(
                errno.EINVAL, "https needs certificates (tls.certificates or tls.self_signed)"
            )
        ssl_ctx = store.context
    server = HTTPServer(
        router,
        listener=name,
        forwarded=lst.forwarded,
        metrics=services.metrics,
        on_connect=lambda: services.metrics.connections.inc(service=service),
        admission=services.connections,
    )
    out: list[asyncio.AbstractServer] = []
    port = lst.port(service)
    for ip in lst.ips:
        started = await server.start(ip, port, ssl_ctx)
        out.append(started)
        for sock in started.sockets or ():
            host, bound_port = sock.getsockname()[:2]
            log.info(
                "listening",
                extra={"service": service, "listener": name, "address": f"{host}:{bound_port}"},
            )
    return out


async def start_http(services: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    return await _listen(services, name, lst, "http", _public_router(services, lst), tls=False)


async def start_https(services: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    ctx, runner = _context(services)
    return await _listen(services, name, lst, "https", _https_router(services, runner, ctx), True)


async def start_admin(services: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    ctx, runner = _context(services)
    token = await _setup_token(services, name, lst)
    router = _admin_router(services, lst, runner, ctx, token)
    return await _listen(services, name, lst, "admin_http", router, tls=False)


STARTERS = {"http": start_http, "https": start_https, "admin_http": start_admin}
