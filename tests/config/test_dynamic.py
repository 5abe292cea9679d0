"""Dynamic settings: validation, recipient resolution, quota rules and the TOML form."""

import pytest

from app.config.dynamic import AccountDest, AliasDest, DynamicBuilder, DynamicError, from_toml
from app.config.schema import ConfigError
from app.dns.domain import Domain

EX = Domain.parse("example.com")


def sample() -> DynamicBuilder:
    b = DynamicBuilder()
    b.add_domain("example.com")
    b.add_domain("bücher.example")
    b.add_account("you")
    b.add_address("You@Example.com", "you")
    b.add_account("other", quota=-1)
    b.add_address("other@bücher.example", "other")
    b.add_alias("team@example.com", ("you@example.com", "other@bücher.example"))
    return b


def test_exact_address_matches_case_insensitively() -> None:
    d = sample().build()
    assert d.resolve("YOU", EX) == AccountDest("you", "you@example.com")


def test_subaddress_is_stripped_with_the_domains_separator() -> None:
    d = sample().build()
    assert d.resolve("you+lists", EX) == AccountDest("you", "you@example.com")
    assert d.resolve("you-lists", EX) is None


def test_idna_domain_matches_both_forms() -> None:
    d = sample().build()
    want = AccountDest("other", "other@xn--bcher-kva.example")
    assert d.resolve("other", Domain.parse("xn--bcher-kva.example")) == want
    assert d.resolve("other", Domain.parse("BÜCHER.example")) == want


def test_alias_resolves_to_its_members() -> None:
    dest = sample().build().resolve("team", EX)
    assert isinstance(dest, AliasDest)
    assert dest.alias.members == ("you@example.com", "other@xn--bcher-kva.example")


def test_postmaster_and_catchall() -> None:
    b = sample()
    d = b.build()
    assert d.resolve("postmaster", EX, postmaster_account="you") == AccountDest(
        "you", "postmaster@example.com"
    )
    assert d.resolve("nobody", EX) is None
    b.add_address("@example.com", "other")
    assert b.build().resolve("nobody", EX) == AccountDest("other", "@example.com")


def test_unknown_domain_resolves_to_nothing() -> None:
    assert sample().build().resolve("you", Domain.parse("example.org")) is None


def test_quota_rules_follow_mox() -> None:
    b = sample()
    b.add_account("limited", quota=1000)
    d = b.build()
    assert d.effective_quota("you", 5000) == 5000  # 0: global default
    assert d.effective_quota("you", 0) is None  # global 0: unlimited
    assert d.effective_quota("other", 5000) is None  # negative: unlimited
    assert d.effective_quota("limited", 5000) == 1000


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.add_domain("example.com"), "already exists"),
        (lambda b: b.add_domain("no..dots"), "invalid domain"),
        (lambda b: b.add_account("Bad Name"), "invalid account name"),
        (lambda b: b.add_address("x@unknown.example", "you"), "not configured"),
        (lambda b: b.add_address("you@example.com", "other"), "already belongs"),
        (lambda b: b.add_address("team@example.com", "you"), "is an alias"),
        (lambda b: b.remove_domain("example.com"), "still has addresses"),
        (
            lambda b: (b.remove_alias("team@example.com"), b.remove_address("you@example.com")),
            "last address",
        ),
        (lambda b: b.remove_address("you@example.com"), "still a member"),
        (lambda b: b.add_alias_member("team@example.com", "you@example.com"), "already a member"),
        (lambda b: b.add_alias_member("team@example.com", "team@example.com"), "not an address"),
        (lambda b: b.add_alias_member("team@example.com", "x@elsewhere.example"), "configured"),
        (lambda b: b.remove_account("other"), "still a member"),
        (lambda b: b.add_address("a b@example.com", "you"), "not supported"),
    ],
)
def test_invalid_changes_are_refused(change, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DynamicError, match=message):
        change(sample())


def test_toml_round_trip() -> None:
    d = sample().build()
    assert from_toml(d.to_toml()) == d


def test_import_reports_every_problem() -> None:
    with pytest.raises(ConfigError) as e:
        from_toml(
            '[domains."x..y"]\n[accounts.ok]\naddresses = ["ok@nowhere.example"]\n'
            "[accounts.bad]\nquota = 1\ncolour = 3\n[extra]\n"
        )
    paths = {p.path for p in e.value.problems}
    assert paths == {"extra", "domains.x..y", "accounts.ok.addresses[0]", "accounts.bad"}


def test_login_names_are_exact_addresses_or_account_names() -> None:
    b = sample()
    b.add_address("@example.com", "other")  # a catch-all never logs in
    d = b.build()
    assert d.account_for_login("YOU@example.com") == "you"
    assert d.account_for_login("you") == "you"
    assert d.account_for_login("other@BÜCHER.example") == "other"
    assert d.account_for_login("@example.com") is None
    assert d.account_for_login("nobody@example.com") is None  # not via the catch-all
    assert d.account_for_login("you+tag@example.com") is None  # nor a subaddress
    assert d.account_for_login("team@example.com") is None  # nor an alias
    assert d.account_for_login("you@unknown.example") is None
    assert d.account_for_login("nobody") is None
