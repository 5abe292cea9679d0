"""MTA-STS: conformance cases, MX matching, HTTPS fetch over loopback, the cache."""

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.queue.mtasts import (
    CachedPolicy,
    MTASTSCache,
    MTASTSError,
    Policy,
    PolicyFetcher,
    parse_policy,
    parse_record,
)
from app.queue.tlsrpt import ResultType
from tests.queue.test_client_peer import Cert, make_ca, make_leaf, trust, write_pair

CASES = json.loads((Path(__file__).parent.parent / "data/mta-sts/mta-sts-cases.json").read_text())

ENFORCE = "version: STSv1\nmode: enforce\nmx: mx.sts.example\nmx: *.alt.example\nmax_age: 86400\n"


@pytest.mark.parametrize("case", CASES["txt_record"]["valid"], ids=lambda c: c["input"])
def test_valid_records(case: dict[str, Any]) -> None:
    r = parse_record(case["input"])
    assert r.id == case["expect"]["id"]
    assert [list(e) for e in r.extensions] == case["expect"].get("ext", [])


@pytest.mark.parametrize("case", CASES["txt_record"]["invalid"], ids=lambda c: c["input"])
def test_invalid_records(case: dict[str, Any]) -> None:
    with pytest.raises(MTASTSError):
        parse_record(case["input"])


@pytest.mark.parametrize("case", CASES["policy"]["valid"], ids=lambda c: c["input"][:40])
def test_valid_policies(case: dict[str, Any]) -> None:
    p = parse_policy(case["input"])
    e = case["expect"]
    assert (p.mode, list(p.mx), p.max_age) == (e["mode"], e["mx"], e["max_age"])
    assert [list(x) for x in p.extensions] == e.get("ext", [])


@pytest.mark.parametrize("case", CASES["policy"]["invalid"], ids=lambda c: c["why"])
def test_invalid_policies(case: dict[str, Any]) -> None:
    with pytest.raises(MTASTSError):
        parse_policy(case["input"])


def test_mx_matching_wildcard_covers_one_label() -> None:
    p = Policy("enforce", ("mail.example.com", "*.example.net"), 1)
    assert p.matches("mx1.example.net") and p.matches("MX1.Example.Net.")
    assert not p.matches("example.net") and not p.matches("a.b.example.net")
    assert p.matches("mail.example.com") and not p.matches("x.mail.example.com")


# --- an HTTPS policy server on loopback -----------------------------------------


class PolicyServer:
    """HTTPS on 127.0.0.1 serving ``responses[host] = (status, content-type, body)``."""

    def __init__(self, leaf: Cert, ca: Cert, directory: Path) -> None:
        self.responses: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").split(":")[0]
                outer.requests.append((host, self.path))
                status, ctype, body = outer.responses.get(host, (404, "text/plain", b"no"))
                if self.path != "/.well-known/mta-sts.txt":
                    status = 404
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                if status == 302:
                    self.send_header("Location", "https://elsewhere.example/")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cert_path, key_path = write_pair(leaf, ca, directory, "https")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def ca() -> Cert:
    return make_ca()


@pytest.fixture
def policy_server(ca: Cert, tmp_path: Path) -> Iterator[PolicyServer]:
    leaf = make_leaf(ca, ["mta-sts.sts.example", "mta-sts.other.example"])
    s = PolicyServer(leaf, ca, tmp_path)
    yield s
    s.stop()


def fetcher(ps: PolicyServer, ca: Cert) -> PolicyFetcher:
    return PolicyFetcher(port=ps.port, context=trust(ca), timeout=5)


def _dns(d: LoopbackDNSServer, domain: str = "sts.example", rid: str = "1") -> None:
    d.add(f"mta-sts.{domain}", "A", "127.0.0.1")
    d.add(f"_mta-sts.{domain}", "TXT", f"v=STSv1; id={rid}")


async def test_fetch_valid_policy(
    dns_server: LoopbackDNSServer, resolver: Resolver, policy_server: PolicyServer, ca: Cert
) -> None:
    _dns(dns_server)
    policy_server.responses["mta-sts.sts.example"] = (
        200,
        "text/plain; charset=utf-8",
        ENFORCE.encode(),
    )
    policy, text = await fetcher(policy_server, ca).fetch(resolver, "sts.example")
    assert policy.mode == "enforce" and text == ENFORCE
    assert policy_server.requests == [("mta-sts.sts.example", "/.well-known/mta-sts.txt")]


@pytest.mark.parametrize(
    ("status", "ctype", "body", "kind"),
    [
        (200, "text/html", ENFORCE.encode(), ResultType.STS_POLICY_INVALID),
        (404, "text/plain", ENFORCE.encode(), ResultType.STS_POLICY_FETCH_ERROR),
        (302, "text/plain", ENFORCE.encode(), ResultType.STS_POLICY_FETCH_ERROR),
        (200, "application/json+text/plain", ENFORCE.encode(), ResultType.STS_POLICY_INVALID),
        (200, "text/plain", b"x" * 70000, ResultType.STS_POLICY_INVALID),
        (200, "TEXT/PLAIN ; charset=UTF-8", b"garbage", ResultType.STS_POLICY_INVALID),
    ],
)
async def test_fetch_refusals(
    dns_server: LoopbackDNSServer,
    resolver: Resolver,
    policy_server: PolicyServer,
    ca: Cert,
    status: int,
    ctype: str,
    body: bytes,
    kind: ResultType,
) -> None:
    _dns(dns_server)
    policy_server.responses["mta-sts.sts.example"] = (status, ctype, body)
    with pytest.raises(MTASTSError) as ei:
        await fetcher(policy_server, ca).fetch(resolver, "sts.example")
    assert ei.value.result_type is kind


async def test_fetch_certificate_for_wrong_name_is_webpki_invalid(
    dns_server: LoopbackDNSServer, resolver: Resolver, ca: Cert, tmp_path: Path
) -> None:
    ps = PolicyServer(make_leaf(ca, ["mta-sts.elsewhere.example"]), ca, tmp_path)
    try:
        _dns(dns_server)
        ps.responses["mta-sts.sts.example"] = (200, "text/plain", ENFORCE.encode())
        with pytest.raises(MTASTSError) as ei:
            await fetcher(ps, ca).fetch(resolver, "sts.example")
        assert ei.value.result_type is ResultType.STS_WEBPKI_INVALID
        # and a self-signed/unknown CA is refused with the system trust store
        with pytest.raises(MTASTSError):
            await PolicyFetcher(port=ps.port, timeout=5).fetch(resolver, "sts.example")
    finally:
        ps.stop()


async def test_cache_fetches_once_per_record_id(
    dns_server: LoopbackDNSServer, policy_server: PolicyServer, ca: Cert
) -> None:
    resolver = Resolver([dns_server.address], timeout=1.0, cache_size=0)
    _dns(dns_server, rid="1")
    policy_server.responses["mta-sts.sts.example"] = (200, "text/plain", ENFORCE.encode())
    now = [1000.0]
    updates: list[CachedPolicy] = []
    cache = MTASTSCache(fetcher(policy_server, ca), clock=lambda: now[0], on_update=updates.append)
    first = await cache.get(resolver, "sts.example")
    assert first.policy is not None and first.policy.mode == "enforce" and first.record_id == "1"
    again = await cache.get(resolver, "sts.example")
    assert again.policy == first.policy and len(policy_server.requests) == 1
    # A new id: fetch again. A failing fetch keeps the cached policy (RFC 8461 5.1).
    dns_server.remove("_mta-sts.sts.example", "TXT")
    dns_server.add("_mta-sts.sts.example", "TXT", "v=STSv1; id=2")
    policy_server.responses["mta-sts.sts.example"] = (500, "text/plain", b"")
    failing = await cache.get(resolver, "sts.example")
    assert failing.policy == first.policy and failing.error
    # The record disappears: the cached policy still applies until max_age.
    dns_server.remove("_mta-sts.sts.example", "TXT")
    assert (await cache.get(resolver, "sts.example")).policy == first.policy
    now[0] += 86401
    assert (await cache.get(resolver, "sts.example")).policy is None
    assert len(updates) == 1
    # Persistence: entries load back into a new cache.
    other = MTASTSCache(clock=lambda: 1000.0)
    other.load(updates)
    assert other.cached("sts.example") is not None


async def test_txt_temp_error_without_cache_is_temporary(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.servfail("_mta-sts.tmp.example", "TXT")
    lookup = await MTASTSCache().get(resolver, "tmp.example")
    assert lookup.policy is None and lookup.temporary
    none = await MTASTSCache().get(resolver, "nothing.example")
    assert none.policy is None and not none.temporary and not none.error


async def test_two_records_mean_no_policy(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("_mta-sts.two.example", "TXT", ["v=STSv1; id=1", "v=STSv1; id=2"])
    lookup = await MTASTSCache().get(resolver, "two.example")
    assert lookup.policy is None and lookup.result_type is ResultType.STS_POLICY_INVALID


async def test_refresh_renews_cached_policies_with_an_unchanged_id(
    dns_server: LoopbackDNSServer, policy_server: PolicyServer, ca: Cert
) -> None:
    resolver = Resolver([dns_server.address], timeout=1.0, cache_size=0)
    _dns(dns_server, rid="1")
    policy_server.responses["mta-sts.sts.example"] = (200, "text/plain", ENFORCE.encode())
    now = [1000.0]
    cache = MTASTSCache(fetcher(policy_server, ca), clock=lambda: now[0])
    await cache.get(resolver, "sts.example")
    first = cache.cached("sts.example")
    assert first is not None and len(policy_server.requests) == 1
    now[0] += 3600  # an hour later, same policy id: a lookup would not fetch...
    await cache.get(resolver, "sts.example")
    assert len(policy_server.requests) == 1
    assert await cache.refresh(resolver) == 1  # ...but the daily refresh does
    renewed = cache.cached("sts.example")
    assert len(policy_server.requests) == 2
    assert renewed is not None and renewed.expires == first.expires + 3600
    # A failing refresh keeps the cached policy (RFC 8461 5.1).
    policy_server.responses["mta-sts.sts.example"] = (500, "text/plain", b"")
    assert await cache.refresh(resolver) == 0
    assert cache.cached("sts.example") is renewed
