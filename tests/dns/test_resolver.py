"""The async resolver against the loopback DNS server, over real sockets."""

import asyncio
import ipaddress
import threading
import time
from pathlib import Path

import pytest

from app.dns.domain import Domain
from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import (
    MX,
    TLSA,
    InvalidName,
    NotFound,
    Resolver,
    Server,
    TempError,
    parse_server,
    system_servers,
)
from tests.dns.test_loopback import ipv6_loopback_available


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- each lookup type ---------------------------------------------------------


async def test_lookup_txt_joins_each_records_strings(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("example", "TXT", ['"v=spf1 " "ip4:192.0.2.0/24 -all"', '"other"'])
    ans = await resolver.lookup_txt("example")
    assert sorted(ans.records) == ["other", "v=spf1 ip4:192.0.2.0/24 -all"]
    assert ans.name == "example."
    assert ans.ttl == 300
    assert ans.cnames == ()


async def test_lookup_mx_gives_preference_and_absolute_host(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("example", "MX", ["10 mx1.example.", "20 MX2.Example."])
    ans = await resolver.lookup_mx("example.")
    assert sorted(ans.records, key=lambda m: m.preference) == [
        MX(10, "mx1.example."),
        MX(20, "mx2.example."),
    ]


async def test_null_mx_host_is_root(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("nomail.example", "MX", "0 .")
    ans = await resolver.lookup_mx("nomail.example")
    assert ans.records == (MX(0, "."),)


async def test_lookup_a_and_aaaa(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("host.example", "A", ["192.0.2.1", "192.0.2.2"])
    dns_server.add("host.example", "AAAA", "2001:db8::1")
    a = await resolver.lookup_a("host.example")
    assert sorted(a.records) == [
        ipaddress.IPv4Address("192.0.2.1"),
        ipaddress.IPv4Address("192.0.2.2"),
    ]
    aaaa = await resolver.lookup_aaaa("host.example")
    assert aaaa.records == (ipaddress.IPv6Address("2001:db8::1"),)


async def test_lookup_ip_combines_both_families_ipv4_first(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("host.example", "A", "192.0.2.1", ttl=100)
    dns_server.add("host.example", "AAAA", "2001:db8::1", ttl=50)
    ans = await resolver.lookup_ip("host.example")
    assert ans.records == (
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
    )
    assert ans.ttl == 50
    assert sorted(dns_server.queries) == [("host.example.", "A"), ("host.example.", "AAAA")]


async def test_lookup_ip_with_only_ipv6(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("v6.example", "AAAA", "2001:db8::6")
    ans = await resolver.lookup_ip("v6.example")
    assert ans.records == (ipaddress.ip_address("2001:db8::6"),)


async def test_lookup_ip_not_found_when_neither_family_exists(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("txtonly.example", "TXT", "x")
    with pytest.raises(NotFound) as nodata:
        await resolver.lookup_ip("txtonly.example")
    assert not nodata.value.nxdomain
    with pytest.raises(NotFound) as nx:
        await resolver.lookup_ip("missing.example")
    assert nx.value.nxdomain


async def test_lookup_ip_temp_error_in_one_family_is_raised(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("host.example", "A", "192.0.2.1")
    dns_server.servfail("host.example", "AAAA")
    r = Resolver([dns_server.address], timeout=1.0, attempts=1)
    with pytest.raises(TempError):
        await r.lookup_ip("host.example")


async def test_lookup_ptr_for_ipv4_and_ipv6(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("1.2.0.192.in-addr.arpa", "PTR", "mail.example.")
    v6 = ipaddress.IPv6Address("2001:db8::25").reverse_pointer
    dns_server.add(v6, "PTR", "Mail6.Example.")
    assert (await resolver.lookup_ptr("192.0.2.1")).records == ("mail.example.",)
    ans = await resolver.lookup_ptr(ipaddress.IPv6Address("2001:db8::25"))
    assert ans.records == ("mail6.example.",)


async def test_lookup_ptr_rejects_a_non_address(resolver: Resolver) -> None:
    with pytest.raises(InvalidName):
        await resolver.lookup_ptr("not-an-ip")


async def test_lookup_cname_returns_target_without_following(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("www.example", "CNAME", "web.example.")
    dns_server.add("web.example", "CNAME", "host.example.")
    ans = await resolver.lookup_cname("www.example")
    assert ans.records == ("web.example.",)
    assert ans.name == "www.example."
    with pytest.raises(NotFound):
        await resolver.lookup_cname("host.example")


async def test_lookup_ns(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("example", "NS", ["ns1.example.", "ns2.example."])
    ans = await resolver.lookup_ns("example")
    assert sorted(ans.records) == ["ns1.example.", "ns2.example."]


async def test_lookup_tlsa(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("_25._tcp.mx.example", "TLSA", "3 1 1 " + "ab" * 32)
    ans = await resolver.lookup_tlsa("_25._tcp.mx.example")
    assert ans.records == (TLSA(3, 1, 1, bytes.fromhex("ab" * 32)),)


async def test_generic_query_returns_rdata(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("_imaps._tcp.example", "SRV", "0 1 993 mail.example.")
    ans = await resolver.query("_imaps._tcp.example", "SRV")
    (rd,) = ans.records
    assert rd.port == 993  # type: ignore[attr-defined]
    assert rd.target.to_text() == "mail.example."  # type: ignore[attr-defined]


async def test_unknown_rdtype_is_a_value_error(resolver: Resolver) -> None:
    with pytest.raises(ValueError):
        await resolver.query("example", "NOSUCHTYPE")


# -- CNAMEs, NXDOMAIN vs NODATA --------------------------------------------------


async def test_cname_chain_is_followed_and_reported(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("www.example", "CNAME", "web.example.", ttl=30)
    dns_server.add("web.example", "CNAME", "host.other.", ttl=600)
    dns_server.add("host.other", "A", "192.0.2.80", ttl=600)
    ans = await resolver.lookup_a("WWW.Example")
    assert ans.records == (ipaddress.IPv4Address("192.0.2.80"),)
    assert ans.name == "host.other."
    assert ans.cnames == ("web.example.", "host.other.")
    assert ans.ttl == 30  # the smallest along the chain


async def test_nxdomain_and_nodata_are_distinguished(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    with pytest.raises(NotFound) as nx:
        await resolver.lookup_txt("missing.example")
    assert nx.value.nxdomain
    assert nx.value.name == "missing.example." and nx.value.rdtype == "TXT"
    with pytest.raises(NotFound) as nodata:
        await resolver.lookup_txt("example")
    assert not nodata.value.nxdomain


async def test_cname_to_missing_target_is_nxdomain(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("alias.example", "CNAME", "gone.example.")
    with pytest.raises(NotFound) as e:
        await resolver.lookup_a("alias.example")
    assert e.value.nxdomain


async def test_wildcard_answers_carry_the_query_name(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("*.example", "TXT", "v=spf1 -all")
    ans = await resolver.lookup_txt("anything.example")
    assert ans.records == ("v=spf1 -all",) and ans.name == "anything.example."


# -- DNSSEC status -----------------------------------------------------------------


async def test_authentic_flag_follows_the_ad_bit(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("signed.example", "MX", "10 mx.signed.example.")
    dns_server.add("plain.example", "MX", "10 mx.plain.example.")
    dns_server.set_authentic("signed.example")
    assert (await resolver.lookup_mx("signed.example")).authentic
    assert not (await resolver.lookup_mx("plain.example")).authentic


async def test_not_found_carries_authentic_denial(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("signed.example", "A", "192.0.2.1")
    dns_server.set_authentic("signed.example")
    with pytest.raises(NotFound) as signed:
        await resolver.lookup_tlsa("_25._tcp.signed.example")
    assert signed.value.authentic
    with pytest.raises(NotFound) as plain:
        await resolver.lookup_tlsa("_25._tcp.plain.example")
    assert not plain.value.authentic


# -- failures ----------------------------------------------------------------------


async def test_no_answer_is_temp_error_within_the_timeout(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.timeout("slow.example")
    r = Resolver([dns_server.address], timeout=0.4, attempts=2)
    start = time.monotonic()
    with pytest.raises(TempError) as e:
        await r.lookup_a("slow.example")
    elapsed = time.monotonic() - start
    assert e.value.reason == "timeout"
    assert 0.35 < elapsed < 0.4 + 0.5
    assert dns_server.queries == [("slow.example.", "A")] * 2  # one per attempt


async def test_servfail_is_temp_error_and_not_cached(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("broken.example", "A", "192.0.2.1")
    dns_server.servfail("broken.example")
    r = Resolver([dns_server.address], timeout=1.0, attempts=1)
    with pytest.raises(TempError) as e:
        await r.lookup_a("broken.example")
    assert e.value.reason == "servfail"
    dns_server.clear_faults()
    assert (await r.lookup_a("broken.example")).records


async def test_refused_is_temp_error(dns_server: LoopbackDNSServer) -> None:
    dns_server.refuse("example")
    r = Resolver([dns_server.address], timeout=1.0, attempts=1)
    with pytest.raises(TempError) as e:
        await r.lookup_mx("example")
    assert e.value.reason == "refused"


async def test_next_server_is_tried_after_a_failure(dns_server: LoopbackDNSServer) -> None:
    with LoopbackDNSServer() as bad:
        bad.servfail("example")
        dns_server.add("example", "A", "192.0.2.1")
        r = Resolver([bad.address, dns_server.address], timeout=1.0, attempts=1)
        ans = await r.lookup_a("example")
        assert ans.records == (ipaddress.IPv4Address("192.0.2.1"),)
        assert bad.queries == [("example.", "A")]


async def test_unreachable_server_is_temp_error(dns_server: LoopbackDNSServer) -> None:
    port = dns_server.port
    dns_server.stop()  # nothing listens on the port any more: ICMP port unreachable
    r = Resolver([f"127.0.0.1:{port}"], timeout=0.5, attempts=1)
    with pytest.raises(TempError):
        await r.lookup_a("example")


async def test_truncated_answer_is_retried_over_tcp(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    records = [f"record {i:02d} " + "x" * 200 for i in range(30)]  # ~6.5 kB, above 1232
    dns_server.add("big.example", "TXT", records)
    ans = await resolver.lookup_txt("big.example")
    assert sorted(ans.records) == records
    # One query over UDP (answered with TC) and the same again over TCP.
    assert dns_server.queries == [("big.example.", "TXT")] * 2


# -- caching -------------------------------------------------------------------------


async def test_second_lookup_is_answered_from_the_cache(dns_server: LoopbackDNSServer) -> None:
    clock = FakeClock()
    r = Resolver([dns_server.address], timeout=1.0, clock=clock)
    dns_server.add("example", "MX", "10 mx.example.", ttl=300)
    first = await r.lookup_mx("example")
    clock.now += 100
    second = await r.lookup_mx("example.")
    assert second.records == first.records
    assert second.ttl == 200  # remaining time
    assert dns_server.queries == [("example.", "MX")]


async def test_cache_entry_expires_after_its_ttl(dns_server: LoopbackDNSServer) -> None:
    clock = FakeClock()
    r = Resolver([dns_server.address], timeout=1.0, clock=clock)
    dns_server.add("example", "A", "192.0.2.1", ttl=60)
    await r.lookup_a("example")
    clock.now += 59
    await r.lookup_a("example")
    assert len(dns_server.queries) == 1
    dns_server.remove("example")
    dns_server.add("example", "A", "192.0.2.2", ttl=60)
    clock.now += 2
    ans = await r.lookup_a("example")
    assert ans.records == (ipaddress.IPv4Address("192.0.2.2"),)
    assert len(dns_server.queries) == 2


async def test_negative_answers_are_cached_for_the_soa_minimum(
    dns_server: LoopbackDNSServer,
) -> None:
    clock = FakeClock()
    r = Resolver([dns_server.address], timeout=1.0, clock=clock)
    dns_server.load_zone_text("example.", "@ 600 IN SOA ns hm 1 3600 600 86400 30\n")
    for _ in range(2):
        with pytest.raises(NotFound):
            await r.lookup_a("missing.example")
        with pytest.raises(NotFound):
            await r.lookup_a("example")  # NODATA
    assert len(dns_server.queries) == 2
    clock.now += 31  # RFC 2308 5: min(SOA TTL 600, MINIMUM 30)
    dns_server.add("missing.example", "A", "192.0.2.1")
    assert (await r.lookup_a("missing.example")).records
    assert len(dns_server.queries) == 3


async def test_cached_not_found_is_a_fresh_exception_each_time(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    errors = []
    for _ in range(2):
        with pytest.raises(NotFound) as e:
            await resolver.lookup_a("missing.example")
        errors.append(e.value)
    assert errors[0] is not errors[1]
    assert errors[1].nxdomain and errors[1].name == "missing.example."
    assert len(dns_server.queries) == 1


async def test_cache_is_bounded_and_evicts_least_recently_used(
    dns_server: LoopbackDNSServer,
) -> None:
    r = Resolver([dns_server.address], timeout=1.0, cache_size=2)
    for n in ("a", "b", "c"):
        dns_server.add(f"{n}.example", "A", "192.0.2.1")
    await r.lookup_a("a.example")
    await r.lookup_a("b.example")
    await r.lookup_a("a.example")  # a is now more recent than b
    await r.lookup_a("c.example")  # evicts b
    dns_server.clear_queries()
    await r.lookup_a("a.example")
    await r.lookup_a("b.example")
    assert dns_server.queries == [("b.example.", "A")]


async def test_clear_cache_forces_new_queries(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    await resolver.lookup_a("example")
    resolver.clear_cache()
    await resolver.lookup_a("example")
    assert len(dns_server.queries) == 2


async def test_cache_size_zero_disables_caching(dns_server: LoopbackDNSServer) -> None:
    r = Resolver([dns_server.address], timeout=1.0, cache_size=0)
    dns_server.add("example", "A", "192.0.2.1")
    await r.lookup_a("example")
    await r.lookup_a("example")
    assert len(dns_server.queries) == 2


async def test_concurrent_identical_lookups_share_one_query(
    dns_server: LoopbackDNSServer,
) -> None:
    r = Resolver([dns_server.address], timeout=1.0, cache_size=0)
    dns_server.add("example", "MX", "10 mx.example.")
    answers = await asyncio.gather(*(r.lookup_mx("example") for _ in range(10)))
    assert {a.records for a in answers} == {(MX(10, "mx.example."),)}
    assert dns_server.queries == [("example.", "MX")]


async def test_concurrent_failing_lookups_share_one_query(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.timeout("slow.example")
    r = Resolver([dns_server.address], timeout=0.3, attempts=1)
    results = await asyncio.gather(
        *(r.lookup_a("slow.example") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(x, TempError) for x in results)
    assert len({id(x) for x in results}) == 5
    assert dns_server.queries == [("slow.example.", "A")]


async def test_cancelling_one_waiter_does_not_cancel_the_shared_lookup(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    first = asyncio.ensure_future(resolver.lookup_a("example"))
    second = asyncio.ensure_future(resolver.lookup_a("example"))
    await asyncio.sleep(0)  # let both start waiting on the shared lookup
    first.cancel()
    assert (await second).records == (ipaddress.IPv4Address("192.0.2.1"),)
    assert first.cancelled()
    assert dns_server.queries == [("example.", "A")]


# -- names ----------------------------------------------------------------------------


async def test_idna_names_are_queried_as_a_labels(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("xn--bcher-kva.example", "MX", "10 mx.xn--bcher-kva.example.")
    for name in ("bücher.example", "Bücher.example.", Domain.parse("BÜCHER.example")):
        ans = await resolver.lookup_mx(name)
        assert ans.records == (MX(10, "mx.xn--bcher-kva.example."),)
        assert ans.name == "xn--bcher-kva.example."
    assert dns_server.queries == [("xn--bcher-kva.example.", "MX")]  # all cached alike


@pytest.mark.parametrize(
    "name",
    [
        "a" * 64 + ".example",
        ".".join(["a" * 63] * 4) + ".x",  # 254 octets
        "a..example",
        "",
        "bad_ü..example",
    ],
)
async def test_invalid_names_are_rejected_before_any_query(
    dns_server: LoopbackDNSServer, resolver: Resolver, name: str
) -> None:
    with pytest.raises(InvalidName) as e:
        await resolver.lookup_txt(name)
    assert e.value.rdtype == "TXT"
    assert dns_server.queries == []


async def test_longest_valid_name_is_accepted(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    name = ".".join(["a" * 63] * 3 + ["a" * 61])  # 253 octets
    with pytest.raises(NotFound):
        await resolver.lookup_a(name)
    assert len(dns_server.queries) == 1


# -- servers ---------------------------------------------------------------------------


def test_parse_server_forms() -> None:
    assert parse_server("192.0.2.53") == Server("192.0.2.53", 53)
    assert parse_server("127.0.0.1:5353") == Server("127.0.0.1", 5353)
    assert parse_server("[::1]:5353") == Server("::1", 5353)
    assert parse_server("::1") == Server("::1", 53)
    assert str(Server("::1", 5353)) == "[::1]:5353"
    for bad in ("dns.example", "127.0.0.1:0", "[::1", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_server(bad)


def test_default_servers_come_from_resolv_conf_without_querying(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n")
    r = Resolver(resolv_conf=str(conf))
    assert r.servers == (Server("192.0.2.53"), Server("2001:db8::53"))
    assert system_servers(str(tmp_path / "missing")) == (Server("127.0.0.1"),)


@pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 cannot be bound here")
async def test_ipv6_server_address() -> None:
    with LoopbackDNSServer("::1") as server:
        server.add("example", "A", "192.0.2.1")
        r = Resolver([server.address], timeout=1.0)
        assert server.address.startswith("[::1]:")
        assert (await r.lookup_a("example")).records == (ipaddress.IPv4Address("192.0.2.1"),)


def test_resolver_works_from_another_thread_and_event_loop(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    results: list[object] = []

    def run() -> None:
        r = Resolver([dns_server.address], timeout=1.0)
        results.append(asyncio.run(r.lookup_a("example")).records)

    t = threading.Thread(target=run)
    t.start()
    t.join(5)
    assert results == [(ipaddress.IPv4Address("192.0.2.1"),)]
