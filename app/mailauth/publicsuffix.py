"""Public Suffix List and the RFC 7489 organizational domain.

The list ships as package data (``data/public_suffix_list.dat``, both the ICANN and
the PRIVATE sections, as mox uses it) and is parsed once, on first use. Rules are
kept in A-label form; names may be given with A-labels or U-labels and results keep
the form of the input (lower-cased). The DMARCbis alternative, a DNS tree walk, is
:func:`app.mailauth.dmarc.org_domain_treewalk`.
"""

import functools
from dataclasses import dataclass

from app.dns.domain import Domain, DomainError


def _alabel(label: str) -> str:
    if label.isascii():
        return label.lower()
    try:
        return Domain.parse(label).ascii
    except DomainError:
        return label.lower()


@dataclass(frozen=True, slots=True)
class PublicSuffixList:
    """Parsed rules (https://publicsuffix.org/list/ format), names in A-labels."""

    rules: frozenset[str]
    wildcards: frozenset[str]  # "*.foo" stored as "foo"
    exceptions: frozenset[str]  # "!www.foo" stored as "www.foo"

    @classmethod
    def parse(cls, text: str) -> "PublicSuffixList":
        rules: set[str] = set()
        wildcards: set[str] = set()
        exceptions: set[str] = set()
        for line in text.splitlines():
            rule = line.strip().split(maxsplit=1)[0] if line.strip() else ""
            if not rule or rule.startswith("//"):
                continue
            if rule.startswith("!"):
                target, name = exceptions, rule[1:]
            elif rule.startswith("*."):
                target, name = wildcards, rule[2:]
            else:
                target, name = rules, rule
            target.add(".".join(_alabel(lab) for lab in name.split(".")))
        return cls(frozenset(rules), frozenset(wildcards), frozenset(exceptions))

    def suffix_length(self, labels: list[str]) -> int:
        """Number of trailing ``labels`` (A-labels) that form the public suffix."""
        n = len(labels)
        for i in range(n):  # longest candidate first
            cand = ".".join(labels[i:])
            if cand in self.exceptions:  # an exception rule prevails (PSL algorithm)
                return n - i - 1
            if cand in self.rules or (i + 1 < n and ".".join(labels[i + 1 :]) in self.wildcards):
                return n - i
        return 1  # the implicit "*" rule

    def registrable_domain(self, name: str | None) -> str | None:
        """The public suffix plus one label; None for a public suffix or bad input."""
        if not name or name.startswith("."):
            return None
        labels = name.removesuffix(".").lower().split(".")
        if any(not lab for lab in labels):
            return None
        n = self.suffix_length([_alabel(lab) for lab in labels])
        if len(labels) <= n:
            return None
        return ".".join(labels[-(n + 1) :])


@functools.cache
def default_list() -> PublicSuffixList:
    """The shipped list, parsed once (immutable afterwards)."""
    import importlib.resources

    ref = importlib.resources.files("app.mailauth").joinpath("data/public_suffix_list.dat")
    return PublicSuffixList.parse(ref.read_text(encoding="utf-8"))


def registrable_domain(name: str | None) -> str | None:
    """Registrable domain per the shipped list (``None`` for a public suffix)."""
    return default_list().registrable_domain(name)


def org_domain_psl(domain: str | Domain) -> str:
    """RFC 7489 §3.2 organizational domain (A-labels); the domain itself when it is a
    public suffix (so that it aligns only with itself)."""
    d = domain.ascii if isinstance(domain, Domain) else domain.removesuffix(".").lower()
    return registrable_domain(d) or d


__all__ = ["PublicSuffixList", "default_list", "org_domain_psl", "registrable_domain"]
