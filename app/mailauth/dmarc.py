"""DMARC: record parsing, policy discovery and evaluation (RFC 9989, and RFC 7489).

Two methods for finding the organizational domain and the policy record:
``"rfc9989"`` (the default; DMARCbis' DNS tree walk over ``_dmarc`` TXT records with
``psd=`` tags) and ``"rfc7489"`` (the Public Suffix List, as mox does). Every
function returns a result whose status is set; DNS trouble is ``temperror``.

Record syntax follows mox (which follows RFC 7489's ABNF): a tag with no ``=``,
duplicate tags, or a bad value of a known tag make the record invalid, except that
an invalid ``p``/``sp``/``np`` with a valid ``rua`` counts as ``p=none`` (RFC 7489
§6.6.3, RFC 9989 §4.10.1). Unknown tags are ignored. Under RFC 7489 ``p`` must
directly follow ``v``; RFC 9989 lifts that ordering rule.
"""

import asyncio
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from app.dns.domain import Domain
from app.dns.resolver import DNSError, InvalidName, NotFound, Resolver
from app.mailauth.publicsuffix import org_domain_psl

Method = Literal["rfc9989", "rfc7489"]

# RFC 9989 §4.10 step 4: names of 8 or more labels are shortened to 7 labels.
WALK_SHORTEN_AT = 8
WALK_SHORTEN_TO = 7


class Status(StrEnum):
    """DMARC result for Authentication-Results (RFC 7489 §11.2, RFC 8601 §2.7.?)."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class LookupStatus(StrEnum):
    """Outcome of policy discovery."""

    FOUND = "found"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class Policy(StrEnum):
    """Domain Owner Assessment Policy (``p``, ``sp``, ``np``)."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class Align(StrEnum):
    """Identifier alignment mode (``adkim``, ``aspf``)."""

    RELAXED = "r"
    STRICT = "s"


class RecordError(ValueError):
    """A DMARC record that is not valid."""


@dataclass(frozen=True, slots=True)
class URI:
    """A reporting URI with its optional RFC 7489 size limit (e.g. ``"10m"``)."""

    address: str
    max_size: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed ``v=DMARC1`` record with defaults applied."""

    policy: Policy = Policy.NONE
    subdomain_policy: Policy | None = None
    nonexistent_policy: Policy | None = None  # np, RFC 9989
    adkim: Align = Align.RELAXED
    aspf: Align = Align.RELAXED
    percentage: int = 100  # pct, RFC 7489 only
    failure_options: tuple[str, ...] = ("0",)
    report_formats: tuple[str, ...] = ("afrf",)  # rf, RFC 7489 only
    report_interval: int = 86400  # ri, RFC 7489 only
    rua: tuple[URI, ...] = ()
    ruf: tuple[URI, ...] = ()
    testing: bool = False  # t=y, RFC 9989
    psd: str = "u"  # RFC 9989: "y", "n" or "u"


_IS_DMARC = re.compile(r"[ \t]*[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|$)")
_TAG = re.compile(r"([A-Za-z]+)[ \t]*=[ \t]*([\t\x20-\x3a\x3c-\x7e]*)")
_KEYWORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*:[^,!\s]+)(?:!([0-9]+)([kKmMgGtT]?))?")
_FO = {"0", "1", "d", "s"}


def is_dmarc_record(text: str) -> bool:
    """Whether a TXT record claims to be DMARC (starts with ``v=DMARC1``)."""
    return _IS_DMARC.match(text) is not None


def _policy(value: str) -> Policy:
    try:
        return Policy(value.lower())
    except ValueError:
        raise RecordError(f"invalid policy {value!r}") from None


def _uris(value: str) -> tuple[URI, ...]:
    out = []
    for part in value.split(","):
        m = _URI.fullmatch(part.strip(" \t"))
        if m is None:
            raise RecordError(f"invalid uri {part.strip()!r}")
        size = ""
        if m.group(2) is not None:
            if int(m.group(2)) >= 2**63:
                raise RecordError("uri size limit too large")
            size = m.group(2) + m.group(3).lower()
        out.append(URI(m.group(1), size))
    return tuple(out)


def _uint(value: str, limit: int) -> int:
    if not value.isdigit() or not value.isascii() or int(value) > limit:
        raise RecordError(f"invalid number {value!r}")
    return int(value)


def _split_tags(text: str) -> list[tuple[str, str]]:
    if not is_dmarc_record(text):
        raise RecordError("not a dmarc record")
    parts = text.split(";")
    if len(parts) < 2:  # RFC 7489 §6.4 ABNF (as mox): "v=DMARC1" needs its ";"
        raise RecordError("missing ; after version")
    tags: list[tuple[str, str]] = []
    for i, raw in enumerate(parts[1:], 1):
        part = raw.strip(" \t")
        if not part:
            if i == len(parts) - 1:
                break  # a trailing ";" is allowed
            raise RecordError("empty tag")
        m = _TAG.fullmatch(part)
        if m is None:
            raise RecordError(f"invalid tag {part!r}")
        tags.append((m.group(1).lower(), m.group(2).rstrip(" \t")))
    return tags


def parse_record(text: str, *, strict_order: bool = True) -> Record:
    """Parse a DMARC record; raises :class:`RecordError`.

    ``strict_order``: RFC 7489 §6.4 requires ``p`` directly after ``v``; RFC 9989
    §4.7 allows any order.
    """
    tags = _split_tags(text)
    seen: set[str] = set()
    values: dict[str, object] = {}
    bad_policy = False
    for idx, (name, value) in enumerate(tags):
        if name in seen:
            raise RecordError(f"duplicate tag {name!r}")
        seen.add(name)
        if name == "p" and idx != 0 and strict_order:
            raise RecordError("p must directly follow v")
        if name in ("p", "sp", "np"):
            try:
                values[name] = _policy(value)
            except RecordError:
                bad_policy = True
        elif name in ("adkim", "aspf"):
            if value not in ("r", "s"):
                raise RecordError(f"invalid {name} {value!r}")
            values[name] = Align(value)
        elif name == "pct":
            values[name] = _uint(value, 100)
        elif name == "ri":
            values[name] = _uint(value, 2**32 - 1)
        elif name == "fo":
            opts = tuple(o.strip(" \t") for o in value.split(":"))
            if not all(o in _FO for o in opts):
                raise RecordError(f"invalid fo {value!r}")
            values[name] = opts
        elif name == "rf":
            fmts = tuple(f.strip(" \t") for f in value.split(":"))
            if not all(_KEYWORD.fullmatch(f) for f in fmts):
                raise RecordError(f"invalid rf {value!r}")
            values[name] = fmts
        elif name in ("rua", "ruf"):
            values[name] = _uris(value)
        elif name in ("t", "psd"):
            allowed = ("y", "n") if name == "t" else ("y", "n", "u")
            if value.lower() not in allowed:
                raise RecordError(f"invalid {name} {value!r}")
            values[name] = value.lower()
        # Unknown tags are ignored (RFC 7489 §6.3, RFC 9989 §4.7).
    if bad_policy or "p" not in values:
        # RFC 7489 §6.6.3, RFC 9989 §4.10.1: act as p=none when rua is usable.
        if not values.get("rua"):
            raise RecordError("no valid p tag and no rua")
        values["p"] = Policy.NONE
        values.pop("sp", None)
        values.pop("np", None)
    return Record(
        policy=values["p"],  # type: ignore[arg-type]
        subdomain_policy=values.get("sp"),  # type: ignore[arg-type]
        nonexistent_policy=values.get("np"),  # type: ignore[arg-type]
        adkim=values.get("adkim", Align.RELAXED),  # type: ignore[arg-type]
        aspf=values.get("aspf", Align.RELAXED),  # type: ignore[arg-type]
        percentage=values.get("pct", 100),  # type: ignore[arg-type]
        failure_options=values.get("fo", ("0",)),  # type: ignore[arg-type]
        report_formats=values.get("rf", ("afrf",)),  # type: ignore[arg-type]
        report_interval=values.get("ri", 86400),  # type: ignore[arg-type]
        rua=values.get("rua", ()),  # type: ignore[arg-type]
        ruf=values.get("ruf", ()),  # type: ignore[arg-type]
        testing=values.get("t") == "y",
        psd=values.get("psd", "u"),  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------------
# DNS


@dataclass(frozen=True, slots=True)
class _Fetched:
    status: LookupStatus
    record: Record | None = None
    text: str = ""
    authentic: bool = False
    reason: str = ""


async def _fetch(resolver: Resolver, domain: str, *, strict_order: bool) -> _Fetched:
    """The record at ``_dmarc.<domain>`` (RFC 7489 §6.6.3, RFC 9989 §4.10 steps 1-2)."""
    try:
        answer = await resolver.lookup_txt(f"_dmarc.{domain}")
    except (NotFound, InvalidName) as e:
        return _Fetched(LookupStatus.NONE, authentic=getattr(e, "authentic", False))
    except DNSError as e:
        return _Fetched(LookupStatus.TEMPERROR, reason=str(e))
    texts = [t for t in answer.records if is_dmarc_record(t)]
    if not texts:
        return _Fetched(LookupStatus.NONE, authentic=answer.authentic, reason="no dmarc record")
    if len(texts) > 1:  # multiple records: as if there were none
        return _Fetched(LookupStatus.NONE, authentic=answer.authentic, reason="multiple records")
    try:
        record = parse_record(texts[0], strict_order=strict_order)
    except RecordError as e:
        return _Fetched(LookupStatus.PERMERROR, None, texts[0], answer.authentic, str(e))
    return _Fetched(LookupStatus.FOUND, record, texts[0], answer.authentic)


def _walk_targets(domain: str) -> list[str]:
    """Names queried by a DNS tree walk starting at ``domain`` (RFC 9989 §4.10)."""
    labels = domain.split(".")
    out = [domain]
    n = len(labels)
    n = WALK_SHORTEN_TO if n >= WALK_SHORTEN_AT else n - 1  # step 4
    while n >= 1:  # step 7: down to the top-level domain
        out.append(".".join(labels[-n:]))
        n -= 1
    return out


@dataclass(frozen=True, slots=True)
class TreeWalk:
    """Valid records found by a tree walk, longest name first."""

    start: str
    records: tuple[tuple[str, _Fetched], ...]
    temperror: str = ""
    authentic: bool = True
    start_permerror: _Fetched | None = None

    @property
    def org_domain(self) -> str:
        """RFC 9989 §4.10.2 selection."""
        for name, f in self.records:
            assert f.record is not None
            if f.record.psd == "n":
                return name
            if f.record.psd == "y" and name != self.start:
                depth = name.count(".") + 2
                return ".".join(self.start.split(".")[-depth:])
        if self.records:
            return self.records[-1][0]  # fewest labels
        return self.start


async def tree_walk(resolver: Resolver, domain: str) -> TreeWalk:
    """Query ``_dmarc`` at ``domain`` and its parents (RFC 9989 §4.10).

    The queries are independent, so they are sent together; the answers are read in
    walk order and the walk stops at the first ``psd=y``/``psd=n`` record (steps 2, 6),
    as a sequential walk would. At most 8 queries.
    """
    targets = _walk_targets(domain)
    fetched = await asyncio.gather(*(_fetch(resolver, t, strict_order=False) for t in targets))
    found: list[tuple[str, _Fetched]] = []
    authentic = True
    first_perm = fetched[0] if fetched[0].status == LookupStatus.PERMERROR else None
    for name, f in zip(targets, fetched, strict=True):
        authentic = authentic and f.authentic
        if f.status == LookupStatus.TEMPERROR:
            return TreeWalk(domain, tuple(found), f.reason, False, first_perm)
        if f.status != LookupStatus.FOUND:
            continue
        found.append((name, f))
        assert f.record is not None
        if f.record.psd in ("y", "n"):
            break
    return TreeWalk(domain, tuple(found), "", authentic, first_perm)


@dataclass(frozen=True, slots=True)
class OrgDomain:
    """An organizational domain; ``temperror`` is set when DNS trouble prevented the
    walk, in which case ``domain`` is the input domain."""

    domain: str
    temperror: str = ""
    authentic: bool = False


def _ascii(domain: str | Domain) -> str:
    if isinstance(domain, Domain):
        return domain.ascii
    d = domain.strip().removesuffix(".")
    return d.lower() if d.isascii() else Domain.parse(d).ascii


async def org_domain_treewalk(resolver: Resolver, domain: str | Domain) -> OrgDomain:
    """RFC 9989 §4.10.2: organizational domain by DNS tree walk."""
    d = _ascii(domain)
    walk = await tree_walk(resolver, d)
    if walk.temperror:
        return OrgDomain(d, walk.temperror)
    return OrgDomain(walk.org_domain, "", walk.authentic)


@dataclass(frozen=True, slots=True)
class DMARCLookup:
    """Policy discovery result: ``domain`` holds the record (or is the From domain)."""

    status: LookupStatus
    record: Record | None
    domain: str
    org_domain: str
    authentic: bool = False
    text: str = ""
    reason: str = ""


async def lookup(
    resolver: Resolver, from_domain: str | Domain, *, method: Method = "rfc9989"
) -> DMARCLookup:
    """Find the DMARC policy record for a From domain (RFC 9989 §4.10.1 / RFC 7489 §6.6.3)."""
    d = _ascii(from_domain)
    if method == "rfc7489":
        return await _lookup_7489(resolver, d)
    walk = await tree_walk(resolver, d)
    if walk.start_permerror is not None:
        f = walk.start_permerror
        return DMARCLookup(LookupStatus.PERMERROR, None, d, d, f.authentic, f.text, f.reason)
    if walk.temperror:
        return DMARCLookup(LookupStatus.TEMPERROR, None, d, d, reason=walk.temperror)
    org = walk.org_domain
    found = dict(walk.records)
    # Preference: the Author Domain, its Organizational Domain, its PSD.
    pick = found.get(d) or found.get(org)
    if pick is None:
        psd = [(n, f) for n, f in walk.records if f.record is not None and f.record.psd == "y"]
        if psd:
            name, pick = psd[-1]
            return _found(name, org, pick, walk.authentic)
        return DMARCLookup(LookupStatus.NONE, None, d, org, walk.authentic)
    name = d if d in found else org
    return _found(name, org, pick, walk.authentic)


def _found(domain: str, org: str, f: _Fetched, authentic: bool) -> DMARCLookup:
    return DMARCLookup(LookupStatus.FOUND, f.record, domain, org, authentic, f.text)


async def _lookup_7489(resolver: Resolver, d: str) -> DMARCLookup:
    org = org_domain_psl(d)
    f = await _fetch(resolver, d, strict_order=True)
    if f.status == LookupStatus.NONE and org != d:  # RFC 7489 §6.6.3 step 3
        g = await _fetch(resolver, org, strict_order=True)
        if g.status != LookupStatus.NONE:
            return DMARCLookup(g.status, g.record, org, org, g.authentic, g.text, g.reason)
    return DMARCLookup(f.status, f.record, d, org, f.authentic, f.text, f.reason)


# ---------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True, slots=True)
class DMARCResult:
    """A DMARC evaluation.

    ``status`` goes into Authentication-Results. ``policy`` is the published policy
    that applies to the From domain (p, sp or np). ``reject``/``quarantine`` are the
    decision after sampling (``pct``, RFC 7489 method only) and test mode (``t=y``,
    RFC 9989 method): at most one is true, and never unless ``status`` is fail.
    """

    status: Status
    domain: str  # where the record was found, or the From domain
    org_domain: str
    from_domain: str
    record: Record | None = None
    policy: Policy | None = None
    reject: bool = False
    quarantine: bool = False
    aligned_spf: bool = False
    aligned_dkim: bool = False
    sampled_out: bool = False
    testing: bool = False
    authentic: bool = False
    reason: str = ""


async def _author_exists(resolver: Resolver, domain: str) -> bool:
    """RFC 9989 §3.2.?: a domain is non-existent when A, AAAA and MX are NXDOMAIN."""
    results = await asyncio.gather(
        resolver.query(domain, "A"), resolver.query(domain, "AAAA"),
        resolver.query(domain, "MX"), return_exceptions=True,
    )  # fmt: skip
    return not all(isinstance(r, NotFound) and r.nxdomain for r in results)


async def _applicable_policy(
    resolver: Resolver, lk: DMARCLookup, from_domain: str, method: Method
) -> Policy:
    rec = lk.record
    assert rec is not None
    if lk.domain == from_domain:
        return rec.policy
    np = rec.nonexistent_policy if method == "rfc9989" else None
    sp = rec.subdomain_policy
    applies = np is not None and np != (sp or rec.policy)
    if applies and np is not None and not await _author_exists(resolver, from_domain):
        return np  # RFC 9989 §4.10.1: np for non-existent subdomains
    return sp or rec.policy


class _Aligner:
    """Alignment checks with the organizational domains cached per evaluation."""

    def __init__(self, resolver: Resolver, method: Method, from_domain: str, org: str) -> None:
        self.resolver = resolver
        self.method = method
        self.from_domain = from_domain
        self.cache: dict[str, OrgDomain] = {from_domain: OrgDomain(org)}
        self.temperror = ""

    async def org(self, domain: str) -> str:
        if domain not in self.cache:
            if self.method == "rfc7489":
                self.cache[domain] = OrgDomain(org_domain_psl(domain))
            else:
                self.cache[domain] = await org_domain_treewalk(self.resolver, domain)
        got = self.cache[domain]
        if got.temperror:
            self.temperror = got.temperror
        return got.domain

    async def aligned(self, domain: str, mode: Align) -> bool:
        """RFC 7489 §3.1, RFC 9989 §4.4: strict is equality, relaxed same org domain."""
        if domain == self.from_domain:
            return True
        if mode == Align.STRICT:
            return False
        return await self.org(domain) == await self.org(self.from_domain)


async def verify(
    resolver: Resolver,
    from_domain: str | Domain,
    *,
    spf_status: str,
    spf_domain: str | Domain | None,
    dkim_pass_domains: Sequence[str | Domain] = (),
    dkim_temperror: bool = False,
    method: Method = "rfc9989",
    rng: random.Random | None = None,
) -> DMARCResult:
    """Evaluate DMARC for a message (RFC 9989 §4.10 / RFC 7489 §6.6).

    ``spf_status``/``spf_domain`` are the SPF result and the domain it was for (the
    MAIL FROM domain, or HELO for the null sender); ``dkim_pass_domains`` the ``d=``
    of signatures that verified; ``dkim_temperror`` whether any signature check
    failed temporarily. ``rng`` draws the ``pct`` sample (RFC 7489 method only).
    """
    d = _ascii(from_domain)
    lk = await lookup(resolver, d, method=method)
    base = DMARCResult(
        Status.NONE, lk.domain, lk.org_domain, d, authentic=lk.authentic, reason=lk.reason
    )
    if lk.status != LookupStatus.FOUND or lk.record is None:
        status = {
            LookupStatus.NONE: Status.NONE,
            LookupStatus.TEMPERROR: Status.TEMPERROR,
            LookupStatus.PERMERROR: Status.PERMERROR,
        }[lk.status]
        return replace(base, status=status)
    rec = lk.record
    policy = await _applicable_policy(resolver, lk, d, method)
    al = _Aligner(resolver, method, d, lk.org_domain)
    spf_ok = False
    if spf_status == "pass" and spf_domain is not None:
        spf_ok = await al.aligned(_ascii(spf_domain), rec.aspf)
    dkim_ok = False
    for dk in dkim_pass_domains:
        if await al.aligned(_ascii(dk), rec.adkim):
            dkim_ok = True
            break
    base = replace(base, record=rec, policy=policy)
    if spf_ok or dkim_ok:  # RFC 7489 §6.6.2, RFC 9989 §4.4: one aligned pass suffices
        return replace(base, status=Status.PASS, aligned_spf=spf_ok, aligned_dkim=dkim_ok)
    if spf_status == "temperror" or dkim_temperror or al.temperror:
        reason = al.temperror or "spf or dkim temporary error"
        return replace(base, status=Status.TEMPERROR, reason=reason)
    testing = method == "rfc9989" and rec.testing  # RFC 9989 §4.7 t=y: do not apply
    sampled_out = False
    if method == "rfc7489" and rec.percentage < 100:  # RFC 7489 §6.6.4 sampling
        sampled_out = (rng or random.Random()).randrange(100) >= rec.percentage
    enforce = not testing and not sampled_out
    return replace(
        base,
        status=Status.FAIL,
        reject=enforce and policy == Policy.REJECT,
        quarantine=enforce and policy == Policy.QUARANTINE,
        sampled_out=sampled_out,
        testing=testing,
    )


__all__ = [
    "URI",
    "Align",
    "DMARCLookup",
    "DMARCResult",
    "LookupStatus",
    "Method",
    "OrgDomain",
    "Policy",
    "Record",
    "RecordError",
    "Status",
    "TreeWalk",
    "is_dmarc_record",
    "lookup",
    "org_domain_treewalk",
    "parse_record",
    "tree_walk",
    "verify",
]
