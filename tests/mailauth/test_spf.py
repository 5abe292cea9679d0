"""SPF behaviour beyond the OpenSPF suite: macros, limits, Received-SPF, verify()."""

import asyncio

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import spf


def check(
    resolver: Resolver, ip: str, domain: str, sender: str = "", helo: str = "h.example"
) -> spf.SPFResult:
    return asyncio.run(spf.check_host(resolver, ip, domain, sender or f"user@{domain}", helo))


def test_rfc7208_macro_examples(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    # RFC 7208 §7.4 examples, observed through the names an exists: queries.
    specs = {
        "%{s}": "strong-bad@email.example.com",
        "%{o}": "email.example.com",
        "%{d4}": "email.example.com",
        "%{d2}": "example.com",
        "%{d1}": "com",
        "%{dr}": "com.example.email",
        "%{d2r}": "example.email",
        "%{l}": "strong-bad",
        "%{l-}": "strong.bad",
        "%{lr}": "strong-bad",
        "%{lr-}": "bad.strong",
        "%{l1r-}": "strong",
        "%{ir}.%{v}._spf.%{d2}": "3.2.0.192.in-addr._spf.example.com",
        "%{lr-}.lp._spf.%{d2}": "bad.strong.lp._spf.example.com",
    }
    for spec, want in specs.items():
        rec = (
            f"v=spf1 exists:{spec}.x.test -all"
            if not spec.endswith("com")
            else f"v=spf1 exists:{spec} -all"
        )
        dns_server.clear()
        dns_server.add("email.example.com", "TXT", rec)
        resolver.clear_cache()
        check(resolver, "192.0.2.3", "email.example.com", "strong-bad@email.example.com")
        asked = [q.replace("\\@", "@") for q, t in dns_server.queries if t == "A"]
        suffix = "" if spec.endswith("com") else ".x.test"
        assert asked == [f"{want}{suffix}.".lower()], spec


def test_ipv6_i_macro_and_uppercase_escaping(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add(
        "e.example", "TXT", "v=spf1 exists:%{ir}.%{v}._spf.%{d2} exists:%{L}.esc.e.example -all"
    )
    check(resolver, "2001:db8::cb01", "e.example", "a/b@e.example")
    asked = [q for q, t in dns_server.queries if t == "A"]
    assert (
        asked[0]
        == "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.e.example."
    )
    assert asked[1] == "a%2fb.esc.e.example."


def test_exp_only_macros_are_a_permerror_outside_exp(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("e.example", "TXT", "v=spf1 exists:%{t}.e.example -all")
    assert check(resolver, "192.0.2.1", "e.example").status == spf.Status.PERMERROR


def test_lookup_limit_and_void_limit(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add(
        "many.example",
        "TXT",
        "v=spf1 " + " ".join(f"a:h{i}.many.example" for i in range(11)) + " -all",
    )
    for i in range(11):
        dns_server.add(f"h{i}.many.example", "A", "198.51.100.1")
    r = check(resolver, "192.0.2.1", "many.example")
    assert r.status == spf.Status.PERMERROR and "too many dns lookups" in r.reason
    dns_server.add(
        "void.example", "TXT", "v=spf1 a:n1.void.example a:n2.void.example a:n3.void.example +all"
    )
    r = check(resolver, "192.0.2.1", "void.example")
    assert r.status == spf.Status.PERMERROR and "void" in r.reason


def test_mx_hosts_are_looked_up_concurrently_but_judged_in_order(
    dns_server: LoopbackDNSServer,
) -> None:
    # The first MX times out; a sequential evaluation returns temperror even though a
    # later host matches, and so must we.
    dns_server.add("m.example", "TXT", "v=spf1 mx -all")
    dns_server.add("m.example", "MX", ["10 slow.m.example.", "20 ok.m.example."])
    dns_server.add("ok.m.example", "A", "192.0.2.9")
    dns_server.timeout("slow.m.example")
    resolver = Resolver([dns_server.address], timeout=0.3)
    assert check(resolver, "192.0.2.9", "m.example").status == spf.Status.TEMPERROR
    dns_server.clear_faults()
    dns_server.add("slow.m.example", "A", "192.0.2.8")
    resolver.clear_cache()
    r = check(resolver, "192.0.2.9", "m.example")
    assert r.status == spf.Status.PASS and r.mechanism == "mx"


def test_verify_uses_helo_for_the_null_sender(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("mail.example", "TXT", "v=spf1 ip4:192.0.2.25 -all")
    dns_server.add("from.example", "TXT", "v=spf1 -all")
    got = asyncio.run(spf.verify(resolver, "192.0.2.25", "", "mail.example"))
    assert got.identity == spf.Identity.HELO and got.domain == "mail.example"
    assert got.result.status == spf.Status.PASS
    got = asyncio.run(spf.verify(resolver, "192.0.2.25", "x@From.Example", "mail.example"))
    assert got.identity == spf.Identity.MAILFROM and got.domain == "from.example"
    assert got.result.status == spf.Status.FAIL


def test_received_spf_header() -> None:
    r = spf.SPFResult(spf.Status.PASS, "example.com", "ip4:192.0.2.0/24")
    h = spf.received_spf(
        r, ip="192.0.2.1", mail_from="user@example.com", helo="mail.example.com",
        identity=spf.Identity.MAILFROM, receiver="mx.example.org",
    )  # fmt: skip
    assert h == (
        "Received-SPF: pass (mx.example.org: domain example.com designates 192.0.2.1 as"
        " permitted sender)\r\n"
        "\tclient-ip=192.0.2.1;\r\n"
        '\tenvelope-from="user@example.com";\r\n'  # RFC 7208 §9.1 example form
        "\thelo=mail.example.com;\r\n"
        '\tmechanism="ip4:192.0.2.0/24";\r\n'
        "\treceiver=mx.example.org;\r\n"
        "\tidentity=mailfrom;\r\n"
    )
    bad = spf.SPFResult(spf.Status.PERMERROR, "x.example", reason='bad "record"\r\n')
    h = spf.received_spf(
        bad, ip="2001:db8::1", mail_from="", helo="h", identity=spf.Identity.HELO, receiver="mx"
    )
    assert 'client-ip="2001:db8::1";' in h and 'problem="bad \\"record\\"  ";' in h
    assert h.count("\r\n") == len(h.splitlines())


@pytest.mark.parametrize(
    "record",
    ["v=spf1 a:foo", "v=spf1 ip4:1.2.3.4/33", "v=spf1 redirect=a.example redirect=b.example",
     "v=spf1 exp=", "v=spf1 -foo", "v=spf1 a:%{x}.example", "v=spf1 a//129"],
)  # fmt: skip
def test_syntax_errors(record: str) -> None:
    with pytest.raises(spf.SPFSyntaxError):
        spf.parse_record(record)


def test_parse_record_keeps_directives() -> None:
    r = spf.parse_record("v=spf1 ip6:2001:db8::/32 ~mx:%{d}/24//64 exp=why.%{d} ?all")
    assert [d.text for d in r.directives] == ["ip6:2001:db8::/32", "~mx:%{d}/24//64", "?all"]
    assert r.directives[1].cidr4 == 24 and r.directives[1].cidr6 == 64
    assert r.exp == "why.%{d}"
