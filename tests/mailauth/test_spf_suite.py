"""The OpenSPF RFC 7208 suite (203 tests), each scenario served by a loopback DNS server."""

import asyncio
from collections.abc import Callable, Iterator

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import spf
from tests.mailauth.spf_suite import (
    DEFAULT_EXPLANATION,
    Case,
    cases,
    explanation_matches,
    load,
    scenarios,
)

CASES = list(cases())
SCENARIOS = scenarios()


@pytest.fixture(scope="module")
def suite_server() -> Iterator[Callable[[int], LoopbackDNSServer]]:
    """One started server per scenario, made when first needed."""
    servers: dict[int, LoopbackDNSServer] = {}

    def get(i: int) -> LoopbackDNSServer:
        if i not in servers:
            s = LoopbackDNSServer().start()
            load(s, SCENARIOS[i]["zonedata"])
            servers[i] = s
        return servers[i]

    yield get
    for s in servers.values():
        s.stop()


def test_the_suite_has_203_tests() -> None:
    assert len(CASES) == 203


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rfc7208_suite(case: Case, suite_server: Callable[[int], LoopbackDNSServer]) -> None:
    server = suite_server(case.scenario)
    resolver = Resolver([server.address], timeout=0.5)
    got = asyncio.run(
        spf.verify(
            resolver, case.host, case.mailfrom, case.helo,
            receiver_host="receiver.example", default_explanation=DEFAULT_EXPLANATION,
        )
    )  # fmt: skip
    r = got.result
    assert r.status in case.results, r
    if r.status == spf.Status.FAIL:
        assert explanation_matches(case, r.explanation), r
