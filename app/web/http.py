"""Our HTTP/1.1 front: asyncio connections, strict parsing with limits, WSGI in threads.

One :class:`HTTPServer` serves one listener's service. For each request it asks its
router (an async function of :class:`Request`) for a :class:`Response` or an
:class:`EventStream` (Server-Sent Events). Bottle apps are called through
:class:`WSGIRunner`, which runs them in a small bounded thread pool so the event loop
never blocks.

Rules (RFC 9112 unless noted):

* A request line longer than ``max_request_line`` gets 414, a header section larger
  than ``max_header_bytes`` or with more than ``max_headers`` fields 431, a body
  larger than ``max_body`` 413. Anything malformed gets 400 with a short plain-text
  reason and the connection is closed; client mistakes are never logged as errors.
* Whitespace before a field colon (5.1), obsolete line folding (5.2), both
  Content-Length and Transfer-Encoding (6.1, request smuggling), a missing or
  repeated Host in HTTP/1.1 (RFC 9110 7.2) are all 400.
* Keep-alive is the default in HTTP/1.1 and opt-in in 1.0; idle connections close
  after ``idle_timeout``; a slow header or body read after ``read_timeout``.
* With ``forwarded`` (a trusted reverse proxy in front), the client address and
  scheme come from the last ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` /
  ``X-Forwarded-Proto`` element, the one the proxy itself added; otherwise those
  headers are ignored.
* Every response carries the security headers below unless the handler set them.
* An exception in a handler gives a 500 page and one logged traceback.
"""

import asyncio
import contextlib
import io
import ipaddress
import logging
import re
import ssl
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

from app.metrics import Metrics
from app.web.limits import Limits

log = logging.getLogger(__name__)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
)

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FIELD_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f-\xff]")


class HTTPError(Exception):
    """A request we refuse; ``message`` is short, safe text for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. Header names are lower case; ``body`` is complete."""

    method: str
    target: str
    path: str  # percent-encoded, as sent
    query: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    remote_ip: str = ""
    remote_port: int = 0
    scheme: str = "http"  # after trusted forwarding headers
    tls: bool = False  # this connection itself is TLS
    local_port: int = 0
    listener: str = ""

    def header(self, name: str) -> str | None:
        """The value of the first field ``name`` (lower case), or None."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def host(self) -> str:
        """The Host header's host name, lower case, without port."""
        h = (self.header("host") or "").strip().lower()
        if h.startswith("["):
            return h[1:].split("]", 1)[0]
        return h.rsplit(":", 1)[0] if ":" in h else h

    @property
    def keep_alive(self) -> bool:
        conn = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Event:
    """One Server-Sent Event (HTML living standard, "server-sent events")."""

    data: str = ""
    event: str = ""
    id: str = ""
    comment: str = ""  # sent as ": comment", e.g. a heartbeat

    def encode(self) -> bytes:
        lines: list[str] = []
        if self.comment:
            lines += [f": {x}" for x in self.comment.splitlines()]
        if self.event:
            lines.append(f"event: {self.event.splitlines()[0]}")
        if self.id:
            lines.append(f"id: {self.id.splitlines()[0]}")
        if self.data or not lines:
            lines += [f"data: {x}" for x in self.data.split("\n")]
        return ("\n".join(lines) + "\n\n").encode()


@dataclass(frozen=True, slots=True)
class EventStream:
    """A response that streams events until the iterator ends or the client leaves."""

    events: AsyncIterator[Event]
    headers: tuple[tuple[str, str], ...] = ()


Router = Callable[[Request], Awaitable[Response | EventStream]]


class Admission(Protocol):
    """Connection admission (``app.auth.connlimit.ConnectionLimiter`` fits)."""

    def acquire(self, ip: str) -> str | None: ...

    def release(self, ip: str) -> None: ...


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def text_response(status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(
        status, (("Content-Type", "text/plain; charset=utf-8"), *headers), text.encode() + b"\n"
    )


def redirect(location: str, status: int = 302) -> Response:
    return Response(status, (("Location", location), ("Content-Type", "text/plain")), b"")


# Parsing.


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """``METHOD target HTTP/x.y`` -> (method, target, version). Raises HTTPError."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise HTTPError(400, "request line is not ASCII") from None
    parts = text.split(" ")
    if len(parts) != 3:
        raise HTTPError(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise HTTPError(400, "malformed method")
    if not re.fullmatch(r"HTTP/\d\.\d", version):
        raise HTTPError(400, "malformed HTTP version")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HTTPError(505, "HTTP version not supported")
    if not target or _TARGET_BAD.search(target):
        raise HTTPError(400, "malformed request target")
    return method, target, version


def parse_header_line(line: bytes) -> tuple[str, str]:
    """``Name: value`` -> (lower-case name, value). Raises HTTPError."""
    if line[:1] in (b" ", b"\t"):
        raise HTTPError(400, "obsolete header line folding")  # RFC 9112 5.2
    try:
        text = line.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        raise HTTPError(400, "bad header") from None
    name, sep, value = text.partition(":")
    if not sep or not _TOKEN.match(name):
        raise HTTPError(400, "malformed header field")  # includes "Name :" (RFC 9112 5.1)
    value = value.strip(" \t")
    if _FIELD_VALUE_BAD.search(value):
        raise HTTPError(400, "control character in header field")
    return name.lower(), value


def split_target(target: str, method: str) -> tuple[str, str]:
    """The path and query of a request target (origin, absolute or asterisk form)."""
    if target == "*":
        if method != "OPTIONS":
            raise HTTPError(400, "asterisk target only with OPTIONS")
        return "*", ""
    if not target.startswith("/"):
        u = urllib.parse.urlsplit(target)
        if u.scheme.lower() not in ("http", "https") or not u.netloc:
            raise HTTPError(400, "malformed request target")
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    path, _, query = target.partition("?")
    return path, query.split("#", 1)[0]


def body_length(headers: list[tuple[str, str]], limits: Limits) -> int | None:
    """Content-Length (an int), None for chunked, after the smuggling checks."""
    te = [v for k, v in headers if k == "transfer-encoding"]
    cl = [v for k, v in headers if k == "content-length"]
    if te and cl:
        raise HTTPError(400, "both Content-Length and Transfer-Encoding")
    if te:
        if ",".join(te).strip().lower() != "chunked":
            raise HTTPError(501, "transfer coding not supported")
        return None
    values = {v.strip() for x in cl for v in x.split(",")}
    if not values:
        return 0
    if len(values) != 1:
        raise HTTPError(400, "conflicting Content-Length")
    (v,) = values
    if not v.isdigit() or len(v) > 18:
        raise HTTPError(400, "malformed Content-Length")
    n = int(v)
    if n > limits.max_body:
        raise HTTPError(413, "request body too large")
    return n


def client_address(
    remote_ip: str, tls: bool, headers: list[tuple[str, str]], forwarded: bool
) -> tuple[str, str]:
    """(client IP, scheme), from trusted proxy headers when ``forwarded``."""
    scheme = "https" if tls else "http"
    if not forwarded:
        return remote_ip, scheme
    ip, proto = "", ""
    fwd = [v for k, v in headers if k == "forwarded"]
    if fwd:
        last = ",".join(fwd).split(",")[-1]
        for pair in last.split(";"):
            k, _, v = pair.strip().partition("=")
            v = v.strip().strip('"')
            if k.lower() == "for":
                ip = v[1:].split("]", 1)[0] if v.startswith("[") else v.rsplit(":", 1)[0]
                if v.count(":") > 1 and not v.startswith("["):
                    ip = v
            elif k.lower() == "proto":
                proto = v.lower()
    else:
        xff = [v for k, v in headers if k == "x-forwarded-for"]
        if xff:
            ip = ",".join(xff).split(",")[-1].strip()
        xfp = [v for k, v in headers if k == "x-forwarded-proto"]
        if xfp:
            proto = ",".join(xfp).split(",")[-1].strip().lower()
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        ip = remote_ip
    return ip, proto if proto in ("http", "https") else scheme


# Serialisation.


def response_head(
    status: int, headers: Iterable[tuple[str, str]], *, keep_alive: bool, length: int | None
) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    lines = [f"HTTP/1.1 {status} {reason}", f"Date: {http_date()}"]
    have = set()
    for k, v in headers:
        if "\n" in k or "\r" in k or "\n" in v or "\r" in v:
            raise ValueError("header with line break")
        lines.append(f"{k}: {v}")
        have.add(k.lower())
    for k, v in SECURITY_HEADERS:
        if k.lower() not in have:
            lines.append(f"{k}: {v}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_page(status: int, message: str) -> Response:
    return text_response(status, message, (("Cache-Control", "no-store"),))


# WSGI.


class WSGIRunner:
    """Calls WSGI apps in a bounded thread pool and collects their response."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def call(self, app: WSGIApp, req: Request, script_name: str = "") -> Response:
        loop = asyncio.get_running_loop()
        environ = wsgi_environ(req, script_name)
        return await loop.run_in_executor(self.executor, _run_wsgi, app, environ)


def wsgi_environ(req: Request, script_name: str = "") -> dict[str, Any]:
    """The PEP 3333 environ for ``req``; ``pillarbox.request`` holds the Request."""
    path = urllib.parse.unquote_to_bytes(req.path).decode("latin-1")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    env: dict[str, Any] = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": req.query,
        "SERVER_NAME": req.host or "localhost",
        "SERVER_PORT": str(req.local_port),
        "SERVER_PROTOCOL": req.version,
        "REMOTE_ADDR": req.remote_ip,
        "REMOTE_PORT": str(req.remote_port),
        "CONTENT_LENGTH": str(len(req.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": req.scheme,
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "pillarbox.request": req,
    }
    for k, v in req.headers:
        if k == "content-type":
            env["CONTENT_TYPE"] = v
        elif k not in ("content-length", "proxy"):  # httpoxy: never pass Proxy through
            key = "HTTP_" + k.upper().replace("-", "_")
            env[key] = f"{env[key]},{v}" if key in env else v
    return env


def _run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> Response:
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return lambda data: None  # the legacy write() callable; bottle does not use it

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("WSGI app did not call start_response")
    status = int(str(started[0]).split(" ", 1)[0])
    headers = tuple(
        (k, v) for k, v in started[1] if k.lower() not in ("content-length", "connection")
    )
    return Response(status, headers, body)


# The server.


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    remote_ip: str
    remote_port: int
    local_port: int
    tls: bool
    requests: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class HTTPServer:
    """HTTP/1.1 on one listening socket set; ``router`` decides every response."""

    def __init__(
        self,
        router: Router,
        *,
        listener: str = "",
        forwarded: bool = False,
        limits: Limits | None = None,
        metrics: Metrics | None = None,
        on_connect: Callable[[], None] | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.admission = admission
        self.router = router
        self.listener = listener
        self.forwarded = forwarded
        self.limits = limits or Limits()
        self.metrics = metrics
        self.on_connect = on_connect

    async def start(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> asyncio.Server:
        """Listen on ``host``:``port`` (0 picks a free port)."""
        return await asyncio.get_running_loop().create_server(
            self.protocol,
            host,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=self.limits.tls_handshake_timeout if ssl_context else None,
            reuse_address=True,
        )

    def protocol(self) -> asyncio.StreamReaderProtocol:
        """The protocol of one accepted connection, served by :meth:`handle` (what
        ``asyncio.start_server`` builds, for listeners opened elsewhere)."""
        loop = asyncio.get_running_loop()
        limit = max(self.limits.max_request_line, self.limits.max_header_bytes) + 2
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        return asyncio.StreamReaderProtocol(reader, self.handle, loop=loop)

    def close(self) -> None:
        """Nothing to end: a connection finishes its request, bounded by the timeouts."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests until close, error or timeout."""
        peer = writer.get_extra_info("peername") or ("", 0)
        sock = writer.get_extra_info("sockname") or ("", 0)
        conn = _Conn(
            reader,
            writer,
            str(peer[0]),
            int(peer[1]),
            int(sock[1]),
            writer.get_extra_info("ssl_object") is not None,
        )
        if self.admission is not None:
            refused = self.admission.acquire(conn.remote_ip)
            if refused is not None:
                await self._refuse(conn, refused)
                return
        if self.on_connect is not None:
            self.on_connect()
        try:
            while await self._one(conn):
                conn.requests += 1
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            # The server is shutting down: a connection handler ends quietly (a task
            # that ends cancelled would be logged by asyncio's stream callback).
            pass
        except Exception:
            log.exception("http connection failed", extra={"remote_ip": conn.remote_ip})
        finally:
            if self.admission is not None:
                self.admission.release(conn.remote_ip)
            writer.close()

    async def _refuse(self, conn: _Conn, reason: str) -> None:
        resp = error_page(503, reason)
        with contextlib.suppress(Exception):
            await self._write(conn, resp, keep_alive=False, head=False)
        self._log(conn, None, 503, len(resp.body), time.monotonic())
        conn.writer.close()

    async def _one(self, conn: _Conn) -> bool:
        """Serve one request; True to keep the connection open."""
        t0 = time.monotonic()
        try:
            req = await self._read_request(conn)
        except HTTPError as e:
            resp = error_page(e.status, e.message)
            await self._write(conn, resp, keep_alive=False, head=False)
            self._log(conn, None, resp.status, len(resp.body), t0)
            return False
        if req is None:
            return False
        resp_or_stream = await self._dispatch(req)
        if isinstance(resp_or_stream, EventStream):
            size = await self._stream(conn, resp_or_stream)
            self._log(conn, req, 200, size, t0)
            return False
        keep = req.keep_alive and resp_or_stream.status < 500
        await self._write(conn, resp_or_stream, keep_alive=keep, head=req.method == "HEAD")
        self._log(conn, req, resp_or_stream.status, len(resp_or_stream.body), t0)
        return keep

    async def _dispatch(self, req: Request) -> Response | EventStream:
        try:
            async with asyncio.timeout(self.limits.handler_timeout):
                return await self.router(req)
        except HTTPError as e:
            return error_page(e.status, e.message)
        except TimeoutError:
            log.error("http handler timed out", extra={"path": req.path})
            return error_page(503, "the server took too long, try again")
        except Exception:
            log.exception(
                "http handler failed",
                extra={"listener": self.listener, "method": req.method, "path": req.path},
            )
            return Response(
                500,
                (("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")),
                b"<!doctype html><title>Internal error</title>"
                b"<h1>Internal error</h1><p>Something went wrong; the server log says what.</p>\n",
            )

    async def _read_request(self, conn: _Conn) -> Request | None:
        lim = self.limits
        first_timeout = lim.idle_timeout if conn.requests else lim.read_timeout
        try:
            async with asyncio.timeout(first_timeout):
                line = await self._line(conn, lim.max_request_line, 414, "request line too long")
                while line == b"" and conn.requests:  # tolerate a CRLF after a body (RFC 9112 2.2)
                    line = await self._line(
                        conn, lim.max_request_line, 414, "request line too long"
                    )
        except TimeoutError:
            return None
        except asyncio.IncompleteReadError as e:
            if e.partial:
                raise HTTPError(400, "incomplete request") from None
            return None
        method, target, version = parse_request_line(line)
        async with asyncio.timeout(lim.read_timeout):
            headers = await self._headers(conn)
            path, query = split_target(target, method)
            hosts = [v for k, v in headers if k == "host"]
            if version == "HTTP/1.1" and len(hosts) != 1:
                raise HTTPError(400, "exactly one Host header required")
            length = body_length(headers, lim)
            if any(k == "expect" and v.lower() == "100-continue" for k, v in headers):
                conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await self._body(conn, length)
        ip, scheme = client_address(conn.remote_ip, conn.tls, headers, self.forwarded)
        return Request(
            method, target, path, query, version, tuple(headers), body,
            ip, conn.remote_port, scheme, conn.tls, conn.local_port, self.listener,
        )  # fmt: skip

    async def _line(self, conn: _Conn, limit: int, status: int, message: str) -> bytes:
        try:
            raw = await conn.reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise HTTPError(status, message) from None
        except asyncio.IncompleteReadError:
            raise
        if len(raw) > limit + 2:
            raise HTTPError(status, message)
        line = raw[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\r" in line or b"\0" in line:
            raise HTTPError(400, "bare CR or NUL in request")
        return line

    async def _headers(self, conn: _Conn) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        total = 0
        lim = self.limits
        while True:
            try:
                line = await self._line(conn, lim.max_header_bytes, 431, "header too large")
            except asyncio.IncompleteReadError:
                raise HTTPError(400, "incomplete request") from None
            if not line:
                return headers
            total += len(line) + 2
            if total > lim.max_header_bytes or len(headers) >= lim.max_headers:
                raise HTTPError(431, "request header fields too large")
            headers.append(parse_header_line(line))

    async def _body(self, conn: _Conn, length: int | None) -> bytes:
        try:
            if length is not None:
                return await conn.reader.readexactly(length) if length else b""
            return await self._chunked(conn)
        except asyncio.IncompleteReadError:
            raise HTTPError(400, "incomplete body") from None

    async def _chunked(self, conn: _Conn) -> bytes:
        """A chunked body (RFC 9112 7.1); extensions ignored, trailers discarded."""
        out = bytearray()
        while True:
            line = await self._line(conn, 1024, 400, "chunk size line too long")
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                raise HTTPError(400, "malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                await self._headers(conn)  # trailer section
                return bytes(out)
            if len(out) + size > self.limits.max_body:
                raise HTTPError(413, "request body too large")
            out += await conn.reader.readexactly(size)
            if await conn.reader.readexactly(2) != b"\r\n":
                raise HTTPError(400, "malformed chunk")

    async def _write(self, conn: _Conn, resp: Response, *, keep_alive: bool, head: bool) -> None:
        no_body = head or resp.status in (204, 304) or 100 <= resp.status < 200
        data = response_head(
            resp.status,
            resp.headers,
            keep_alive=keep_alive,
            length=None if resp.status in (204, 304) else len(resp.body),
        )
        conn.writer.write(data if no_body else data + resp.body)
        async with asyncio.timeout(self.limits.write_timeout):
            await conn.writer.drain()

    async def _stream(self, conn: _Conn, stream: EventStream) -> int:
        headers = (
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-store"),
            *stream.headers,
        )
        conn.writer.write(response_head(200, headers, keep_alive=False, length=None))
        size = 0
        try:
            async for ev in stream.events:
                data = ev.encode()
                conn.writer.write(data)
                size += len(data)
                async with asyncio.timeout(self.limits.write_timeout):
                    await conn.writer.drain()
        finally:
            aclose = getattr(stream.events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        return size

    def _log(self, conn: _Conn, req: Request | None, status: int, size: int, t0: float) -> None:
        if self.metrics is not None:
            self.metrics.http_requests.inc(listener=self.listener, code=str(status))
        log.info(
            "http request",
            extra={
                "remote_ip": req.remote_ip if req else conn.remote_ip,
                "listener": self.listener,
                "method": req.method if req else "-",
                "path": req.path[:200] if req else "-",
                "host": req.host[:100] if req else "-",
                "status": status,
                "size": size,
                "ms": round((time.monotonic() - t0) * 1000, 1),
                "tls": conn.tls,
            },
        )


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(when: float | None = None) -> str:
    """IMF-fixdate (RFC 9110 5.6.7), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    t = time.gmtime(when)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )
