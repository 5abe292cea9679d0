"""The ValiMail ARC validation suite (RFC 8617), served from a loopback DNS server."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth.arc import ARCStatus, verify_arc

SUITE = Path(__file__).resolve().parent.parent / "data" / "arc" / "arc-draft-validation-tests.yml"


def load() -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    cases = []
    for scenario in yaml.safe_load_all(SUITE.read_text()):
        records = scenario.get("txt-records") or {}
        for name, test in scenario["tests"].items():
            cases.append((name, test, records))
    return cases


CASES = load()


def expected(cv: str) -> ARCStatus:
    # Three tests have an empty expectation (a YAML block scalar with no content);
    # their newest seal says cv=fail, a failed chain (RFC 8617 5.2): see README.md.
    return ARCStatus((cv.strip() or "Fail").lower())


def test_suite_has_171_validation_tests() -> None:
    assert len(CASES) == 171


@pytest.fixture(scope="module")
def suite_dns() -> Any:
    with LoopbackDNSServer() as server:
        yield server


@pytest.mark.parametrize(("name", "test", "records"), CASES, ids=[c[0] for c in CASES])
async def test_arc_validation(
    suite_dns: LoopbackDNSServer, name: str, test: dict[str, Any], records: dict[str, str]
) -> None:
    suite_dns.clear()
    for owner, txt in records.items():
        suite_dns.add(owner, "TXT", "".join(txt.split("\n")))
    resolver = Resolver([suite_dns.address], timeout=2.0, cache_size=0)
    result = await verify_arc(resolver, test["message"].encode())
    assert result.status is expected(str(test["cv"])), (test.get("description"), result)
