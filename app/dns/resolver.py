"""Asynchronous stub resolver on dnspython with DNSSEC status, a TTL cache and coalescing.

The resolver talks to recursive (ideally DNSSEC-validating) name servers. Every
answer carries the AD bit of the response as ``authentic`` (RFC 4035 3.2.3,
RFC 6840 5.7), which DANE and MTA-STS decisions depend on.

Names in results (``Answer.name``, ``Answer.cnames``, MX/NS/PTR/CNAME targets) are
absolute, lower-case ASCII with a trailing dot, like DNS presentation format; a null
MX (RFC 7505) therefore has host ``"."``. Inputs may be ``str`` (with or without a
trailing dot, A-labels or U-labels) or :class:`~app.dns.domain.Domain`.

Failures are exceptions deriving from :class:`DNSError`: :class:`NotFound` (NXDOMAIN or
NODATA), :class:`TempError` (timeout, SERVFAIL, REFUSED, network trouble) and
:class:`InvalidName` (raised before any query). A resolver may be shared by all tasks
of one event loop; it is not meant to be used from several threads at once.
"""

import asyncio
import copy
import functools
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.reversename
import dns.rrset

from app.dns.domain import Domain, DomainError

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# EDNS0 payload size recommended by DNS flag day 2020, avoids IP fragmentation.
_EDNS_PAYLOAD = 1232
# Bounds on what we keep in the cache. RFC 2308 5: negative answers are cached for
# min(SOA TTL, SOA MINIMUM); without an SOA we use a short default; the upper bound
# follows RFC 2308's advice of 1-3 hours for negative caching.
_MAX_TTL = 86400
_MAX_NEGATIVE_TTL = 3600
_DEFAULT_NEGATIVE_TTL = 60
_MAX_CNAME_CHAIN = 16


# ---------------------------------------------------------------------------
# Result values


@dataclass(frozen=True, slots=True)
class MX:
    """An MX record: lower ``preference`` is tried first; ``host`` is absolute."""

    preference: int
    host: str


@dataclass(frozen=True, slots=True)
class TLSA:
    """A TLSA record (RFC 6698 2.1): certificate usage, selector, matching type, data."""

    usage: int
    selector: int
    mtype: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """A successful lookup.

    ``name`` is the owner of ``records`` after following the CNAMEs listed (in order)
    in ``cnames``; ``ttl`` is the smallest TTL along that chain, reduced by the time
    spent in the cache. Construct it as ``Answer(...)``; ``Answer[X](...)`` fails on
    Python 3.11 for frozen slotted generic dataclasses.
    """

    name: str
    records: tuple[T, ...]
    authentic: bool
    ttl: int
    cnames: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Errors


class DNSError(Exception):
    """Base of all resolver errors; ``name`` and ``rdtype`` say what was looked up."""

    def __init__(self, name: str, rdtype: str, reason: str = "") -> None:
        super().__init__(name, rdtype, reason)
        self.name = name
        self.rdtype = rdtype
        self.reason = reason

    def __str__(self) -> str:
        return f"dns {self.rdtype} lookup of {self.name}: {self.reason or type(self).__name__}"


class InvalidName(DNSError):
    """The name is not a valid DNS name (permanent; raised before any query)."""


class TempError(DNSError):
    """A temporary failure: timeout, SERVFAIL, REFUSED or a network error."""


class NotFound(DNSError):
    """No records: ``nxdomain`` is True when the name does not exist at all, False when
    it exists without records of this type (NODATA). ``authentic`` is the AD bit of the
    response, i.e. whether the non-existence was proven with DNSSEC."""

    def __init__(
        self, name: str, rdtype: str, nxdomain: bool, authentic: bool = False, reason: str = ""
    ) -> None:
        reason = reason or ("nxdomain" if nxdomain else "no records")
        super().__init__(name, rdtype, reason)
        # Keep constructor arguments in args so copy/pickle reproduce the error.
        self.args = (name, rdtype, nxdomain, authentic, reason)
        self.nxdomain = nxdomain
        self.authentic = authentic


# ---------------------------------------------------------------------------
# Name handling


def _text(name: dns.name.Name) -> str:
    return name.to_text().lower()


def to_dns_name(name: str | Domain, rdtype: str = "") -> dns.name.Name:
    """Convert ``name`` to an absolute :class:`dns.name.Name`, raising InvalidName.

    RFC 1035 2.3.4: labels are at most 63 octets and a name at most 255 octets on the
    wire, i.e. 253 characters in text without the trailing dot. ASCII input is taken
    as-is (SPF macros can produce unusual but valid labels); non-ASCII input is
    converted with IDNA 2008 through :class:`Domain`.
    """
    if isinstance(name, Domain):
        text = name.ascii
    else:
        text = name.strip()
        if text == ".":
            return dns.name.root
        if not text.isascii():
            try:
                text = Domain.parse(text).ascii
            except DomainError as e:
                raise InvalidName(name, rdtype, e.reason) from None
        text = text.removesuffix(".")
    if not text:
        raise InvalidName(str(name), rdtype, "empty name")
    if len(text) > 253:
        raise InvalidName(str(name), rdtype, "name longer than 253 octets")
    for label in text.split("."):
        if not label:
            raise InvalidName(str(name), rdtype, "empty label")
        if len(label) > 63:
            raise InvalidName(str(name), rdtype, "label longer than 63 octets")
    try:
        return _absolute_name(text)
    except dns.exception.DNSException as e:
        raise InvalidName(str(name), rdtype, str(e) or type(e).__name__) from None


@functools.lru_cache(maxsize=4096)
def _absolute_name(text: str) -> dns.name.Name:
    """``dns.name.from_text`` memoised: mail checks look up the same few names over and
    over, and building a Name costs more than a cached answer (names are immutable)."""
    return dns.name.from_text(text + ".")


@dataclass(frozen=True, slots=True)
class Server:
    """A name server address."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_server(text: str) -> Server:
    """Parse ``"host"``, ``"host:port"``, ``"::1"`` or ``"[::1]:port"``; host must be an IP."""
    t = text.strip()
    port = 53
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid dns server address {text!r}")
        if rest:
            port = int(rest[1:])
    elif t.count(":") == 1:
        host, _, p = t.partition(":")
        port = int(p)
    else:
        host = t
    ipaddress.ip_address(host)  # raises ValueError for a non-IP host
    if not 0 < port < 65536:
        raise ValueError(f"invalid port in dns server address {text!r}")
    return Server(host, port)


def system_servers(path: str = "/etc/resolv.conf") -> tuple[Server, ...]:
    """Name servers from resolv.conf; 127.0.0.1 when the file is missing or empty."""
    r = dns.resolver.Resolver(configure=False)
    try:
        r.read_resolv_conf(path)
    except (OSError, dns.exception.DNSException):
        return (Server("127.0.0.1"),)
    servers = tuple(parse_server(str(ns)) for ns in r.nameservers)
    return servers or (Server("127.0.0.1"),)


# ---------------------------------------------------------------------------
# Interpreting a response (no I/O)


def _negative_ttl(response: dns.message.Message) -> int:
    """RFC 2308 5: TTL of a negative answer is min(SOA TTL, SOA MINIMUM)."""
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset) > 0:
            minimum = int(rrset[0].minimum)
            return min(int(rrset.ttl), minimum, _MAX_NEGATIVE_TTL)
    return _DEFAULT_NEGATIVE_TTL


def _find(
    response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> dns.rrset.RRset | None:
    return response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)


def interpret(
    qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, response: dns.message.Message
) -> tuple[Answer[dns.rdata.Rdata] | NotFound, int]:
    """Turn a NOERROR/NXDOMAIN response into an Answer or a NotFound, plus a cache TTL.

    CNAMEs in the answer section are followed from ``qname`` (RFC 1034 3.6.2,
    RFC 2181 10.1), except when the CNAME itself was asked for. The rcode describes
    the last name of the chain (RFC 6604 2.1).
    """
    authentic = bool(response.flags & dns.flags.AD)
    name = qname
    cnames: list[str] = []
    ttl = _MAX_TTL
    seen = {qname}
    rrset = _find(response, name, rdtype)
    while rrset is None and rdtype != dns.rdatatype.CNAME and len(cnames) < _MAX_CNAME_CHAIN:
        cname = _find(response, name, dns.rdatatype.CNAME)
        if cname is None or len(cname) == 0:
            break
        ttl = min(ttl, int(cname.ttl))
        name = cname[0].target
        if name in seen:
            break
        seen.add(name)
        cnames.append(_text(name))
        rrset = _find(response, name, rdtype)
    if rrset is not None and len(rrset) > 0:
        ttl = min(ttl, int(rrset.ttl))
        return Answer(_text(name), tuple(rrset), authentic, ttl, tuple(cnames)), ttl
    nxdomain = response.rcode() == dns.rcode.NXDOMAIN
    rtext = dns.rdatatype.to_text(rdtype)
    return NotFound(_text(qname), rtext, nxdomain, authentic), min(ttl, _negative_ttl(response))


def _map(answer: Answer[dns.rdata.Rdata], fn: Callable[[dns.rdata.Rdata], U]) -> Answer[U]:
    records = tuple(fn(rd) for rd in answer.records)
    return Answer(answer.name, records, answer.authentic, answer.ttl, answer.cnames)


def _txt(rd: dns.rdata.Rdata) -> str:
    # RFC 7208 3.3 / RFC 6376 3.6.2.2: a record's strings are concatenated without
    # separator. Non-UTF-8 octets cannot occur in valid SPF/DKIM/DMARC records.
    return b"".join(rd.strings).decode("utf-8", errors="replace")  # type: ignore[attr-defined]


def _target(rd: dns.rdata.Rdata) -> str:
    return _text(rd.target)  # type: ignore[attr-defined]


def _mx(rd: dns.rdata.Rdata) -> MX:
    return MX(int(rd.preference), _text(rd.exchange))  # type: ignore[attr-defined]


def _tlsa(rd: dns.rdata.Rdata) -> TLSA:
    return TLSA(int(rd.usage), int(rd.selector), int(rd.mtype), bytes(rd.cert))  # type: ignore[attr-defined]


def _address(rd: dns.rdata.Rdata) -> IPAddress:
    return ipaddress.ip_address(rd.address)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# The resolver

_Key = tuple[dns.name.Name, dns.rdatatype.RdataType]
_Outcome = Answer[dns.rdata.Rdata] | DNSError


class Resolver:
    """Async DNS resolver with DNSSEC status, TTL cache and in-flight coalescing.

    ``servers``: ``"host"``, ``"host:port"`` or ``"[v6]:port"``; empty means the name
    servers of ``resolv_conf``. ``timeout`` bounds a whole lookup (all attempts on all
    servers, including a TCP retry after truncation); each of the ``attempts`` rounds
    tries every server once. ``cache_size`` 0 disables the cache. ``clock`` gives the
    time for cache expiry.
    """

    def __init__(
        self,
        servers: Sequence[str] = (),
        *,
        timeout: float = 5.0,
        attempts: int = 2,
        cache_size: int = 10000,
        clock: Callable[[], float] = time.monotonic,
        resolv_conf: str = "/etc/resolv.conf",
    ) -> None:
        if timeout <= 0 or attempts < 1 or cache_size < 0:
            raise ValueError("timeout must be positive, attempts >= 1, cache_size >= 0")
        self.servers = tuple(parse_server(s) for s in servers) or system_servers(resolv_conf)
        self.timeout = timeout
        self.attempts = attempts
        self.cache_size = cache_size
        self._clock = clock
        self._cache: OrderedDict[_Key, tuple[float, _Outcome]] = OrderedDict()
        self._inflight: dict[_Key, asyncio.Task[_Outcome]] = {}
        self._backend = dns.asyncbackend.get_backend("asyncio")

    def clear_cache(self) -> None:
        """Forget all cached answers, positive and negative."""
        self._cache.clear()

    # -- public lookups ----------------------------------------------------

    async def query(self, name: str | Domain, rdtype: str) -> Answer[dns.rdata.Rdata]:
        """Look up records of any type (e.g. ``"SRV"``); the raw dnspython rdata."""
        try:
            rt = dns.rdatatype.from_text(rdtype)
        except dns.exception.DNSException:
            raise ValueError(f"unknown rdtype {rdtype!r}") from None
        qname = to_dns_name(name, dns.rdatatype.to_text(rt))
        outcome = await self._lookup((qname, rt))
        if isinstance(outcome, DNSError):
            # A fresh copy per caller: coalesced and cached lookups share the original.
            raise copy.copy(outcome)
        return outcome

    async def lookup_txt(self, name: str | Domain) -> Answer[str]:
        """TXT records, each record's character-strings joined into one string."""
        return _map(await self.query(name, "TXT"), _txt)

    async def lookup_mx(self, name: str | Domain) -> Answer[MX]:
        """MX records in the order received (callers sort by preference)."""
        return _map(await self.query(name, "MX"), _mx)

    async def lookup_a(self, name: str | Domain) -> Answer[ipaddress.IPv4Address]:
        """IPv4 addresses."""
        return _map(await self.query(name, "A"), lambda rd: ipaddress.IPv4Address(rd.address))  # type: ignore[attr-defined]

    async def lookup_aaaa(self, name: str | Domain) -> Answer[ipaddress.IPv6Address]:
        """IPv6 addresses."""
        return _map(await self.query(name, "AAAA"), lambda rd: ipaddress.IPv6Address(rd.address))  # type: ignore[attr-defined]

    async def lookup_ip(self, name: str | Domain) -> Answer[IPAddress]:
        """IPv4 and IPv6 addresses, looked up concurrently; IPv4 first.

        A temporary error for either family is raised (callers would otherwise act on
        half the addresses). NotFound only when both are empty; it is NXDOMAIN when
        both said so. ``authentic`` only when both responses were authentic.
        """
        qname = to_dns_name(name, "A")
        results = await asyncio.gather(
            self.query(qname.to_text(), "A"), self.query(qname.to_text(), "AAAA"),
            return_exceptions=True,
        )  # fmt: skip
        answers: list[Answer[dns.rdata.Rdata]] = []
        missing: list[NotFound] = []
        for r in results:
            if isinstance(r, NotFound):
                missing.append(r)
            elif isinstance(r, BaseException):
                raise r
            else:
                answers.append(r)
        authentic = all(a.authentic for a in answers) and all(m.authentic for m in missing)
        if not answers:
            nx = all(m.nxdomain for m in missing)
            raise NotFound(_text(qname), "A/AAAA", nx, authentic)
        records = tuple(_address(rd) for a in answers for rd in a.records)
        first = answers[0]
        ttl = min(a.ttl for a in answers)
        return Answer(first.name, records, authentic, ttl, first.cnames)

    async def lookup_ptr(self, ip: str | IPAddress) -> Answer[str]:
        """Reverse lookup of an address (RFC 1035 3.5, RFC 3596 2.5)."""
        try:
            rname = dns.reversename.from_address(str(ipaddress.ip_address(ip)))
        except ValueError:
            raise InvalidName(str(ip), "PTR", "not an ip address") from None
        return _map(await self.query(rname.to_text(), "PTR"), _target)

    async def lookup_cname(self, name: str | Domain) -> Answer[str]:
        """The CNAME target of ``name`` (not followed further); NotFound if there is none."""
        return _map(await self.query(name, "CNAME"), _target)

    async def lookup_ns(self, name: str | Domain) -> Answer[str]:
        """Name server host names."""
        return _map(await self.query(name, "NS"), _target)

    async def lookup_tlsa(self, name: str | Domain) -> Answer[TLSA]:
        """TLSA records, e.g. for ``_25._tcp.mx.example`` (RFC 6698, RFC 7672)."""
        return _map(await self.query(name, "TLSA"), _tlsa)

    # -- cache and coalescing ------------------------------------------------

    def _cached(self, key: _Key) -> _Outcome | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, outcome = entry
        remaining = expires - self._clock()
        if remaining <= 0:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        if isinstance(outcome, Answer):
            return replace(outcome, ttl=math.ceil(remaining))
        return outcome

    def _store(self, key: _Key, outcome: _Outcome, ttl: int) -> None:
        if self.cache_size == 0 or ttl <= 0 or isinstance(outcome, TempError):
            return
        self._cache[key] = (self._clock() + ttl, outcome)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def _lookup(self, key: _Key) -> _Outcome:
        cached = self._cached(key)
        if cached is not None:
            log.debug("dns cache hit", extra={"qname": _text(key[0]), "qtype": key[1].name})
            return cached
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._resolve(key))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        # shield: one impatient caller being cancelled must not cancel the others.
        return await asyncio.shield(task)

    def _done(self, key: _Key, task: asyncio.Task[_Outcome]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved when every waiter was cancelled

    async def _resolve(self, key: _Key) -> _Outcome:
        qname, rdtype = key
        try:
            response = await self._exchange(qname, rdtype)
        except DNSError as e:
            return e
        outcome, ttl = interpret(qname, rdtype, response)
        self._store(key, outcome, ttl)
        return outcome

    # -- network ---------------------------------------------------------------

    async def _exchange(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> dns.message.Message:
        """Send the query until a server gives NOERROR or NXDOMAIN, within the timeout."""
        q = dns.message.make_query(
            qname, rdtype, use_edns=0, want_dnssec=True, payload=_EDNS_PAYLOAD
        )
        q.flags |= dns.flags.AD  # RFC 6840 5.7: ask for the AD bit
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        tries = [s for _ in range(self.attempts) for s in self.servers]
        reason = "timeout"
        try:
            async with asyncio.timeout_at(deadline):
                for i, server in enumerate(tries):
                    per_try = (deadline - loop.time()) / (len(tries) - i)
                    response, reason = await self._try(q, server, per_try, deadline)
                    if response is not None:
                        return response
        except TimeoutError:
            reason = "timeout"
        raise TempError(_text(qname), dns.rdatatype.to_text(rdtype), reason)

    async def _try(
        self, q: dns.message.Message, server: Server, timeout: float, deadline: float
    ) -> tuple[dns.message.Message | None, str]:
        """One attempt at one server: a usable response, or None and a failure reason."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        tcp = False
        fields = {
            "qname": _text(q.question[0].name),
            "qtype": dns.rdatatype.to_text(q.question[0].rdtype),
            "server": str(server),
        }
        try:
            try:
                response = await dns.asyncquery.udp(
                    q, server.host, timeout=max(timeout, 0.001), port=server.port,
                    ignore_unexpected=True, ignore_errors=True, raise_on_truncation=True,
                    backend=self._backend,
                )  # fmt: skip
            except dns.message.Truncated:
                tcp = True  # RFC 7766 5: retry over TCP after TC
                response = await dns.asyncquery.tcp(
                    q, server.host, timeout=max(deadline - loop.time(), 0.001),
                    port=server.port, backend=self._backend,
                )  # fmt: skip
        except dns.exception.Timeout:
            log.debug("dns query timeout", extra={**fields, "tcp": tcp})
            return None, "timeout"
        except OSError as e:
            log.debug("dns query network error", extra={**fields, "tcp": tcp, "err": str(e)})
            return None, f"network error: {e.strerror or e}"
        except dns.exception.DNSException as e:
            log.debug("dns query bad response", extra={**fields, "tcp": tcp, "err": str(e)})
            return None, "malformed response"
        rcode = response.rcode()
        log.debug(
            "dns query",
            extra={
                **fields,
                "tcp": tcp,
                "rcode": dns.rcode.to_text(rcode),
                "authentic": bool(response.flags & dns.flags.AD),
                "duration_ms": round((loop.time() - start) * 1000, 1),
            },
        )
        if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return response, ""
        return None, dns.rcode.to_text(rcode).lower()


__all__ = [
    "MX",
    "TLSA",
    "Answer",
    "DNSError",
    "IPAddress",
    "InvalidName",
    "NotFound",
    "Resolver",
    "Server",
    "TempError",
    "parse_server",
    "system_servers",
    "to_dns_name",
]
