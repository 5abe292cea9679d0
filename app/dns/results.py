"""What lookups return and how they fail: the values of :mod:`app.dns.resolver`, in a
module of their own so that code handling results needs neither the resolver nor
dnspython."""

import ipaddress
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


@dataclass(frozen=True, slots=True)
class Server:
    """A name server address."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
