"""DANE (RFC 7672): usable records, TLSA gathering and chain verification."""

import hashlib

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import TLSA, Resolver
from app.queue import dane
from tests.queue.test_client_peer import make_ca, make_leaf


def test_usable_records_filter() -> None:
    good = TLSA(3, 1, 1, b"\x00" * 32)
    records = [
        good,
        TLSA(2, 0, 2, b"\x00" * 64),
        TLSA(1, 1, 1, b"\x00" * 32),  # PKIX-EE: unusable for SMTP
        TLSA(3, 1, 1, b"\x00" * 31),  # wrong digest length
        TLSA(3, 2, 1, b"\x00" * 32),  # unknown selector
        TLSA(3, 1, 9, b"\x00" * 32),  # unknown matching type
        TLSA(3, 0, 0, b"not a certificate"),
    ]
    assert dane.usable(records) == (good, TLSA(2, 0, 2, b"\x00" * 64))


def test_dane_ee_matches_leaf_key_or_certificate_without_name_check() -> None:
    ca = make_ca()
    leaf = make_leaf(ca, ["other.example"], days=1)
    chain = [leaf.der]
    assert dane.verify([TLSA(3, 1, 1, leaf.spki_sha256())], chain, ["mx.example"]).ok
    assert dane.verify([TLSA(3, 0, 0, leaf.der)], chain, ["mx.example"]).ok
    cert_sha512 = hashlib.sha512(leaf.der).digest()
    assert dane.verify([TLSA(3, 0, 2, cert_sha512)], chain, []).ok
    bad = dane.verify([TLSA(3, 1, 1, b"\x01" * 32)], chain, ["mx.example"])
    assert not bad.ok and "mismatch" in bad.reason


def test_dane_ta_verifies_chain_and_name() -> None:
    ca = make_ca()
    leaf = make_leaf(ca, ["mx.example"])
    chain = [leaf.der, ca.der]
    ta = TLSA(2, 1, 1, ca.spki_sha256())
    assert dane.verify([ta], chain, ["mx.example"]).ok
    wrong_name = dane.verify([ta], chain, ["other.example"])
    assert not wrong_name.ok
    other_ca = make_ca("Other")
    assert not dane.verify([TLSA(2, 1, 1, other_ca.spki_sha256())], chain, ["mx.example"]).ok
    # An anchor the server does not send cannot be used.
    assert not dane.verify([ta], [leaf.der], ["mx.example"]).ok


def test_allowed_names_for_implicit_mx() -> None:
    names = dane.allowed_names(
        have_mx=False,
        next_hop="example.org",
        expanded_next_hop="real.example",
        expanded_next_hop_authentic=True,
        host="real.example",
        base_domain="real.example",
    )
    assert names == ("real.example", "example.org")


async def test_gather_tlsa_only_authentic(dns_server: LoopbackDNSServer) -> None:
    resolver = Resolver([dns_server.address], timeout=1.0, cache_size=0)
    dns_server.add("_25._tcp.mx.sec.example", "TLSA", "3 1 1 " + "00" * 32)
    none = await dane.gather_tlsa(resolver, "mx.sec.example", "mx.sec.example", False)
    assert not none.required  # not authentic: no DANE
    dns_server.set_authentic("sec.example")
    res = await dane.gather_tlsa(resolver, "mx.sec.example", "mx.sec.example", False)
    assert res.required and len(res.records) == 1 and res.base_domain == "mx.sec.example"
    dns_server.add("_25._tcp.mx2.sec.example", "TLSA", "1 1 1 " + "00" * 32)
    unusable = await dane.gather_tlsa(resolver, "mx2.sec.example", "mx2.sec.example", False)
    assert unusable.required and unusable.records == ()
    dns_server.servfail("_25._tcp.mx3.sec.example", "TLSA")
    failed = await dane.gather_tlsa(resolver, "mx3.sec.example", "mx3.sec.example", False)
    assert failed.required and failed.error
    absent = await dane.gather_tlsa(resolver, "mx4.sec.example", "mx4.sec.example", False)
    assert not absent.required and not absent.error
