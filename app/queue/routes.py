"""Routes and transports: which way an outgoing message goes on an attempt.

A transport is named in ``[queue.transports]`` (``direct`` is built in). A queued
recipient either has a transport forced on it (``pillarbox queue transport``) or
follows the routes of ``[queue.routes]``, as mox does: routes of the submitting
account first, then routes of the sender's domain, then global routes, each group in
file order; a route matches when the sender domain is in ``from_domains``, the
recipient domain in ``to_domains`` (a leading dot matches subdomains, an empty list
everything) and at least ``min_attempts`` attempts were made before. No match means
direct delivery.
"""

from dataclasses import dataclass
from typing import Any

from app.config.static import (
    Config,
    Queue,
    QueueRoute,
    QueueTransport,
    TransportKind,
    TransportTLS,
)

DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class Chosen:
    """The transport of one attempt: its name and settings."""

    name: str
    settings: QueueTransport


class UnknownTransport(Exception):
    """A forced or routed transport name that is not configured (any more)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no transport named {name!r}")
        self.name = name


def domain_matches(patterns: list[str], domain: str) -> bool:
    """mox's route domain test: exact, or a ``.suffix`` for subdomains; [] matches all."""
    if not patterns:
        return True
    d = domain.lower().rstrip(".")
    for p in patterns:
        p = p.lower().rstrip(".")
        if d == p or (p.startswith(".") and d.endswith(p)):
            return True
    return False


def _matches(r: QueueRoute, sender_domain: str, rcpt_domain: str, attempts: int) -> bool:
    return (
        domain_matches(r.from_domains, sender_domain)
        and domain_matches(r.to_domains, rcpt_domain)
        and attempts >= r.min_attempts
    )


def find_route(
    cfg: Queue, *, account: str, sender_domain: str, rcpt_domain: str, attempts: int
) -> QueueRoute | None:
    """The first matching route: account routes, then domain routes, then global."""
    routes = list(cfg.routes.values())
    groups = (
        [r for r in routes if r.account and r.account == account],
        [r for r in routes if not r.account and r.domain and r.domain.lower() == sender_domain],
        [r for r in routes if not r.account and not r.domain],
    )
    for group in groups:
        for r in group:
            if _matches(r, sender_domain, rcpt_domain, attempts):
                return r
    return None


def lookup(cfg: Queue, name: str) -> Chosen:
    """Settings of a transport by name; raises UnknownTransport."""
    if name in cfg.transports:
        return Chosen(name, cfg.transports[name])
    if name == DIRECT:
        return Chosen(DIRECT, QueueTransport())
    raise UnknownTransport(name)


def choose(
    cfg: Queue,
    *,
    forced: str,
    account: str,
    sender_domain: str,
    rcpt_domain: str,
    attempts: int,
) -> Chosen:
    """The transport for an attempt; raises UnknownTransport for a bad name."""
    if forced:
        return lookup(cfg, forced)
    route = find_route(
        cfg,
        account=account,
        sender_domain=sender_domain,
        rcpt_domain=rcpt_domain,
        attempts=attempts,
    )
    return lookup(cfg, route.transport) if route is not None else Chosen(DIRECT, QueueTransport())


def localserve_transport(config: Config) -> Chosen | None:
    """localserve never contacts the internet: everything goes to its own SMTP
    listener (as mox's localserve queue does). None when it has no SMTP listener."""
    for lst in config.listeners.values():
        if lst.smtp.enabled and lst.ips:
            t = QueueTransport(
                kind=TransportKind.SMARTHOST,
                host=lst.ips[0],
                port=lst.port("smtp"),
                tls=TransportTLS.NONE,
            )
            return Chosen("localserve", t)
    return None


def attempt_fields(t: QueueTransport) -> dict[str, Any]:
    """Keyword arguments for the attempt module's ``Transport``."""
    port = t.port
    if t.kind is TransportKind.SMARTHOST and not port:
        port = {TransportTLS.IMPLICIT: 465, TransportTLS.NONE: 25}.get(t.tls, 587)
    return {
        "kind": str(t.kind),
        "host": t.host,
        "port": port,
        "tls": str(t.tls),
        "username": t.username,
        "password": t.password,
        "auth_plain_allowed": t.auth_plain_allowed,
        "ipv4": t.ipv4,
        "ipv6": t.ipv6,
        "port_override": t.port_override,
    }
