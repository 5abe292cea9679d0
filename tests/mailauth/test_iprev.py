"""iprev (RFC 8601 §3) against a loopback DNS server."""

import asyncio

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import iprev


def test_forward_confirmed_reverse_dns_passes(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("10.2.0.192.in-addr.arpa", "PTR", ["other.example.", "mail.example."])
    dns_server.add("mail.example", "A", "192.0.2.10")
    dns_server.add("other.example", "A", "192.0.2.99")
    dns_server.set_authentic("example.")
    dns_server.set_authentic("in-addr.arpa.")
    r = asyncio.run(iprev.check(resolver, "192.0.2.10"))
    assert r.status == iprev.Status.PASS
    assert r.names[0] == "mail.example" and set(r.names) == {"mail.example", "other.example"}
    assert r.authentic


def test_ipv6_pass(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add(
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        "PTR",
        "mx.example.",
    )
    dns_server.add("mx.example", "AAAA", "2001:db8::1")
    r = asyncio.run(iprev.check(resolver, "2001:db8::1"))
    assert r.status == iprev.Status.PASS and not r.authentic


def test_no_ptr_fails(resolver: Resolver) -> None:
    assert asyncio.run(iprev.check(resolver, "192.0.2.1")).status == iprev.Status.FAIL


def test_unconfirmed_name_fails(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("1.2.0.192.in-addr.arpa", "PTR", "liar.example.")
    dns_server.add("liar.example", "A", "198.51.100.1")
    r = asyncio.run(iprev.check(resolver, "192.0.2.1"))
    assert r.status == iprev.Status.FAIL and r.names == ("liar.example",)


def test_dns_trouble_is_temperror(dns_server: LoopbackDNSServer) -> None:
    dns_server.servfail("1.2.0.192.in-addr.arpa")
    r = asyncio.run(iprev.check(Resolver([dns_server.address], timeout=0.5), "192.0.2.1"))
    assert r.status == iprev.Status.TEMPERROR
    dns_server.clear_faults()
    dns_server.add("1.2.0.192.in-addr.arpa", "PTR", "slow.example.")
    dns_server.timeout("slow.example")
    r = asyncio.run(iprev.check(Resolver([dns_server.address], timeout=0.3), "192.0.2.1"))
    assert r.status == iprev.Status.TEMPERROR


def test_bad_ip_is_permerror(resolver: Resolver) -> None:
    assert asyncio.run(iprev.check(resolver, "nope")).status == iprev.Status.PERMERROR
