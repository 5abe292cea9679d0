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
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.dns.domain import Domain
from app.dns.results import (
    MX,
    TLSA,
    Answer,
    DNSError,
    InvalidName,
    IPAddress,
    NotFound,
    Server,
    TempError,
)

if TYPE_CHECKING:
    import dns.rdata

log = logging.getLogger(__name__)


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
    """Name servers from the ``nameserver`` lines of resolv.conf (resolv.conf(5)); 127.0.0.1
    when the file is missing or names none. Lines that are not an IP address are skipped."""
    servers: list[Server] = []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                servers.append(Server(str(ipaddress.ip_address(fields[1]))))
            except ValueError:
                continue
    return tuple(servers) or (Server("127.0.0.1"),)


# ---------------------------------------------------------------------------
# The resolver

# A cache key: (dns.name.Name, dns.rdatatype.RdataType), built by app.dns.wire.
_Key = tuple[Any, Any]
_Outcome = Answer["dns.rdata.Rdata"] | DNSError


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

    def clear_cache(self) -> None:
        """Forget all cached answers, positive and negative."""
        self._cache.clear()

    # -- public lookups ----------------------------------------------------

    async def query(self, name: str | Domain, rdtype: str) -> "Answer[dns.rdata.Rdata]":
        """Look up records of any type (e.g. ``"SRV"``); the raw dnspython rdata."""
        from app.dns import wire

        rt = wire.parse_rdtype(rdtype)
        qname = wire.to_dns_name(name, wire.rdtype_text(rt))
        outcome = await self._lookup((qname, rt))
        if isinstance(outcome, DNSError):
            # A fresh copy per caller: coalesced and cached lookups share the original.
            raise copy.copy(outcome)
        return outcome

    async def lookup_txt(self, name: str | Domain) -> Answer[str]:
        """TXT records, each record's character-strings joined into one string."""
        from app.dns import wire

        return wire.map_answer(await self.query(name, "TXT"), wire.txt)

    async def lookup_mx(self, name: str | Domain) -> Answer[MX]:
        """MX records in the order received (callers sort by preference)."""
        from app.dns import wire

        return wire.map_answer(await self.query(name, "MX"), wire.mx)

    async def lookup_a(self, name: str | Domain) -> Answer[ipaddress.IPv4Address]:
        """IPv4 addresses."""
        from app.dns import wire

        return wire.map_answer(await self.query(name, "A"), wire.ipv4)

    async def lookup_aaaa(self, name: str | Domain) -> Answer[ipaddress.IPv6Address]:
        """IPv6 addresses."""
        from app.dns import wire

        return wire.map_answer(await self.query(name, "AAAA"), wire.ipv6)

    async def lookup_ip(self, name: str | Domain) -> Answer[IPAddress]:
        """IPv4 and IPv6 addresses, looked up concurrently; IPv4 first.

        A temporary error for either family is raised (callers would otherwise act on
        half the addresses). NotFound only when both are empty; it is NXDOMAIN when
        both said so. ``authentic`` only when both responses were authentic.
        """
        from app.dns import wire

        qname = wire.to_dns_name(name, "A")
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
            raise NotFound(wire.key_text(qname), "A/AAAA", nx, authentic)
        records = tuple(wire.address(rd) for a in answers for rd in a.records)
        first = answers[0]
        ttl = min(a.ttl for a in answers)
        return Answer(first.name, records, authentic, ttl, first.cnames)

    async def lookup_ptr(self, ip: str | IPAddress) -> Answer[str]:
        """Reverse lookup of an address (RFC 1035 3.5, RFC 3596 2.5)."""
        from app.dns import wire

        try:
            rname = wire.reverse_name(ipaddress.ip_address(ip))
        except ValueError:
            raise InvalidName(str(ip), "PTR", "not an ip address") from None
        return wire.map_answer(await self.query(rname, "PTR"), wire.target)

    async def lookup_cname(self, name: str | Domain) -> Answer[str]:
        """The CNAME target of ``name`` (not followed further); NotFound if there is none."""
        from app.dns import wire

        return wire.map_answer(await self.query(name, "CNAME"), wire.target)

    async def lookup_ns(self, name: str | Domain) -> Answer[str]:
        """Name server host names."""
        from app.dns import wire

        return wire.map_answer(await self.query(name, "NS"), wire.target)

    async def lookup_tlsa(self, name: str | Domain) -> Answer[TLSA]:
        """TLSA records, e.g. for ``_25._tcp.mx.example`` (RFC 6698, RFC 7672)."""
        from app.dns import wire

        return wire.map_answer(await self.query(name, "TLSA"), wire.tlsa)

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
            log.debug(
                "dns cache hit", extra={"qname": key[0].to_text().lower(), "qtype": key[1].name}
            )
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
        from app.dns import wire

        qname, rdtype = key
        try:
            response = await wire.exchange(qname, rdtype, self.servers, self.timeout, self.attempts)
        except DNSError as e:
            return e
        outcome, ttl = wire.interpret(qname, rdtype, response)
        self._store(key, outcome, ttl)
        return outcome

    # -- network ---------------------------------------------------------------


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
]
