"""The dnspython side of :mod:`app.dns.resolver`: names, queries on the wire and the
reading of responses.

Kept apart so that a process pays for dnspython (about 6 MiB) only once it looks
something up: :class:`~app.dns.resolver.Resolver` imports this module on its first query.
"""

import asyncio
import functools
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

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
import dns.reversename
import dns.rrset

from app.dns.domain import Domain, DomainError
from app.dns.results import (
    MX,
    TLSA,
    Answer,
    InvalidName,
    IPAddress,
    NotFound,
    Server,
    TempError,
)

log = logging.getLogger("app.dns.resolver")

U = TypeVar("U")

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
# Names


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


def parse_rdtype(text: str) -> dns.rdatatype.RdataType:
    """The record type named ``text`` (e.g. ``"SRV"``); ValueError when unknown."""
    try:
        return dns.rdatatype.from_text(text)
    except dns.exception.DNSException:
        raise ValueError(f"unknown rdtype {text!r}") from None


def rdtype_text(rt: dns.rdatatype.RdataType) -> str:
    return dns.rdatatype.to_text(rt)


def reverse_name(ip: IPAddress) -> str:
    """The PTR owner name of an address (RFC 1035 3.5, RFC 3596 2.5)."""
    return dns.reversename.from_address(str(ip)).to_text()


def key_text(qname: dns.name.Name) -> str:
    """A name as the resolver reports it: absolute, lower case."""
    return _text(qname)


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


def map_answer(answer: Answer[dns.rdata.Rdata], fn: Callable[[dns.rdata.Rdata], U]) -> Answer[U]:
    records = tuple(fn(rd) for rd in answer.records)
    return Answer(answer.name, records, answer.authentic, answer.ttl, answer.cnames)


def txt(rd: dns.rdata.Rdata) -> str:
    # RFC 7208 3.3 / RFC 6376 3.6.2.2: a record's strings are concatenated without
    # separator. Non-UTF-8 octets cannot occur in valid SPF/DKIM/DMARC records.
    return b"".join(rd.strings).decode("utf-8", errors="replace")  # type: ignore[attr-defined]


def target(rd: dns.rdata.Rdata) -> str:
    return _text(rd.target)  # type: ignore[attr-defined]


def mx(rd: dns.rdata.Rdata) -> MX:
    return MX(int(rd.preference), _text(rd.exchange))  # type: ignore[attr-defined]


def tlsa(rd: dns.rdata.Rdata) -> TLSA:
    return TLSA(int(rd.usage), int(rd.selector), int(rd.mtype), bytes(rd.cert))  # type: ignore[attr-defined]


def ipv4(rd: dns.rdata.Rdata) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(rd.address)  # type: ignore[attr-defined]


def ipv6(rd: dns.rdata.Rdata) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(rd.address)  # type: ignore[attr-defined]


def address(rd: dns.rdata.Rdata) -> IPAddress:
    return ipaddress.ip_address(rd.address)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------
# The network


async def exchange(
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    servers: Sequence[Server],
    timeout: float,
    attempts: int,
) -> dns.message.Message:
    """Send the query until a server gives NOERROR or NXDOMAIN, within ``timeout``;
    each of the ``attempts`` rounds tries every server once. Raises TempError."""
    q = dns.message.make_query(qname, rdtype, use_edns=0, want_dnssec=True, payload=_EDNS_PAYLOAD)
    q.flags |= dns.flags.AD  # RFC 6840 5.7: ask for the AD bit
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    tries = [s for _ in range(attempts) for s in servers]
    reason = "timeout"
    try:
        async with asyncio.timeout_at(deadline):
            for i, server in enumerate(tries):
                per_try = (deadline - loop.time()) / (len(tries) - i)
                response, reason = await _try(q, server, per_try, deadline)
                if response is not None:
                    return response
    except TimeoutError:
        reason = "timeout"
    raise TempError(_text(qname), dns.rdatatype.to_text(rdtype), reason)


async def _try(
    q: dns.message.Message, server: Server, timeout: float, deadline: float
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
                backend=dns.asyncbackend.get_backend("asyncio"),
            )  # fmt: skip
        except dns.message.Truncated:
            tcp = True  # RFC 7766 5: retry over TCP after TC
            response = await dns.asyncquery.tcp(
                q, server.host, timeout=max(deadline - loop.time(), 0.001),
                port=server.port, backend=dns.asyncbackend.get_backend("asyncio"),
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
