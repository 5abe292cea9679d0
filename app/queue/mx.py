"""Where to deliver a recipient domain's mail: MX gathering (RFC 5321 5.1).

* :func:`gather_destinations`: follow CNAMEs of the recipient domain, look up MX,
  sort by preference (equal preferences shuffled, RFC 5321 5.1), fall back to the
  domain itself when it has no MX (the implicit MX), and refuse a null MX
  (RFC 7505) permanently with 5.1.10.
* :func:`gather_ips`: the addresses of one host, CNAMEs followed explicitly so DANE
  knows the expanded name, ordered for this attempt, filtered by address family.

Both track whether every DNS answer on the way was DNSSEC-authentic, which DANE
(RFC 7672 2.2) depends on. Behaviour follows mox ``smtpclient/gather.go``.
"""

import ipaddress
import random
from dataclasses import dataclass

from app.dns.domain import Domain, DomainError
from app.dns.resolver import DNSError as _DNSError
from app.dns.resolver import IPAddress, NotFound, Resolver, TempError
from app.smtp import codes as c

MAX_CNAMES = 16


class GatherError(Exception):
    """Destinations could not be determined; a reply for the recipients."""

    def __init__(self, permanent: bool, code: int, secode: str, text: str) -> None:
        super().__init__(text)
        self.permanent = permanent
        self.code = code
        self.secode = secode
        self.text = text


def _temp(text: str) -> GatherError:
    return GatherError(False, c.C451_LOCAL_ERROR, c.SE_NET4_NAME_3, text)


@dataclass(frozen=True, slots=True)
class Destinations:
    """The hosts to try for a recipient domain, best first.

    ``hosts`` are lower-case ASCII names without trailing dot, or one IP address
    for an address literal. ``orig_authentic``: the answers for the recipient
    domain itself were authentic; ``expanded_authentic``: all answers after
    following CNAMEs were too.
    """

    domain: str
    expanded_domain: str
    hosts: tuple[str, ...]
    have_mx: bool
    orig_authentic: bool
    expanded_authentic: bool
    ip_literal: bool = False


def _strip(name: str) -> str:
    return name.lower().removesuffix(".")


def parse_address_literal(domain: str) -> IPAddress | None:
    """The IP of ``[1.2.3.4]`` or ``[IPv6:...]`` (RFC 5321 4.1.3), else None."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    if inner[:5].lower() == "ipv6:":
        return ipaddress.IPv6Address(inner[5:])
    return ipaddress.IPv4Address(inner)


async def gather_destinations(
    resolver: Resolver, domain: str, *, rng: random.Random | None = None
) -> Destinations:
    """The MX hosts (or implicit MX) of ``domain``; raises :class:`GatherError`."""
    try:
        ip = parse_address_literal(domain)
    except ValueError:
        raise GatherError(
            True, c.C550_MAILBOX_UNAVAILABLE, c.SE_ADDR1_UNKNOWN_SYSTEM_2, "bad address literal"
        ) from None
    if ip is not None:
        return Destinations(domain, domain, (str(ip),), False, False, False, ip_literal=True)
    try:
        orig = Domain.parse(domain).ascii
    except DomainError:
        raise GatherError(
            True, c.C550_MAILBOX_UNAVAILABLE, c.SE_ADDR1_UNKNOWN_SYSTEM_2, "invalid domain"
        ) from None
    orig_auth = expanded_auth = True
    name = orig
    seen: set[str] = set()
    for i in range(MAX_CNAMES + 1):
        if name in seen:
            raise _temp(f"cname loop for {orig} at {name}")
        seen.add(name)
        if i == MAX_CNAMES:
            raise _temp(f"too many cnames for {orig}")
        # RFC 5321 5.1: a CNAME at the domain is followed; explicitly, to learn the
        # final name and whether each step was authentic.
        try:
            ans = await resolver.lookup_cname(name)
            auth, target = ans.authentic, _strip(ans.records[0]) if ans.records else name
        except NotFound as e:
            auth, target = e.authentic, name
        except _DNSError as e:
            raise _temp(f"cname lookup for {name}: {e.reason or 'error'}") from None
        orig_auth = orig_auth and (auth if i == 0 else True)
        expanded_auth = expanded_auth and auth
        if target != name:
            name = target
            continue
        return await _mx(resolver, orig, name, orig_auth, expanded_auth, i == 0, rng)
    raise AssertionError("unreachable")


async def _mx(
    resolver: Resolver,
    orig: str,
    name: str,
    orig_auth: bool,
    expanded_auth: bool,
    first: bool,
    rng: random.Random | None,
) -> Destinations:
    try:
        ans = await resolver.lookup_mx(name)
    except NotFound as e:
        if first:
            orig_auth = orig_auth and e.authentic
        expanded_auth = expanded_auth and e.authentic
        # RFC 5321 5.1: no MX, the domain itself is the implicit MX.
        return Destinations(orig, name, (name,), False, orig_auth, expanded_auth)
    except TempError as e:
        raise _temp(f"mx lookup for {name}: {e.reason or 'error'}") from None
    except _DNSError:
        raise GatherError(
            True, c.C550_MAILBOX_UNAVAILABLE, c.SE_ADDR1_UNKNOWN_SYSTEM_2, "invalid domain"
        ) from None
    if first:
        orig_auth = orig_auth and ans.authentic
    expanded_auth = expanded_auth and ans.authentic
    records = list(ans.records)
    # RFC 7505 3: a single MX with host "." means the domain accepts no mail.
    if len(records) == 1 and records[0].host == ".":
        raise GatherError(
            True,
            c.C556_DOMAIN_NO_MAIL,
            c.SE_ADDR1_NULL_MX_10,
            f"domain {orig} does not accept mail (null mx)",
        )
    r = rng or random.Random()
    r.shuffle(records)  # RFC 5321 5.1: randomise equal preferences; sort is stable
    records.sort(key=lambda mx: mx.preference)
    hosts = tuple(dict.fromkeys(_strip(mx.host) for mx in records if mx.host != "."))
    if not hosts:
        raise _temp(f"no usable mx hosts for {orig}")
    return Destinations(orig, name, hosts, True, orig_auth, expanded_auth)


@dataclass(frozen=True, slots=True)
class HostAddresses:
    """Addresses of one host, in the order to try them."""

    host: str
    expanded_host: str
    ips: tuple[IPAddress, ...]
    authentic: bool  # answers for the host name itself (CNAME and address records)
    expanded_authentic: bool  # all answers, including after CNAMEs
    dualstack: bool  # both families found and allowed


async def gather_ips(
    resolver: Resolver, host: str, *, ipv4: bool = True, ipv6: bool = True, attempt_number: int = 1
) -> HostAddresses:
    """Addresses of ``host`` for the allowed families; raises :class:`GatherError`.

    Order: IPv4 first on odd attempts, the other family first on even ones, so a
    retry after a policy rejection over one family tries the other (mox does this
    from the addresses dialed before; the queue does not hand us those).
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return HostAddresses(host, host, (ip,), False, False, False)
    name = host
    auth = expanded = True
    for i in range(MAX_CNAMES + 1):
        if i == MAX_CNAMES:
            raise _temp(f"too many cnames for mx host {host}")
        try:
            ans = await resolver.lookup_cname(name)
            a, target = ans.authentic, _strip(ans.records[0]) if ans.records else name
        except NotFound as e:
            a, target = e.authentic, name
        except _DNSError as e:
            raise _temp(f"cname lookup for {name}: {e.reason or 'error'}") from None
        if i == 0:
            auth = a
        expanded = expanded and a
        if target == name:
            break
        name = target
    v4: list[IPAddress] = []
    v6: list[IPAddress] = []
    for family, allowed in ((4, ipv4), (6, ipv6)):
        if not allowed:
            continue
        try:
            if family == 4:
                a4 = await resolver.lookup_a(name)
                v4.extend(a4.records)
                a = a4.authentic
            else:
                a6 = await resolver.lookup_aaaa(name)
                v6.extend(a6.records)
                a = a6.authentic
        except NotFound as e:
            a = e.authentic
        except _DNSError as e:
            raise _temp(f"address lookup for {name}: {e.reason or 'error'}") from None
        auth = auth and a
        expanded = expanded and a
    if not v4 and not v6:
        raise _temp(f"no addresses for host {name}")
    ips = v6 + v4 if attempt_number % 2 == 0 else v4 + v6
    return HostAddresses(host, name, tuple(ips), auth, expanded, bool(v4 and v6))
