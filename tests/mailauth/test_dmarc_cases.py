"""DMARC cases from tests/data/dmarc/dmarc-eval-cases.json, over a loopback DNS server."""

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import dmarc

DATA = json.loads(
    (
        Path(__file__).resolve().parent.parent / "data" / "dmarc" / "dmarc-eval-cases.json"
    ).read_text()
)
METHODS: tuple[dmarc.Method, ...] = ("rfc9989", "rfc7489")


def _uri(u: dmarc.URI) -> Any:
    return {"uri": u.address, "max": u.max_size} if u.max_size else u.address


def _as_expected(r: dmarc.Record, keys: list[str]) -> dict[str, Any]:
    full = {
        "p": str(r.policy),
        "sp": str(r.subdomain_policy) if r.subdomain_policy else None,
        "adkim": str(r.adkim),
        "aspf": str(r.aspf),
        "rua": [_uri(u) for u in r.rua],
        "ruf": [_uri(u) for u in r.ruf],
        "ri": r.report_interval,
        "fo": list(r.failure_options),
        "rf": list(r.report_formats),
        "pct": r.percentage,
    }
    return {k: full[k] for k in keys}


VALID = DATA["record_parse"]["valid"]
INVALID = DATA["record_parse"]["invalid"]


@pytest.mark.parametrize("case", VALID, ids=[c["input"][:40] for c in VALID])
def test_valid_record(case: dict[str, Any]) -> None:
    r = dmarc.parse_record(case["input"])
    assert _as_expected(r, list(case["expect"])) == case["expect"]


@pytest.mark.parametrize("case", INVALID, ids=[repr(c["input"])[:40] for c in INVALID])
def test_invalid_record(case: dict[str, Any]) -> None:
    with pytest.raises(dmarc.RecordError):
        dmarc.parse_record(case["input"])


def test_rfc9989_allows_p_after_other_tags() -> None:
    r = dmarc.parse_record("v=DMARC1; sp=reject; p=reject", strict_order=False)
    assert r.policy == dmarc.Policy.REJECT and r.subdomain_policy == dmarc.Policy.REJECT


@pytest.fixture
def verify_dns(dns_server: LoopbackDNSServer) -> LoopbackDNSServer:
    for name, txts in DATA["dns_txt"].items():
        dns_server.add(name, "TXT", txts)
    return dns_server


def _run_verify(
    server: LoopbackDNSServer, case: dict[str, Any], method: dmarc.Method
) -> dmarc.DMARCResult:
    resolver = Resolver([server.address], timeout=1.0)
    return asyncio.run(
        dmarc.verify(
            resolver, case["header_from_domain"],
            spf_status=case["spf"]["result"], spf_domain=case["spf"]["domain"],
            dkim_pass_domains=[d["d"] for d in case["dkim"] if d["result"] == "pass"],
            dkim_temperror=any(d["result"] == "temperror" for d in case["dkim"]),
            method=method, rng=random.Random(1),
        )
    )  # fmt: skip


VERIFY = DATA["verify"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", VERIFY, ids=[c["description"][:50] for c in VERIFY])
def test_verify_case(
    case: dict[str, Any], method: dmarc.Method, verify_dns: LoopbackDNSServer
) -> None:
    exp = case["expect"]
    r = _run_verify(verify_dns, case, method)
    assert r.status == exp["dmarc"]
    assert r.domain == exp["policy_domain"]
    assert (r.aligned_spf, r.aligned_dkim) == (exp["spf_aligned"], exp["dkim_aligned"])
    disposition = exp["disposition"]
    want_reject = disposition == "reject"
    if "pct=0" in disposition and method == "rfc9989":
        want_reject = True  # RFC 9989 dropped pct: the published p=reject applies
    assert r.reject == want_reject
    assert not r.quarantine


def test_pct_sampling_under_rfc7489(dns_server: LoopbackDNSServer) -> None:
    dns_server.add("_dmarc.half.example", "TXT", "v=DMARC1; p=quarantine; pct=50")
    resolver = Resolver([dns_server.address], timeout=1.0)
    rng = random.Random(7)
    outcomes = [
        asyncio.run(
            dmarc.verify(resolver, "half.example", spf_status="fail", spf_domain="x.example",
                         method="rfc7489", rng=rng)
        )
        for _ in range(40)
    ]  # fmt: skip
    assert all(r.status == dmarc.Status.FAIL for r in outcomes)
    assert {r.quarantine for r in outcomes} == {True, False}
    assert all(r.sampled_out != r.quarantine for r in outcomes)


LOOKUP = DATA["lookup"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", LOOKUP, ids=[c["domain"] for c in LOOKUP])
def test_lookup_case(
    case: dict[str, Any], method: dmarc.Method, dns_server: LoopbackDNSServer
) -> None:
    if isinstance(case["txt"], str):
        dns_server.servfail("_dmarc." + case["domain"])
    else:
        for name, txts in case["txt"].items():
            # An RRset is a set: identical records arrive once. Make duplicates
            # differ in spacing only, so that two DMARC records are served.
            dns_server.add(name, "TXT", [t + " " * i for i, t in enumerate(txts)])
    resolver = Resolver([dns_server.address], timeout=1.0)
    r = asyncio.run(dmarc.lookup(resolver, case["domain"], method=method))
    want = case["expect"]
    if want.startswith("record") or want.startswith("falls back"):
        assert r.status == dmarc.LookupStatus.FOUND and r.record is not None
        assert r.record.policy == dmarc.Policy.NONE
        assert r.domain == (
            "example.com" if case["domain"] == "sub.example.com" else case["domain"]
        )
    elif want.startswith("no record") or want.startswith("two DMARC"):
        assert r.status == dmarc.LookupStatus.NONE
    else:
        assert r.status == want.split()[0]
