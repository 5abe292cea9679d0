"""DNSBL lookups (RFC 5782) against a loopback DNS server."""

import asyncio

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import dnsbl


def test_query_names_ipv4_and_ipv6_nibbles() -> None:
    assert dnsbl.query_name("bl.example", "192.0.2.99") == "99.2.0.192.bl.example"
    assert dnsbl.query_name("bl.example.", "2001:db8:1:2:3:4:567:89ab") == (
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example"
    )  # RFC 5782 §2.4 example


def test_listed_with_explanation(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("2.0.0.127.bl.example", "A", "127.0.0.2")
    dns_server.add("2.0.0.127.bl.example", "TXT", "test entry, see https://bl.example/")
    r = asyncio.run(dnsbl.lookup(resolver, "bl.example", "127.0.0.2"))
    assert r.status == dnsbl.Status.FAIL
    assert r.addresses == ("127.0.0.2",)
    assert r.explanation == "test entry, see https://bl.example/"


def test_not_listed_passes(resolver: Resolver) -> None:
    assert (
        asyncio.run(dnsbl.lookup(resolver, "bl.example", "192.0.2.1")).status == dnsbl.Status.PASS
    )


def test_ipv6_listing(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add(dnsbl.query_name("bl.example", "2001:db8::1"), "A", "127.0.0.3")
    r = asyncio.run(dnsbl.lookup(resolver, "bl.example", "2001:db8::1"))
    assert r.status == dnsbl.Status.FAIL and r.explanation == ""


def test_dns_trouble_is_temperror(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.servfail("1.2.0.192.bl.example")
    r = asyncio.run(dnsbl.lookup(resolver, "bl.example", "192.0.2.1"))
    assert r.status == dnsbl.Status.TEMPERROR and r.reason


def test_health_check(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    assert not asyncio.run(dnsbl.health_check(resolver, "bl.example"))
    dns_server.add("2.0.0.127.bl.example", "A", "127.0.0.2")
    resolver.clear_cache()
    assert asyncio.run(dnsbl.health_check(resolver, "bl.example"))
    dns_server.add("1.0.0.127.bl.example", "A", "127.0.0.2")  # a list that lists everything
    resolver.clear_cache()
    assert not asyncio.run(dnsbl.health_check(resolver, "bl.example"))
