"""iprev: reverse DNS with forward confirmation (RFC 8601 §3, RFC 8601 §2.7.3).

The PTR names of the client address are looked up; the check passes when the A or
AAAA records of at least one name contain the address ("forward-confirmed reverse
DNS"). Address lookups of the names run concurrently.
"""

import asyncio
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from app.dns.resolver import DNSError, InvalidName, NotFound, Resolver, TempError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_NAMES = 10  # like SPF's PTR limit (RFC 7208 §4.6.4): ignore names after the 10th


class Status(StrEnum):
    """RFC 8601 §2.7.3 results."""

    PASS = "pass"
    FAIL = "fail"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


@dataclass(frozen=True, slots=True)
class IPRevResult:
    """``names``: the PTR names (trailing dot removed), confirmed ones first."""

    status: Status
    names: tuple[str, ...] = ()
    authentic: bool = False
    reason: str = ""


async def _confirmed(
    resolver: Resolver, name: str, ip: IPAddress
) -> tuple[bool, bool, DNSError | None]:
    """(matches, authentic, error) of the forward lookup of ``name``."""
    try:
        if ip.version == 4:
            a4 = await resolver.lookup_a(name)
            return ip in a4.records, a4.authentic, None
        a6 = await resolver.lookup_aaaa(name)
        return ip in a6.records, a6.authentic, None
    except NotFound as e:
        return False, e.authentic, None
    except DNSError as e:
        return False, False, e


async def check(resolver: Resolver, ip: str | IPAddress) -> IPRevResult:
    """Reverse-then-forward lookup of ``ip`` (RFC 8601 §3)."""
    try:
        addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        return IPRevResult(Status.PERMERROR, reason=f"not an ip address: {ip!r}")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    try:
        ptr = await resolver.lookup_ptr(addr)
    except NotFound as e:
        return IPRevResult(Status.FAIL, authentic=e.authentic, reason="no ptr records")
    except TempError as e:
        return IPRevResult(Status.TEMPERROR, reason=str(e))
    except InvalidName as e:
        return IPRevResult(Status.PERMERROR, reason=str(e))
    names = [n.removesuffix(".") for n in ptr.records[:MAX_NAMES]]
    checks = await asyncio.gather(*(_confirmed(resolver, n, addr) for n in names))
    good = [n for n, c in zip(names, checks, strict=True) if c[0]]
    if good:
        authentic = ptr.authentic and all(c[1] for c in checks if c[0])
        ordered = tuple(good + [n for n in names if n not in good])
        return IPRevResult(Status.PASS, ordered, authentic)
    errors = [c[2] for c in checks if c[2] is not None]
    if any(isinstance(e, TempError) for e in errors):
        return IPRevResult(Status.TEMPERROR, tuple(names), reason=str(errors[0]))
    return IPRevResult(
        Status.FAIL, tuple(names), ptr.authentic, "no ptr name resolves to the address"
    )


__all__ = ["IPRevResult", "Status", "check"]
