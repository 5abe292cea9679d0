"""The loopback DNS server, checked on the wire with dnspython's own client."""

import socket
import struct

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from app.dns.loopback import LoopbackDNSServer


def ask(
    server: LoopbackDNSServer,
    name: str,
    rdtype: str,
    *,
    tcp: bool = False,
    edns: bool = True,
    dnssec: bool = False,
    timeout: float = 2.0,
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, want_dnssec=dnssec)
    host = server.host
    if tcp:
        return dns.query.tcp(q, host, port=server.port, timeout=timeout)
    return dns.query.udp(q, host, port=server.port, timeout=timeout)


def texts(rrset: dns.rrset.RRset) -> set[str]:
    return {rd.to_text() for rd in rrset}


def test_answers_records_added_in_presentation_format(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("example", "MX", ["10 mx.example.", "20 mx2.example"])
    r = ask(dns_server, "example.", "MX")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert texts(r.answer[0]) == {"10 mx.example.", "20 mx2.example."}
    assert r.answer[0].ttl == 300


def test_address_is_usable_as_resolver_server_string(dns_server: LoopbackDNSServer) -> None:
    assert dns_server.address == f"127.0.0.1:{dns_server.port}"


def test_unquoted_txt_is_one_string_split_at_255_octets(dns_server: LoopbackDNSServer) -> None:
    long = "k=" + "A" * 400
    dns_server.add("sel._domainkey.example", "TXT", long)
    dns_server.add("spf.example", "TXT", "v=spf1 -all")
    dns_server.add("quoted.example", "TXT", '"a" "b"')
    (rd,) = ask(dns_server, "sel._domainkey.example", "TXT").answer[0]
    assert [len(s) for s in rd.strings] == [255, 147]
    assert b"".join(rd.strings).decode() == long
    (rd,) = ask(dns_server, "spf.example", "TXT").answer[0]
    assert rd.strings == (b"v=spf1 -all",)
    (rd,) = ask(dns_server, "quoted.example", "TXT").answer[0]
    assert rd.strings == (b"a", b"b")


def test_unknown_name_is_nxdomain_with_soa_in_authority(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    r = ask(dns_server, "missing.example", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.SOA
    assert r.authority[0][0].minimum == 60


def test_existing_name_without_the_type_is_nodata(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    r = ask(dns_server, "example", "MX")
    assert r.rcode() == dns.rcode.NOERROR
    assert not r.answer
    assert r.authority[0].rdtype == dns.rdatatype.SOA


def test_empty_non_terminal_is_nodata_not_nxdomain(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("a.b.c.example", "TXT", "deep")
    for name in ("b.c.example", "c.example", "example"):
        r = ask(dns_server, name, "TXT")
        assert r.rcode() == dns.rcode.NOERROR, name
        assert not r.answer
    assert ask(dns_server, "x.c.example", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_soa_from_the_data_is_used_for_negative_answers(dns_server: LoopbackDNSServer) -> None:
    dns_server.load_zone_text(
        "example.",
        "@ 600 IN SOA ns hostmaster 7 3600 600 86400 120\n@ IN A 192.0.2.1\n",
    )
    r = ask(dns_server, "nope.example", "A")
    soa = r.authority[0]
    assert soa.name.to_text() == "example."
    assert soa[0].serial == 7 and soa[0].minimum == 120


def test_cname_chain_is_returned_in_the_answer_section(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("www.example", "CNAME", "web.example.")
    dns_server.add("web.example", "CNAME", "host.example.")
    dns_server.add("host.example", "A", "192.0.2.7")
    r = ask(dns_server, "www.example", "A")
    assert [(rr.name.to_text(), dns.rdatatype.to_text(rr.rdtype)) for rr in r.answer] == [
        ("www.example.", "CNAME"),
        ("web.example.", "CNAME"),
        ("host.example.", "A"),
    ]
    # Asking for the CNAME itself does not follow it.
    r = ask(dns_server, "www.example", "CNAME")
    assert len(r.answer) == 1 and texts(r.answer[0]) == {"web.example."}


def test_cname_to_missing_name_gives_nxdomain_with_the_chain(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("alias.example", "CNAME", "gone.example.")
    r = ask(dns_server, "alias.example", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN  # RFC 6604: rcode of the last name
    assert r.answer[0].rdtype == dns.rdatatype.CNAME


def test_cname_loop_terminates(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("a.example", "CNAME", "b.example.")
    dns_server.add("b.example", "CNAME", "a.example.")
    r = ask(dns_server, "a.example", "A")
    assert len(r.answer) == 2


def test_names_are_case_insensitive(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("MiXeD.Example.", "A", "192.0.2.9")
    r = ask(dns_server, "mixed.EXAMPLE.", "A")
    assert texts(r.answer[0]) == {"192.0.2.9"}
    assert dns_server.queries == [("mixed.example.", "A")]


def test_wildcard_answers_for_missing_names_with_the_query_name(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("*.example", "TXT", "wild")
    r = ask(dns_server, "a.b.example", "TXT")
    assert r.answer[0].name.to_text() == "a.b.example."
    assert texts(r.answer[0]) == {'"wild"'}
    # A wildcard gives NODATA, not NXDOMAIN, for a type it does not have.
    r = ask(dns_server, "x.example", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer


def test_wildcard_does_not_cover_existing_names_or_empty_non_terminals(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("*.example", "TXT", "wild")
    dns_server.add("host.example", "A", "192.0.2.1")
    dns_server.add("x.ent.example", "A", "192.0.2.2")
    # RFC 4592 2.2.1: existing names (and empty non-terminals) are not synthesised.
    for name in ("host.example", "ent.example"):
        r = ask(dns_server, name, "TXT")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer, name
    # Below an existing name the closest encloser is that name, which has no wildcard.
    assert ask(dns_server, "y.ent.example", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_large_answer_is_truncated_over_udp_and_complete_over_tcp(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("big.example", "TXT", [f"{i:03d}" + "x" * 100 for i in range(20)])
    r = ask(dns_server, "big.example", "TXT", edns=False)
    assert r.flags & dns.flags.TC
    assert not r.answer
    r = ask(dns_server, "big.example", "TXT", tcp=True)
    assert not r.flags & dns.flags.TC
    assert len(r.answer[0]) == 20


def test_edns_buffer_size_allows_larger_udp_answers(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("mid.example", "TXT", [f"{i:03d}" + "x" * 100 for i in range(6)])
    assert ask(dns_server, "mid.example", "TXT", edns=False).flags & dns.flags.TC
    r = ask(dns_server, "mid.example", "TXT", edns=True)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 6


def test_authentic_bit_only_for_marked_names_and_dnssec_aware_clients(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("signed.example", "A", "192.0.2.1")
    dns_server.add("plain.example", "A", "192.0.2.2")
    dns_server.set_authentic("signed.example")
    assert ask(dns_server, "signed.example", "A", dnssec=True).flags & dns.flags.AD
    assert not ask(dns_server, "signed.example", "A", dnssec=False).flags & dns.flags.AD
    assert not ask(dns_server, "plain.example", "A", dnssec=True).flags & dns.flags.AD
    # Authenticated denial of existence.
    assert ask(dns_server, "nx.signed.example", "A", dnssec=True).flags & dns.flags.AD


def test_most_specific_authentic_setting_wins(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("a.insecure.example", "A", "192.0.2.1")
    dns_server.add("b.example", "A", "192.0.2.2")
    dns_server.set_authentic("example")
    dns_server.set_authentic("insecure.example", False)
    assert not ask(dns_server, "a.insecure.example", "A", dnssec=True).flags & dns.flags.AD
    assert ask(dns_server, "b.example", "A", dnssec=True).flags & dns.flags.AD


def test_cname_into_unsigned_zone_is_not_authentic(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("www.signed.example", "CNAME", "host.other.example.")
    dns_server.add("host.other.example", "A", "192.0.2.1")
    dns_server.set_authentic("signed.example")
    r = ask(dns_server, "www.signed.example", "A", dnssec=True)
    assert len(r.answer) == 2
    assert not r.flags & dns.flags.AD


def test_servfail_and_refused_faults(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("bad.example", "A", "192.0.2.1")
    dns_server.add("no.example", "A", "192.0.2.1")
    dns_server.servfail("bad.example")
    dns_server.refuse("no.example")
    assert ask(dns_server, "bad.example", "A").rcode() == dns.rcode.SERVFAIL
    assert ask(dns_server, "no.example", "A").rcode() == dns.rcode.REFUSED
    dns_server.clear_faults("bad.example")
    assert ask(dns_server, "bad.example", "A").rcode() == dns.rcode.NOERROR
    assert ask(dns_server, "no.example", "A").rcode() == dns.rcode.REFUSED


def test_fault_can_be_limited_to_one_type(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    dns_server.servfail("example", "AAAA")
    assert ask(dns_server, "example", "AAAA").rcode() == dns.rcode.SERVFAIL
    assert ask(dns_server, "example", "A").rcode() == dns.rcode.NOERROR


def test_timeout_fault_never_answers_over_udp_or_tcp(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("slow.example", "A", "192.0.2.1")
    dns_server.timeout("slow.example")
    with pytest.raises(dns.exception.Timeout):
        ask(dns_server, "slow.example", "A", timeout=0.2)
    with pytest.raises(dns.exception.Timeout):
        ask(dns_server, "slow.example", "A", tcp=True, timeout=0.2)
    assert dns_server.queries == [("slow.example.", "A")] * 2


def test_fault_on_cname_target_applies_to_the_whole_answer(
    dns_server: LoopbackDNSServer,
) -> None:
    dns_server.add("alias.example", "CNAME", "target.example.")
    dns_server.add("target.example", "A", "192.0.2.1")
    dns_server.servfail("target.example")
    assert ask(dns_server, "alias.example", "A").rcode() == dns.rcode.SERVFAIL


def test_load_dict_and_remove(dns_server: LoopbackDNSServer) -> None:
    dns_server.load_dict(
        {
            "example.": {"MX": ["10 mx.example."], "TXT": "v=spf1 -all"},
            "mx.example.": {"A": "192.0.2.25", "AAAA": ["2001:db8::25"]},
        }
    )
    assert texts(ask(dns_server, "mx.example", "AAAA").answer[0]) == {"2001:db8::25"}
    dns_server.remove("example", "TXT")
    assert ask(dns_server, "example", "TXT").rcode() == dns.rcode.NOERROR
    assert ask(dns_server, "example", "MX").answer
    dns_server.remove("mx.example")
    assert ask(dns_server, "mx.example", "A").rcode() == dns.rcode.NXDOMAIN


def test_zone_text_names_are_relative_to_the_origin(dns_server: LoopbackDNSServer) -> None:
    dns_server.load_zone_text(
        "example.org",
        """
        $TTL 120
        @        IN MX  10 mail
        mail     IN A   192.0.2.3
        _dmarc   IN TXT "v=DMARC1; p=reject"
        """,
    )
    r = ask(dns_server, "example.org", "MX")
    assert texts(r.answer[0]) == {"10 mail.example.org."}
    assert r.answer[0].ttl == 120
    assert texts(ask(dns_server, "_dmarc.example.org", "TXT").answer[0]) == {'"v=DMARC1; p=reject"'}


def test_unicode_names_are_stored_as_a_labels(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("bücher.example", "A", "192.0.2.4")
    assert ask(dns_server, "xn--bcher-kva.example", "A").answer


def test_clear_forgets_data_faults_and_queries(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    dns_server.servfail("other.example")
    ask(dns_server, "example", "A")
    dns_server.clear()
    assert dns_server.queries == []
    assert ask(dns_server, "example", "A").rcode() == dns.rcode.NXDOMAIN
    assert ask(dns_server, "other.example", "A").rcode() == dns.rcode.NXDOMAIN


def test_several_queries_on_one_tcp_connection(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    with socket.create_connection(("127.0.0.1", dns_server.port), timeout=2) as s:
        for qid in (1, 2):
            q = dns.message.make_query("example.", "A")
            q.id = qid
            wire = q.to_wire()
            s.sendall(struct.pack("!H", len(wire)) + wire)
            r, _ = dns.query.receive_tcp(s, expiration=None)
            assert r.id == qid and r.answer


def test_garbage_gets_formerr_and_server_keeps_serving(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"\x12\x34" + b"\xff" * 20, ("127.0.0.1", dns_server.port))
        reply = s.recv(512)
    assert reply[:2] == b"\x12\x34"
    assert reply[3] & 0x0F == dns.rcode.FORMERR
    assert ask(dns_server, "example", "A").answer


def test_stop_closes_the_sockets() -> None:
    server = LoopbackDNSServer().start()
    port = server.port
    server.stop()
    with pytest.raises(RuntimeError):
        _ = server.port
    # The TCP port is free again: nothing listens any more.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 cannot be bound here")
def test_server_on_ipv6_loopback() -> None:
    with LoopbackDNSServer("::1") as server:
        server.add("example", "AAAA", "2001:db8::1")
        assert server.address == f"[::1]:{server.port}"
        r = ask(server, "example", "AAAA")
        assert texts(r.answer[0]) == {"2001:db8::1"}
        assert ask(server, "example", "AAAA", tcp=True).answer
