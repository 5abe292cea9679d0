"""The HTTP front over real sockets, with http.client, urllib and raw bytes."""

import http.client
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import bottle
import pytest

from app.tls.certs import CertStore, generate_self_signed
from app.web.http import (
    Event,
    EventStream,
    Limits,
    Request,
    Response,
    WSGIRunner,
    text_response,
)
from tests.web.helpers import http_server, raw, status_of


async def echo(req: Request) -> Response | EventStream:
    """Echo what the server understood about the request, as JSON."""
    if req.path == "/boom":
        raise RuntimeError("handler bug")
    if req.path == "/events":

        async def gen() -> AsyncIterator[Event]:
            for i in range(3):
                yield Event(data=f"line {i}\nsecond", event="tick", id=str(i))

        return EventStream(gen())
    info = {
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "ip": req.remote_ip,
        "scheme": req.scheme,
        "body": req.body.decode("latin-1"),
        "host": req.host,
    }
    return Response(200, (("Content-Type", "application/json"),), json.dumps(info).encode())


def get_json(conn: http.client.HTTPConnection, path: str, **kw: object) -> dict[str, str]:
    conn.request("GET", path, **kw)  # type: ignore[arg-type]
    r = conn.getresponse()
    assert r.status == 200
    data: dict[str, str] = json.loads(r.read())
    return data


def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    connects: list[int] = []
    with http_server(echo) as (port, server):
        server.on_connect = lambda: connects.append(1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(5):
            assert get_json(conn, f"/x?i={i}")["query"] == f"i={i}"
        conn.request("POST", "/p", body=b"a=1&b=2")
        r = conn.getresponse()
        assert json.loads(r.read())["body"] == "a=1&b=2"
        conn.close()
    assert len(connects) == 1


def test_http10_without_keep_alive_closes() -> None:
    with http_server(echo) as (port, _):
        out = raw(port, b"GET /a HTTP/1.0\r\n\r\n")
    assert status_of(out) == 200 and b"Connection: close" in out


def test_connection_close_is_honoured() -> None:
    with http_server(echo) as (port, _):
        out = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(out) == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n", 431),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
            + b"\r\n",
            431,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"FFFFF\r\n"
            + b"x" * 0xFFFFF
            + b"\r\nFFFFF\r\n",
            413,
        ),
        (b"HELLO\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),  # space before colon
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400),
    ],
)
def test_bad_and_oversized_requests_get_short_4xx(
    request_bytes: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with http_server(echo) as (port, _):
        out = raw(port, request_bytes)
    assert status_of(out) == status
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert len(body) < 200 and b"Traceback" not in body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_chunked_body_and_expect_continue() -> None:
    with http_server(echo) as (port, _):
        out = raw(
            port,
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n",
        )
    assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
    assert json.loads(out.split(b"\r\n\r\n", 2)[2])["body"] == "abcdefg"


def test_handler_exception_is_500_with_one_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with http_server(echo) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/boom")
        r = conn.getresponse()
        body = r.read()
    assert r.status == 500
    assert b"handler bug" not in body and b"Traceback" not in body
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None


def test_security_headers_on_every_response() -> None:
    with http_server(echo) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path in ("/", "/boom"):
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            assert r.getheader("X-Frame-Options") == "DENY"
            assert r.getheader("X-Content-Type-Options") == "nosniff"
            assert r.getheader("Referrer-Policy") == "same-origin"
            csp = r.getheader("Content-Security-Policy") or ""
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        conn.close()


def test_server_sent_events_stream() -> None:
    with http_server(echo) as (port, _):
        out = raw(port, b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Type: text/event-stream" in head
    events = [e for e in body.decode().split("\n\n") if e]
    assert len(events) == 3
    assert events[1] == "event: tick\nid: 1\ndata: line 1\ndata: second"


def test_idle_keep_alive_connection_is_closed() -> None:
    with (
        http_server(echo, limits=Limits(idle_timeout=0.2)) as (port, _),
        socket.create_connection(("127.0.0.1", port), timeout=10) as s,
    ):
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):  # ends when the server closes the idle connection
            data += chunk
    assert status_of(data) == 200


@pytest.mark.parametrize("forwarded", [False, True])
def test_forwarded_headers_only_when_trusted(forwarded: bool) -> None:
    with http_server(echo, forwarded=forwarded) as (port, _):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        xff = get_json(
            conn,
            "/",
            headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"},
        )
        fwd = get_json(conn, "/", headers={"Forwarded": 'for="[2001:db8::1]:4711";proto=https'})
        bogus = get_json(conn, "/", headers={"X-Forwarded-For": "not-an-ip"})
    if forwarded:
        assert (xff["ip"], xff["scheme"]) == ("198.51.100.7", "https")
        assert (fwd["ip"], fwd["scheme"]) == ("2001:db8::1", "https")
    else:
        assert (xff["ip"], xff["scheme"]) == ("127.0.0.1", "http")
        assert (fwd["ip"], fwd["scheme"]) == ("127.0.0.1", "http")
    assert bogus["ip"] == "127.0.0.1"


def test_tls_with_sni_selects_certificate(tmp_path: Path) -> None:
    for name in ("a.example", "b.example"):
        generate_self_signed([name], tmp_path / f"{name}.crt", tmp_path / f"{name}.key")
    store = CertStore(
        [
            (str(tmp_path / f"{n}.crt"), str(tmp_path / f"{n}.key"))
            for n in ("a.example", "b.example")
        ]
    )
    client = ssl.create_default_context()
    client.load_verify_locations(tmp_path / "a.example.crt")
    client.load_verify_locations(tmp_path / "b.example.crt")
    with http_server(echo, ssl_context=store.context) as (port, _):
        for name in ("a.example", "b.example"):
            with (
                socket.create_connection(("127.0.0.1", port), timeout=10) as s,
                client.wrap_socket(s, server_hostname=name) as tls,
            ):
                cert = tls.getpeercert()
                assert cert is not None
                assert ("DNS", name) in cert["subjectAltName"]
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
            body = json.loads(data.split(b"\r\n\r\n", 1)[1])
            assert body["scheme"] == "https" and body["host"] == name


def test_wsgi_bottle_app_in_thread_pool() -> None:
    from concurrent.futures import ThreadPoolExecutor

    app = bottle.Bottle()
    app.config["catchall"] = False

    def form() -> str:
        name = str(bottle.request.forms.getunicode("name"))
        return f"hello {name} from {bottle.request.remote_addr}"

    def fail() -> str:
        raise ValueError("bug")

    app.post("/form", callback=form)
    app.get("/fail", callback=fail)

    with ThreadPoolExecutor(2) as pool:
        runner = WSGIRunner(pool)

        async def route(req: Request) -> Response:
            if req.path == "/plain":
                return text_response(200, "plain")
            return await runner.call(app, req)

        with http_server(route) as (port, _):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request(
                "POST",
                "/form",
                body="name=J%C3%BCrgen",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            r = conn.getresponse()
            assert (r.status, r.read().decode()) == (200, "hello Jürgen from 127.0.0.1")
            conn.request("GET", "/fail")
            r = conn.getresponse()
            assert r.status == 500 and b"bug" not in r.read()
            conn.request("GET", "/missing")
            r = conn.getresponse()
            r.read()
            assert r.status == 404


def test_http_date_is_imf_fixdate() -> None:
    from email.utils import formatdate

    from app.web.http import http_date

    assert http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"  # RFC 9110 5.6.7
    for t in (0.0, 951782400.0, 1798761599.0, 4102444800.0):
        assert http_date(t) == formatdate(t, usegmt=True)
