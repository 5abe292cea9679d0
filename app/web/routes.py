"""The routes of the web services (``http``, ``https``, ``admin_http``) and the HTTP
server of each listener, built with the first connection (see :mod:`app.web.service`).

WSGI apps run in ``services.web_executor`` (``tuning.web_threads`` threads), shared
by all web listeners of the server and created on first use.
"""

import asyncio
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


def server(services: Services, name: str, lst: Listener, service: str, token: str) -> HTTPServer:
    """The HTTP server of ``service`` on listener ``name``; ``token`` is the setup
    wizard's one-time token (admin_http only, "" when there is none)."""
    if service == "http":
        router = _public_router(services, lst)
    elif service == "https":
        ctx, runner = _context(services)
        router = _https_router(services, runner, ctx)
    else:
        ctx, runner = _context(services)
        router = _admin_router(services, lst, runner, ctx, token)
    return HTTPServer(
        router,
        listener=name,
        forwarded=lst.forwarded,
        metrics=services.metrics,
        on_connect=lambda: services.metrics.connections.inc(service=service),
        admission=services.connections,
    )
