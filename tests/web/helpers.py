"""Helpers for web tests: an in-process HTTP server on its own loop thread, free
ports, a cookie-keeping client, and a real ``pillarbox serve`` with web listeners."""

import asyncio
import http.cookiejar
import re
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.web.http import HTTPServer, Limits, Router
from tests.serverproc import ServerProcess, run_cli, write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_server(
    router: Router,
    *,
    ssl_context: ssl.SSLContext | None = None,
    forwarded: bool = False,
    limits: Limits | None = None,
) -> Iterator[tuple[int, HTTPServer]]:
    """An HTTPServer on 127.0.0.1 (free port) run by a loop in a thread."""
    loop = asyncio.new_event_loop()
    server = HTTPServer(router, listener="test", forwarded=forwarded, limits=limits)
    ready: Future[asyncio.Server] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            ready.set_result(await server.start("127.0.0.1", 0, ssl_context))

        loop.run_until_complete(start())
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    srv = ready.result(10)
    port = int(srv.sockets[0].getsockname()[1])
    try:
        yield port, server
    finally:
        loop.call_soon_threadsafe(srv.close)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


def raw(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send bytes, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def unverified() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Page:
    status: int
    url: str
    body: str
    headers: dict[str, str]
    set_cookies: list[str]

    @property
    def csrf(self) -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert m, self.body[:2000]
        return m.group(1)


class Client:
    """A cookie-keeping HTTP(S) client that follows redirects (like a browser)."""

    def __init__(self, follow: bool = True) -> None:
        self.jar = http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=unverified()),
        ]
        if not follow:
            handlers.append(_NoRedirect())
        self.opener = urllib.request.build_opener(*handlers)

    def open(self, url: str, data: dict[str, str] | bytes | None = None) -> Page:
        body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
        try:
            with self.opener.open(url, body, timeout=30) as r:
                return Page(
                    r.status,
                    r.url,
                    r.read().decode(),
                    dict(r.headers.items()),
                    r.headers.get_all("Set-Cookie") or [],
                )
        except urllib.error.HTTPError as e:
            return Page(
                e.code,
                e.url,
                e.read().decode(),
                dict(e.headers.items()),
                e.headers.get_all("Set-Cookie") or [],
            )

    def get(self, url: str) -> Page:
        return self.open(url)

    def post(self, url: str, fields: dict[str, str]) -> Page:
        return self.open(url, fields)

    def cookie(self, name: str) -> str | None:
        for c in self.jar:
            if c.name == name:
                return c.value
        return None


@dataclass
class WebServer:
    proc: ServerProcess
    config: Path
    admin: str  # base URL of admin_http
    https: str  # base URL of https
    http: str  # base URL of http


def web_config(directory: Path, extra: str = "") -> tuple[Path, int, int, int]:
    pa, ph, ps = free_port(), free_port(), free_port()
    cfg = write_config(
        directory,
        f"""
[listeners.local]
ips = ["127.0.0.1"]
[listeners.local.tls]
self_signed = true
[listeners.local.admin_http]
enabled = true
port = {pa}
[listeners.local.http]
enabled = true
port = {ph}
[listeners.local.https]
enabled = true
port = {ps}
"""
        + extra,
    )
    return cfg, pa, ph, ps


@contextmanager
def web_server(directory: Path, admin_password: str = "admin-pw") -> Iterator[WebServer]:
    cfg, pa, ph, ps = web_config(directory)
    if admin_password:
        r = run_cli(["setadminpassword"], config=cfg, stdin=admin_password + "\n")
        assert r.returncode == 0, r.stderr
    proc = ServerProcess(["serve"], config=cfg)
    try:
        proc.wait_for("pillarbox started")
        yield WebServer(
            proc, cfg, f"http://127.0.0.1:{pa}", f"https://127.0.0.1:{ps}", f"http://127.0.0.1:{ph}"
        )
    finally:
        proc.stop()
