"""SPF: Sender Policy Framework (RFC 7208) evaluation and the Received-SPF header.

:func:`check_host` is the RFC 7208 §4 function; :func:`verify` picks the identity
(MAIL FROM, or HELO for the null sender, §2.4) and calls it. A result always has a
status: DNS trouble is ``temperror`` and a bad record ``permerror``, never an
exception. :func:`parse_record` is public for tools that show a domain's policy.

Lookups inside one mechanism (the address lookups of ``mx`` and ``ptr`` names) run
concurrently; results are consumed in record order, so counting and error
precedence are those of a sequential evaluation (RFC 7208 §4.6.4).
"""

import asyncio
import ipaddress
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from app.dns.resolver import DNSError, InvalidName, NotFound, Resolver, TempError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_LOOKUPS = 10  # RFC 7208 §4.6.4: terms that cause DNS queries
MAX_VOID_LOOKUPS = 2  # RFC 7208 §4.6.4: lookups returning no records
MAX_NAMES = 10  # RFC 7208 §4.6.4: MX hosts / PTR names per mechanism


class Status(StrEnum):
    """RFC 7208 §2.6 results."""

    NONE = "none"
    NEUTRAL = "neutral"
    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class Identity(StrEnum):
    """Which identity was checked (RFC 7208 §2.3, §2.4)."""

    MAILFROM = "mailfrom"
    HELO = "helo"


@dataclass(frozen=True, slots=True)
class SPFResult:
    """The outcome of check_host().

    ``domain`` is the domain whose policy was evaluated first (ASCII, no trailing
    dot); ``mechanism`` the directive that matched (``"default"`` when none did);
    ``explanation`` is set for ``fail`` only (RFC 7208 §6.2); ``reason`` says what
    went wrong for errors; ``record`` is the policy text of ``domain``.
    """

    status: Status
    domain: str
    mechanism: str = ""
    explanation: str = ""
    reason: str = ""
    record: str = ""


class Verified(NamedTuple):
    """Result of :func:`verify`: the result, the identity checked and its domain."""

    result: SPFResult
    identity: Identity
    domain: str


class SPFSyntaxError(ValueError):
    """A policy record that does not follow RFC 7208 §4.6 / §12 syntax."""


# ---------------------------------------------------------------------------
# Record syntax (RFC 7208 §4.6, §5, §6, §7.1, §12)


@dataclass(frozen=True, slots=True)
class Directive:
    """One mechanism with its qualifier (RFC 7208 §4.6.2)."""

    qualifier: str  # "+", "-", "~" or "?"
    mechanism: str  # lower-case name
    domain_spec: str | None = None
    network: Network | None = None
    cidr4: int | None = None
    cidr6: int | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    """A parsed ``v=spf1`` record."""

    directives: tuple[Directive, ...]
    redirect: str | None = None
    exp: str | None = None
    text: str = ""


_QUALIFIERS = {"+": Status.PASS, "-": Status.FAIL, "~": Status.SOFTFAIL, "?": Status.NEUTRAL}
_MECHANISMS = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"}
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9\-_.]*)=(.*)", re.S)
_MECH = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9\-_.]*)(.*)", re.S)
# RFC 7208 §5.6: ip4-cidr-length / ip6-cidr-length, no leading zeros.
_CIDR_NUM = r"(?:0|[1-9][0-9]{0,2})"
_DUAL_CIDR = re.compile(rf"(?::(?P<d>.+?))?(?:/(?P<v4>{_CIDR_NUM}))?(?://(?P<v6>{_CIDR_NUM}))?")
_TOPLABEL = re.compile(r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9\-]*[A-Za-z0-9]")
_DELIMS = ".-+,/_="
_MACRO_LETTERS = "slodiphv"
_EXP_LETTERS = "crt"  # RFC 7208 §7.2: only in explanation strings
_MACRO_EXPAND = re.compile(r"\{([A-Za-z])([0-9]*)([rR]?)([.\-+,/_=]*)\}")


def is_spf_record(text: str) -> bool:
    """RFC 7208 §4.5: the version is "v=spf1" followed by a space or the end."""
    head = text[:7].lower()
    return head == "v=spf1" or head == "v=spf1 "


@dataclass(frozen=True, slots=True)
class _Macro:
    letter: str  # lower case
    upper: bool
    digits: int | None
    reverse: bool
    delimiters: str


_Token = str | _Macro


def _scan(text: str, *, exp: bool) -> tuple[list[_Token], str]:
    """Tokens of a macro-string (RFC 7208 §7.1) and the literal text after its last
    macro-expand (for the domain-end rule); raises SPFSyntaxError."""
    out: list[_Token] = []
    i, n = 0, len(text)
    lit: list[str] = []
    tail_start = 0
    while i < n:
        c = text[i]
        if c != "%":
            if not exp and not (0x21 <= ord(c) <= 0x7E):
                raise SPFSyntaxError(f"invalid character {c!r} in domain-spec")
            lit.append(c)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in ("%", "_", "-"):  # RFC 7208 §7.1: %% %_ %-
            lit.append({"%": "%", "_": " ", "-": "%20"}[nxt])
            i += 2
            tail_start = i
            continue
        if nxt != "{":
            raise SPFSyntaxError(f"invalid macro at {text[i:]!r}")
        if lit:
            out.append("".join(lit))
            lit = []
        m = _MACRO_EXPAND.match(text, i + 1)
        if m is None:
            raise SPFSyntaxError(f"invalid macro at {text[i:]!r}")
        letter = m.group(1)
        low = letter.lower()
        if low not in _MACRO_LETTERS and not (exp and low in _EXP_LETTERS):
            raise SPFSyntaxError(f"macro letter {letter!r} not allowed here")
        digits = int(m.group(2)) if m.group(2) else None
        if digits == 0:  # RFC 7208 §7.1: transformer digits are nonzero
            raise SPFSyntaxError("zero digits in macro transformer")
        out.append(_Macro(low, letter.isupper(), digits, bool(m.group(3)), m.group(4)))
        i = tail_start = m.end()
    if lit:
        out.append("".join(lit))
    return out, text[tail_start:]


def check_domain_spec(spec: str) -> list[_Token]:
    """Validate a domain-spec (RFC 7208 §7.1: macro-string domain-end); its tokens."""
    if not spec:
        raise SPFSyntaxError("empty domain-spec")
    tokens, tail = _scan(spec, exp=False)
    if not tail:
        return tokens  # domain-end is a macro-expand
    literal = tail.removesuffix(".")
    dot = literal.rfind(".")
    if dot < 0 or not _TOPLABEL.fullmatch(literal[dot + 1 :]):
        raise SPFSyntaxError(f"domain-spec {spec!r} does not end in a valid top label")
    return tokens


def _parse_cidr(value: str | None, limit: int) -> int | None:
    if value is None:
        return None
    n = int(value)
    if n > limit:
        raise SPFSyntaxError(f"cidr length {n} above {limit}")
    return n


def _parse_directive(term: str) -> Directive:
    m = _MECH.fullmatch(term)
    if m is None:
        raise SPFSyntaxError(f"invalid term {term!r}")
    qualifier, name, rest = m.group(1) or "+", m.group(2).lower(), m.group(3)
    if name not in _MECHANISMS:
        raise SPFSyntaxError(f"unknown mechanism {m.group(2)!r}")
    if name == "all":
        if rest:
            raise SPFSyntaxError(f"invalid term {term!r}")
        return Directive(qualifier, name, text=term)
    if name in ("include", "exists"):
        if not rest.startswith(":"):
            raise SPFSyntaxError(f"{name} needs a domain-spec")
        check_domain_spec(rest[1:])
        return Directive(qualifier, name, rest[1:], text=term)
    if name == "ptr":
        spec = None
        if rest:
            if not rest.startswith(":"):
                raise SPFSyntaxError(f"invalid term {term!r}")
            spec = rest[1:]
            check_domain_spec(spec)
        return Directive(qualifier, name, spec, text=term)
    if name in ("a", "mx"):
        cm = _DUAL_CIDR.fullmatch(rest)
        if cm is None:
            raise SPFSyntaxError(f"invalid term {term!r}")
        spec = cm.group("d")
        if rest.startswith(":") and spec is None:
            raise SPFSyntaxError(f"empty domain-spec in {term!r}")
        if spec is not None:
            check_domain_spec(spec)
        c4 = _parse_cidr(cm.group("v4"), 32)
        c6 = _parse_cidr(cm.group("v6"), 128)
        return Directive(qualifier, name, spec, cidr4=c4, cidr6=c6, text=term)
    # ip4 / ip6 (RFC 7208 §5.6)
    if not rest.startswith(":"):
        raise SPFSyntaxError(f"{name} needs an address")
    addr, slash, length = rest[1:].partition("/")
    limit = 32 if name == "ip4" else 128
    if slash and not re.fullmatch(_CIDR_NUM, length):
        raise SPFSyntaxError(f"invalid cidr length in {term!r}")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise SPFSyntaxError(f"invalid address in {term!r}") from None
    if (name == "ip4") != (ip.version == 4):
        raise SPFSyntaxError(f"wrong address family in {term!r}")
    bits = _parse_cidr(length, limit) if slash else limit
    network = ipaddress.ip_network(f"{ip}/{bits}", strict=False)
    return Directive(qualifier, name, network=network, text=term)


def parse_record(text: str) -> Record:
    """Parse a ``v=spf1`` record; raises :class:`SPFSyntaxError` (RFC 7208 §4.6)."""
    if not is_spf_record(text):
        raise SPFSyntaxError("not an spf record")
    if not text.isascii():  # RFC 7208 §3.1: records are 7-bit ASCII
        raise SPFSyntaxError("non-ascii characters in record")
    directives: list[Directive] = []
    redirect: str | None = None
    exp: str | None = None
    # RFC 7208 §4.6.1: terms are separated by spaces (and only spaces).
    for term in text[6:].split(" "):
        if not term:
            continue
        mod = _MODIFIER.fullmatch(term)
        if mod is not None:
            name, value = mod.group(1).lower(), mod.group(2)
            if name in ("redirect", "exp"):
                # RFC 7208 §6: each at most once; value is a domain-spec.
                if (redirect if name == "redirect" else exp) is not None:
                    raise SPFSyntaxError(f"duplicate {name} modifier")
                check_domain_spec(value)
                if name == "redirect":
                    redirect = value
                else:
                    exp = value
            else:
                _scan(value, exp=False)  # RFC 7208 §6: unknown-modifier
            continue
        directives.append(_parse_directive(term))
    return Record(tuple(directives), redirect, exp, text)


# ---------------------------------------------------------------------------
# Evaluation


class _Abort(Exception):
    """Ends evaluation of a record with a temperror or permerror."""

    def __init__(self, status: Status, reason: str, mechanism: str = "") -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.mechanism = mechanism


@dataclass(slots=True)
class _Context:
    resolver: Resolver
    ip: IPAddress
    local: str
    sender_domain: str
    helo: str
    receiver: str
    now: float
    default_explanation: str
    lookups: int = 0
    voids: int = 0
    ptr_cache: dict[str, str] = field(default_factory=dict)

    def count_lookup(self, what: str) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:  # RFC 7208 §4.6.4
            raise _Abort(Status.PERMERROR, "too many dns lookups", what)

    def count_void(self, what: str) -> None:
        self.voids += 1
        if self.voids > MAX_VOID_LOOKUPS:  # RFC 7208 §4.6.4
            raise _Abort(Status.PERMERROR, "too many void lookups", what)


def _ip_text_for_macro(ip: IPAddress) -> str:
    if ip.version == 4:
        return str(ip)
    # RFC 7208 §7.3: dot-separated nibbles for IPv6.
    return ".".join(ip.exploded.replace(":", ""))


def _unmap(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


async def _validated_name(ctx: _Context, domain: str) -> str:
    """The %{p} value (RFC 7208 §7.3): a validated PTR name, preferring ``domain``."""
    if domain in ctx.ptr_cache:
        return ctx.ptr_cache[domain]
    try:
        names = list((await ctx.resolver.lookup_ptr(ctx.ip)).records)[:MAX_NAMES]
    except DNSError:
        return "unknown"
    checks = await asyncio.gather(*(_has_address(ctx, n) for n in names))
    valid = [n.removesuffix(".") for n, ok in zip(names, checks, strict=True) if ok]
    best = "unknown"  # RFC 7208 §7.3: "unknown" when there is no validated name
    for pick in (
        lambda n: n == domain,
        lambda n: n.endswith("." + domain),
        lambda n: True,
    ):
        found = [n for n in valid if pick(n)]
        if found:
            best = found[0]
            break
    ctx.ptr_cache[domain] = best
    return best


async def _expand(ctx: _Context, tokens: list[_Token], domain: str) -> str:
    """Expand macro tokens (RFC 7208 §7.3, §7.4)."""
    out: list[str] = []
    for tok in tokens:
        if isinstance(tok, str):
            out.append(tok)
            continue
        letter = tok.letter
        if letter == "s":
            value = f"{ctx.local}@{ctx.sender_domain}"
        elif letter == "l":
            value = ctx.local
        elif letter == "o":
            value = ctx.sender_domain
        elif letter == "d":
            value = domain
        elif letter == "i":
            value = _ip_text_for_macro(ctx.ip)
        elif letter == "p":
            value = await _validated_name(ctx, domain)
        elif letter == "v":
            value = "in-addr" if ctx.ip.version == 4 else "ip6"
        elif letter == "h":
            value = ctx.helo
        elif letter == "c":
            value = str(ctx.ip)
        elif letter == "r":
            value = ctx.receiver
        else:  # "t"
            value = str(int(ctx.now))
        if tok.digits is not None or tok.reverse or tok.delimiters:
            parts = re.split("[" + re.escape(tok.delimiters or ".") + "]", value)
            if tok.reverse:
                parts.reverse()
            if tok.digits is not None:
                parts = parts[-tok.digits :]
            value = ".".join(parts)
        if tok.upper:  # RFC 7208 §7.3: uppercase macros are URL-escaped
            value = urllib.parse.quote(value, safe="-._~")
        out.append(value)
    return "".join(out)


async def _target(ctx: _Context, spec: str | None, domain: str) -> str:
    """The <target-name> of a mechanism: expanded domain-spec or the current domain."""
    if spec is None:
        return domain
    name = await _expand(ctx, check_domain_spec(spec), domain)
    name = name.removesuffix(".").lower()  # RFC 4343: names compare case-insensitively
    # RFC 7208 §7.3: shorten an over-long expansion from the left.
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name


def _matches(ctx: _Context, addrs: Sequence[IPAddress], d: Directive) -> bool:
    """RFC 7208 §5.3, §5.4: address comparison with the dual-cidr lengths."""
    bits = (d.cidr4 if d.cidr4 is not None else 32) if ctx.ip.version == 4 else d.cidr6
    if bits is None:
        bits = 128
    net = ipaddress.ip_network(f"{ctx.ip}/{bits}", strict=False)
    return any(a.version == ctx.ip.version and a in net for a in addrs)


async def _addresses(ctx: _Context, name: str) -> tuple[IPAddress, ...] | None:
    """A or AAAA records (the client's family, RFC 7208 §5.3); None when void."""
    try:
        if ctx.ip.version == 4:
            return (await ctx.resolver.lookup_a(name)).records
        return (await ctx.resolver.lookup_aaaa(name)).records
    except NotFound:
        return None
    except InvalidName:
        # RFC 7208 §4.3 by analogy: a name DNS cannot carry does not exist.
        return None


async def _has_address(ctx: _Context, name: str) -> bool:
    try:
        addrs = await _addresses(ctx, name)
    except DNSError:
        return False
    return addrs is not None and ctx.ip in addrs


async def _mech_a(ctx: _Context, d: Directive, domain: str) -> bool:
    name = await _target(ctx, d.domain_spec, domain)
    try:
        addrs = await _addresses(ctx, name)
    except TempError as e:
        raise _Abort(Status.TEMPERROR, str(e), d.text) from None
    if addrs is None:
        ctx.count_void(d.text)
        return False
    return _matches(ctx, addrs, d)


async def _mech_mx(ctx: _Context, d: Directive, domain: str) -> bool:
    name = await _target(ctx, d.domain_spec, domain)
    try:
        mxs = sorted((await ctx.resolver.lookup_mx(name)).records, key=lambda m: m.preference)
    except (NotFound, InvalidName):
        ctx.count_void(d.text)
        return False
    except TempError as e:
        raise _Abort(Status.TEMPERROR, str(e), d.text) from None
    hosts = [m.host for m in mxs if m.host != "."]  # RFC 7505 null MX: nothing
    # Address lookups of the hosts run concurrently; results are taken in order.
    tasks = [asyncio.ensure_future(_addresses_or_error(ctx, h)) for h in hosts[:MAX_NAMES]]
    try:
        for task in tasks:
            addrs = await task
            if isinstance(addrs, TempError):
                raise _Abort(Status.TEMPERROR, str(addrs), d.text)
            if addrs is None:
                ctx.count_void(d.text)
                continue
            if _matches(ctx, addrs, d):
                return True
    finally:
        for task in tasks:
            task.cancel()
    if len(hosts) > MAX_NAMES:  # RFC 7208 §4.6.4: more than 10 MX names
        raise _Abort(Status.PERMERROR, "more than 10 mx names", d.text)
    return False


async def _addresses_or_error(ctx: _Context, name: str) -> tuple[IPAddress, ...] | TempError | None:
    try:
        return await _addresses(ctx, name)
    except TempError as e:
        return e


async def _mech_ptr(ctx: _Context, d: Directive, domain: str) -> bool:
    target = await _target(ctx, d.domain_spec, domain)
    try:
        names = (await ctx.resolver.lookup_ptr(ctx.ip)).records
    except NotFound:
        ctx.count_void(d.text)
        return False
    except DNSError:
        return False  # RFC 7208 §5.5: a DNS error makes the mechanism not match
    # RFC 7208 §4.6.4: only the first 10 PTR names are considered.
    candidates = [
        n.removesuffix(".")
        for n in names[:MAX_NAMES]
        if n.removesuffix(".") == target or n.removesuffix(".").endswith("." + target)
    ]
    checks = await asyncio.gather(*(_has_address(ctx, n) for n in candidates))
    return any(checks)


async def _mech_exists(ctx: _Context, d: Directive, domain: str) -> bool:
    name = await _target(ctx, d.domain_spec, domain)
    try:
        await ctx.resolver.lookup_a(name)  # RFC 7208 §5.7: always an A query
    except (NotFound, InvalidName):
        ctx.count_void(d.text)
        return False
    except TempError as e:
        raise _Abort(Status.TEMPERROR, str(e), d.text) from None
    return True


async def _mech_include(ctx: _Context, d: Directive, domain: str) -> bool:
    name = await _target(ctx, d.domain_spec, domain)
    sub = await _check(ctx, name)
    # RFC 7208 §5.2 table.
    if sub.status == Status.PASS:
        return True
    if sub.status == Status.TEMPERROR:
        raise _Abort(Status.TEMPERROR, f"include {name}: {sub.reason}", d.text)
    if sub.status in (Status.PERMERROR, Status.NONE):
        raise _Abort(Status.PERMERROR, f"include {name}: {sub.status} {sub.reason}", d.text)
    return False


_Evaluator = Callable[[_Context, Directive, str], Awaitable[bool]]
_EVALUATORS: dict[str, _Evaluator] = {
    "a": _mech_a,
    "mx": _mech_mx,
    "ptr": _mech_ptr,
    "exists": _mech_exists,
    "include": _mech_include,
}


def _mech_ip(ctx: _Context, d: Directive) -> bool:
    assert d.network is not None
    return ctx.ip.version == d.network.version and ctx.ip in d.network


async def _lookup_record(resolver: Resolver, domain: str) -> tuple[Status | None, str, str]:
    """RFC 7208 §4.4, §4.5: (status when there is no usable record, record, reason)."""
    try:
        txts = (await resolver.lookup_txt(domain)).records
    except NotFound:
        return Status.NONE, "", "no txt records"
    except InvalidName as e:
        return Status.NONE, "", str(e)
    except DNSError as e:
        return Status.TEMPERROR, "", str(e)
    records = [t for t in txts if is_spf_record(t)]
    if not records:
        return Status.NONE, "", "no spf record"
    if len(records) > 1:
        return Status.PERMERROR, "", "multiple spf records"
    return None, records[0], ""


async def _explanation(ctx: _Context, record: Record, domain: str) -> str:
    """RFC 7208 §6.2: the explanation for a fail, or the default on any trouble."""
    if record.exp is None:
        return ctx.default_explanation
    try:
        name = await _target(ctx, record.exp, domain)
        txts = (await ctx.resolver.lookup_txt(name)).records
        if len(txts) != 1 or not txts[0].isascii():
            return ctx.default_explanation
        return await _expand(ctx, _scan(txts[0], exp=True)[0], domain)
    except (DNSError, SPFSyntaxError, _Abort):
        return ctx.default_explanation


async def _evaluate(ctx: _Context, record: Record, domain: str) -> SPFResult:
    for d in record.directives:
        if d.mechanism == "all":
            match = True
        elif d.mechanism in ("ip4", "ip6"):
            match = _mech_ip(ctx, d)
        else:
            ctx.count_lookup(d.text)
            match = await _EVALUATORS[d.mechanism](ctx, d, domain)
        if not match:
            continue
        status = _QUALIFIERS[d.qualifier]
        expl = await _explanation(ctx, record, domain) if status == Status.FAIL else ""
        return SPFResult(status, domain, d.text, expl, record=record.text)
    if record.redirect is not None:  # RFC 7208 §6.1
        ctx.count_lookup("redirect")
        name = await _target(ctx, record.redirect, domain)
        sub = await _check(ctx, name)
        if sub.status == Status.NONE:
            return SPFResult(
                Status.PERMERROR, domain, "redirect", reason=f"redirect {name}: {sub.reason}",
                record=record.text,
            )  # fmt: skip
        # RFC 7208 §6.2: the explanation of the redirect target is used.
        return SPFResult(
            sub.status, domain, sub.mechanism, sub.explanation, sub.reason, record.text
        )
    return SPFResult(Status.NEUTRAL, domain, "default", record=record.text)  # RFC 7208 §4.7


async def _check(ctx: _Context, domain: str) -> SPFResult:
    status, text, reason = await _lookup_record(ctx.resolver, domain)
    if status is not None:
        return SPFResult(status, domain, reason=reason)
    try:
        record = parse_record(text)
    except SPFSyntaxError as e:  # RFC 7208 §4.6: any syntax error is a permerror
        return SPFResult(Status.PERMERROR, domain, reason=str(e), record=text)
    try:
        return await _evaluate(ctx, record, domain)
    except _Abort as e:
        return SPFResult(e.status, domain, e.mechanism, reason=e.reason, record=text)
    except SPFSyntaxError as e:
        return SPFResult(Status.PERMERROR, domain, reason=str(e), record=text)


def valid_domain(domain: str) -> bool:
    """RFC 7208 §4.3: a fully qualified domain name that DNS can carry."""
    d = domain.removesuffix(".")
    if not d or len(d) > 253 or not d.isascii():
        return False
    labels = d.split(".")
    return len(labels) >= 2 and all(0 < len(lab) <= 63 for lab in labels)


def _ascii_domain(domain: str) -> str:
    d = domain.strip().removesuffix(".")
    if d and not d.isascii():
        from app.dns.domain import Domain, DomainError

        try:
            return Domain.parse(d).ascii
        except DomainError:
            return d
    return d.lower()


def split_sender(sender: str, fallback_domain: str = "") -> tuple[str, str]:
    """(local-part, domain) of a sender; local-part "postmaster" when empty (§4.3)."""
    local, at, dom = sender.rpartition("@")
    if not at:
        local, dom = "", sender
    return (local or "postmaster"), _ascii_domain(dom or fallback_domain)


async def check_host(
    resolver: Resolver,
    ip: str | IPAddress,
    domain: str,
    sender: str,
    helo: str,
    *,
    receiver_host: str = "unknown",
    default_explanation: str = "",
    now: float | None = None,
) -> SPFResult:
    """RFC 7208 §4: evaluate ``domain``'s policy for a message from ``ip``.

    ``sender`` is the MAIL FROM address (or ``postmaster@HELO`` for the HELO
    identity); ``receiver_host`` feeds the ``%{r}`` macro; ``default_explanation``
    is used for ``fail`` when the domain gives no explanation of its own.
    """
    addr = _unmap(ipaddress.ip_address(ip) if isinstance(ip, str) else ip)
    d = _ascii_domain(domain)
    local, sender_domain = split_sender(sender, d)
    if not valid_domain(d):  # RFC 7208 §4.3
        return SPFResult(Status.NONE, d, reason="not a valid domain name")
    ctx = _Context(
        resolver, addr, local, sender_domain, helo, receiver_host,
        time.time() if now is None else now, default_explanation,
    )  # fmt: skip
    return await _check(ctx, d)


async def verify(
    resolver: Resolver,
    ip: str | IPAddress,
    mail_from: str,
    helo: str,
    *,
    receiver_host: str = "unknown",
    default_explanation: str = "",
) -> Verified:
    """Check the MAIL FROM identity, or HELO for the null sender (RFC 7208 §2.4)."""
    if mail_from:
        local, dom = split_sender(mail_from)
        r = await check_host(
            resolver, ip, dom, f"{local}@{dom}", helo,
            receiver_host=receiver_host, default_explanation=default_explanation,
        )  # fmt: skip
        return Verified(r, Identity.MAILFROM, r.domain)
    dom = _ascii_domain(helo)
    r = await check_host(
        resolver, ip, dom, f"postmaster@{dom}", helo,
        receiver_host=receiver_host, default_explanation=default_explanation,
    )  # fmt: skip
    return Verified(r, Identity.HELO, r.domain)


async def lookup(resolver: Resolver, domain: str) -> tuple[Status, str, Record | None, str]:
    """The SPF record of ``domain``: (status, text, parsed record, reason).

    Status is ``none`` when there is none, ``temperror``/``permerror`` on trouble
    and ``pass`` when a record was found and parses.
    """
    d = _ascii_domain(domain)
    status, text, reason = await _lookup_record(resolver, d)
    if status is not None:
        return status, text, None, reason
    try:
        return Status.PASS, text, parse_record(text), ""
    except SPFSyntaxError as e:
        return Status.PERMERROR, text, None, str(e)


# ---------------------------------------------------------------------------
# Received-SPF (RFC 7208 §9.1)


def _kv_value(value: str) -> str:
    """A dot-atom when possible, else a quoted-string (RFC 7208 §9.1 key-value-pair)."""
    if value and re.fullmatch(
        r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*", value
    ):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def received_spf(
    result: SPFResult,
    *,
    ip: str | IPAddress,
    mail_from: str,
    helo: str,
    identity: Identity,
    receiver: str,
) -> str:
    """A ``Received-SPF:`` header field with CRLF, folded one key per line (§9.1)."""
    comment = {
        Status.PASS: f"domain {result.domain} designates {ip} as permitted sender",
        Status.FAIL: f"domain {result.domain} does not designate {ip} as permitted sender",
        Status.SOFTFAIL: f"domain {result.domain} does not designate {ip} as permitted sender",
        Status.NEUTRAL: f"domain {result.domain} does not state whether {ip} is permitted",
        Status.NONE: f"domain {result.domain or helo} does not publish an spf policy",
        Status.TEMPERROR: f"temporary error checking domain {result.domain}",
        Status.PERMERROR: f"permanent error in spf policy of domain {result.domain}",
    }[result.status]
    comment = re.sub(r"[()\\\r\n]", "", comment)
    pairs = [
        ("client-ip", str(ip)),
        ("envelope-from", mail_from),
        ("helo", helo),
    ]
    if result.reason and result.status in (Status.TEMPERROR, Status.PERMERROR):
        pairs.append(("problem", re.sub(r"[\r\n]", " ", result.reason)))
    if result.mechanism:
        pairs.append(("mechanism", result.mechanism))
    pairs += [("receiver", receiver), ("identity", str(identity))]
    lines = [f"Received-SPF: {result.status} ({receiver}: {comment})"]
    lines += [f"\t{k}={_kv_value(v)};" for k, v in pairs]
    return "\r\n".join(lines) + "\r\n"


__all__ = [
    "MAX_LOOKUPS",
    "MAX_VOID_LOOKUPS",
    "Directive",
    "Identity",
    "Record",
    "SPFResult",
    "SPFSyntaxError",
    "Status",
    "Verified",
    "check_domain_spec",
    "check_host",
    "is_spf_record",
    "lookup",
    "parse_record",
    "received_spf",
    "split_sender",
    "valid_domain",
    "verify",
]
