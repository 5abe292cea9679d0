"""RFC 9989 DNS tree walk: organizational domain, psd= tags, query limit, np=."""

import asyncio

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import dmarc


def _org(resolver: Resolver, name: str) -> str:
    return asyncio.run(dmarc.org_domain_treewalk(resolver, name)).domain


def test_fewest_labels_with_a_record_wins(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("_dmarc.mail.example.com", "TXT", "v=DMARC1; p=none")
    dns_server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    assert _org(resolver, "a.mail.example.com") == "example.com"  # RFC 9989 example
    assert _org(resolver, "nothing.example") == "nothing.example"  # no records: itself


def test_psd_y_makes_the_label_below_the_org_domain(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("_dmarc.com", "TXT", "v=DMARC1; p=reject; psd=y")
    assert _org(resolver, "a.mail.example.com") == "example.com"
    assert _org(resolver, "com") == "com"  # psd=y at the start is ignored


def test_psd_n_stops_the_walk(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    dns_server.add("_dmarc.mail.example.com", "TXT", "v=DMARC1; p=none; psd=n")
    dns_server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    assert _org(resolver, "a.mail.example.com") == "mail.example.com"


def test_long_names_take_at_most_eight_queries(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    name = "a.b.c.d.e.f.g.h.i.j.mail.example.com"
    asyncio.run(dmarc.tree_walk(resolver, name))
    asked = sorted(q for q, t in dns_server.queries if t == "TXT")
    assert sorted(asked) == sorted(
        f"_dmarc.{n}."
        for n in [name, "g.h.i.j.mail.example.com", "h.i.j.mail.example.com", "i.j.mail.example.com",
                  "j.mail.example.com", "mail.example.com", "example.com", "com"]
    )  # fmt: skip


def test_policy_from_psd_record_uses_sp_and_np(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("_dmarc.psd.example", "TXT", "v=DMARC1; p=none; sp=quarantine; np=reject; psd=y")
    dns_server.add("exists.org.psd.example", "A", "192.0.2.1")
    lk = asyncio.run(dmarc.lookup(resolver, "exists.org.psd.example"))
    assert lk.status == dmarc.LookupStatus.FOUND and lk.domain == "psd.example"
    assert lk.org_domain == "org.psd.example"
    r = asyncio.run(
        dmarc.verify(resolver, "exists.org.psd.example", spf_status="fail", spf_domain=None)
    )
    assert r.status == dmarc.Status.FAIL and r.policy == dmarc.Policy.QUARANTINE and r.quarantine
    r = asyncio.run(
        dmarc.verify(resolver, "ghost.org.psd.example", spf_status="none", spf_domain=None)
    )
    assert r.policy == dmarc.Policy.REJECT and r.reject  # np= for a non-existent domain


def test_testing_flag_means_no_enforcement(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    dns_server.add("_dmarc.t.example", "TXT", "v=DMARC1; p=reject; t=y")
    r = asyncio.run(dmarc.verify(resolver, "t.example", spf_status="fail", spf_domain="t.example"))
    assert r.status == dmarc.Status.FAIL and r.testing and not r.reject


def test_relaxed_alignment_uses_the_tree_walk(
    dns_server: LoopbackDNSServer, resolver: Resolver
) -> None:
    # blogspot-style: the PSL would say these are unrelated; the owner's records say
    # the parent is the organizational domain.
    dns_server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    r = asyncio.run(
        dmarc.verify(
            resolver, "news.example.com", spf_status="pass", spf_domain="bounce.example.com"
        )
    )
    assert r.status == dmarc.Status.PASS and r.aligned_spf


def test_temperror_during_walk(dns_server: LoopbackDNSServer) -> None:
    dns_server.servfail("_dmarc.example")
    r = asyncio.run(dmarc.lookup(Resolver([dns_server.address], timeout=0.5), "sub.example"))
    assert r.status == dmarc.LookupStatus.TEMPERROR
