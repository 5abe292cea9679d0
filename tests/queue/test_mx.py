"""MX gathering against the loopback DNS server."""

import ipaddress
import random

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.queue.mx import GatherError, gather_destinations, gather_ips


async def test_mx_hosts_sorted_by_preference(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add(
        "a.example", "MX", ["20 mx2.a.example.", "10 mx1.a.example.", "30 mx3.a.example."]
    )
    d = await gather_destinations(resolver, "a.example", rng=random.Random(1))
    assert d.hosts == ("mx1.a.example", "mx2.a.example", "mx3.a.example")
    assert d.have_mx and not d.orig_authentic


async def test_no_mx_means_implicit_mx(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("b.example", "A", "127.0.0.1")
    d = await gather_destinations(resolver, "B.Example")
    assert d.hosts == ("b.example",) and not d.have_mx


async def test_null_mx_is_permanent_5_1_10(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("null.example", "MX", "0 .")
    with pytest.raises(GatherError) as ei:
        await gather_destinations(resolver, "null.example")
    assert ei.value.permanent and ei.value.code == 556 and ei.value.secode == "1.10"


async def test_cname_at_domain_is_followed(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("alias.example", "CNAME", "real.example.")
    dns_server.add("real.example", "MX", "10 mx.real.example.")
    dns_server.set_authentic("real.example")
    d = await gather_destinations(resolver, "alias.example")
    assert d.expanded_domain == "real.example" and d.hosts == ("mx.real.example",)
    assert not d.orig_authentic and not d.expanded_authentic


async def test_authentic_when_all_answers_are(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("sec.example", "MX", "10 mx.sec.example.")
    dns_server.add("mx.sec.example", "A", "127.0.0.1")
    dns_server.set_authentic("sec.example")
    d = await gather_destinations(resolver, "sec.example")
    assert d.orig_authentic and d.expanded_authentic
    ips = await gather_ips(resolver, "mx.sec.example")
    assert ips.authentic and ips.ips == (ipaddress.ip_address("127.0.0.1"),)


async def test_cname_loop_and_servfail_are_temporary(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("l1.example", "CNAME", "l2.example.")
    dns_server.add("l2.example", "CNAME", "l1.example.")
    with pytest.raises(GatherError) as ei:
        await gather_destinations(resolver, "l1.example")
    assert not ei.value.permanent
    dns_server.servfail("sf.example")
    with pytest.raises(GatherError) as ei:
        await gather_destinations(resolver, "sf.example")
    assert not ei.value.permanent and ei.value.code == 451


async def test_address_literal_domain(resolver: Resolver) -> None:
    d = await gather_destinations(resolver, "[127.0.0.1]")
    assert d.ip_literal and d.hosts == ("127.0.0.1",)


async def test_ips_families_and_order(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("mx.ds.example", "A", "127.0.0.1")
    dns_server.add("mx.ds.example", "AAAA", "::1")
    first = await gather_ips(resolver, "mx.ds.example", attempt_number=1)
    assert [str(i) for i in first.ips] == ["127.0.0.1", "::1"] and first.dualstack
    second = await gather_ips(resolver, "mx.ds.example", attempt_number=2)
    assert [str(i) for i in second.ips] == ["::1", "127.0.0.1"]
    v4 = await gather_ips(resolver, "mx.ds.example", ipv6=False)
    assert [str(i) for i in v4.ips] == ["127.0.0.1"] and not v4.dualstack
    dns_server.add("mx.cn.example", "CNAME", "mx.ds.example.")
    cn = await gather_ips(resolver, "mx.cn.example")
    assert cn.expanded_host == "mx.ds.example" and len(cn.ips) == 2
    with pytest.raises(GatherError):
        await gather_ips(resolver, "none.example")
