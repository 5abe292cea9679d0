"""Public Suffix List: the official test_psl.txt cases and the RFC 7489 org domain."""

import re
from pathlib import Path

import pytest

from app.dns.domain import Domain
from app.mailauth.publicsuffix import PublicSuffixList, org_domain_psl, registrable_domain

DATA = Path(__file__).resolve().parent.parent / "data" / "psl" / "test_psl.txt"
_CALL = re.compile(r"checkPublicSuffix\((null|'[^']*'), (null|'[^']*')\);")


def _value(text: str) -> str | None:
    return None if text == "null" else text[1:-1]


CASES = [
    (_value(m.group(1)), _value(m.group(2)))
    for line in DATA.read_text(encoding="utf-8").splitlines()
    if not line.startswith("//") and (m := _CALL.search(line))
]


def test_all_official_cases_are_loaded() -> None:
    # 82 calls in the file; 4 of them (the non-Internet TLD "local") are commented
    # out upstream and are not run, as in the PSL project's own test runners.
    assert len(CASES) == 78
    assert DATA.read_text(encoding="utf-8").count("checkPublicSuffix(") == 82


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_official_psl_case(name: str | None, expected: str | None) -> None:
    assert registrable_domain(name) == expected


def test_org_domain_psl_of_a_public_suffix_is_itself() -> None:
    assert org_domain_psl("com") == "com"
    assert org_domain_psl("mail.example.co.uk") == "example.co.uk"
    assert org_domain_psl(Domain.parse("Sub.Example.COM")) == "example.com"


def test_a_small_list_with_wildcards_and_exceptions() -> None:
    psl = PublicSuffixList.parse("// c\nfoo\n*.bar.foo\n!www.bar.foo\n")
    assert psl.registrable_domain("a.b.bar.foo") == "a.b.bar.foo"
    assert psl.registrable_domain("b.bar.foo") is None
    assert psl.registrable_domain("x.www.bar.foo") == "www.bar.foo"
