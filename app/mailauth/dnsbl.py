"""DNS-based block lists (RFC 5782).

A listed address has an A record (conventionally 127.0.0.x) at its reversed form
under the list's zone; a TXT record there may explain the listing. IPv6 addresses
are reversed nibble by nibble (RFC 5782 §2.4).
"""

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from app.dns.domain import Domain
from app.dns.resolver import DNSError, InvalidName, NotFound, Resolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Status(StrEnum):
    """``pass``: not listed; ``fail``: listed; ``temperror``: could not tell."""

    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"


@dataclass(frozen=True, slots=True)
class DNSBLResult:
    """``addresses`` are the A records of a listing (they encode the reason on
    many lists); ``explanation`` is the TXT record, when the list gives one."""

    status: Status
    zone: str
    name: str
    addresses: tuple[str, ...] = ()
    explanation: str = ""
    reason: str = ""


def query_name(zone: str | Domain, ip: str | IPAddress) -> str:
    """The name to query (RFC 5782 §2.1, §2.4)."""
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    z = zone.ascii if isinstance(zone, Domain) else zone.strip().removesuffix(".").lower()
    if addr.version == 4:
        rev = ".".join(reversed(str(addr).split(".")))
    else:
        rev = ".".join(reversed(addr.exploded.replace(":", "")))
    return f"{rev}.{z}"


async def lookup(resolver: Resolver, zone: str | Domain, ip: str | IPAddress) -> DNSBLResult:
    """Whether ``ip`` is listed in ``zone`` (RFC 5782 §2.1, §2.2)."""
    z = zone.ascii if isinstance(zone, Domain) else zone.strip().removesuffix(".").lower()
    name = query_name(z, ip)
    try:
        answer = await resolver.lookup_a(name)
    except NotFound:
        return DNSBLResult(Status.PASS, z, name)
    except InvalidName as e:
        return DNSBLResult(Status.TEMPERROR, z, name, reason=str(e))
    except DNSError as e:
        return DNSBLResult(Status.TEMPERROR, z, name, reason=str(e))
    addrs = tuple(str(a) for a in answer.records)
    try:
        txt = await resolver.lookup_txt(name)
        explanation = "; ".join(txt.records)
    except DNSError:
        explanation = ""  # RFC 5782 §2.1: the TXT record is optional
    return DNSBLResult(Status.FAIL, z, name, addrs, explanation)


async def health_check(resolver: Resolver, zone: str | Domain) -> bool:
    """RFC 5782 §5: 127.0.0.2 must be listed and 127.0.0.1 must not be."""
    listed = await lookup(resolver, zone, "127.0.0.2")
    unlisted = await lookup(resolver, zone, "127.0.0.1")
    return listed.status == Status.FAIL and unlisted.status == Status.PASS


__all__ = ["DNSBLResult", "Status", "health_check", "lookup", "query_name"]
