"""Limits on failed authentication, per IP class and per connection, and their log line.

Per IP (as mox's ``ratelimit`` package and its ``LimiterFailedAuth``): failures are
counted in fixed windows for three classes of each address: IPv4 /32, /26, /21 and
IPv6 /64, /48, /32. Limits per class (mox's values):

=========  ===========  =====  =====
window     /32 or /64   /26    /21
                        /48    /32
=========  ===========  =====  =====
1 minute   10           30     90
1 day      50           150    450
=========  ===========  =====  =====

A connection (or login attempt) from an address is refused while adding one more
failure would exceed a limit (:meth:`FailedAuthLimiter.allowed`). Each failed
attempt is recorded (:meth:`~FailedAuthLimiter.record_failure`); a success resets
the address's own count and removes it from its subnets' counts
(:meth:`~FailedAuthLimiter.reset`), as mox does. Counts live only for the current
window of each size and are capped in number, so memory stays bounded.

Per connection: :func:`delay_for` gives mox's growing delay before answering an
authentication attempt after repeated failures on the same connection.

Logging: :func:`log_auth_failure` writes one line per failure with the constant
message ``authentication failed`` and ``remote_ip`` as the first field, so a
fail2ban filter can match it. For the default logfmt output::

    [Definition]
    failregex = ^.* msg="authentication failed" remote_ip=<HOST>(?: |$)
    ignoreregex =

For JSON output::

    failregex = "msg": "authentication failed", "remote_ip": "<HOST>"

``remote_ip`` comes before any client-supplied field (username), whose value the
log formatter quotes, so a crafted username cannot inject a different address.
"""

import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

V4_PREFIXES = (32, 26, 21)
V6_PREFIXES = (64, 48, 32)


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """Fixed window of ``seconds`` with a limit per IP class (narrowest first)."""

    seconds: float
    limits: tuple[int, int, int]


# mox-/limitauth.go: 10/30/90 per minute, 50/150/450 per day.
MOX_WINDOWS = (
    WindowLimit(60.0, (10, 30, 90)),
    WindowLimit(86400.0, (50, 150, 450)),
)

AUTH_FAIL_DELAY = 1.0  # mox: authFailDelay
FREE_FAILURES = 3  # mox: delays start after the third failure on a connection


@dataclass(slots=True)
class _Window:
    limit: WindowLimit
    index: int = -1
    counts: dict[tuple[int, str], int] = field(default_factory=dict)


def _parse(ip: str | IPAddress) -> IPAddress:
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def ip_classes(ip: str | IPAddress) -> tuple[str, str, str]:
    """The three masked networks of ``ip`` that failures are counted against."""
    addr = _parse(ip)
    prefixes = V4_PREFIXES if addr.version == 4 else V6_PREFIXES
    return tuple(  # type: ignore[return-value]
        str(ipaddress.ip_network(f"{addr}/{p}", strict=False)) for p in prefixes
    )


class FailedAuthLimiter:
    """Failed-authentication counter per IP class over fixed windows (see module doc).

    ``clock`` returns seconds (defaults to :func:`time.time`); every method also takes
    an explicit ``now``. ``max_entries`` caps the keys kept per window; beyond it the
    oldest keys are dropped. Not thread-safe: use it from the event loop.
    """

    def __init__(
        self,
        windows: tuple[WindowLimit, ...] = MOX_WINDOWS,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
    ) -> None:
        self._windows = [_Window(w) for w in windows]
        self._clock = clock
        self._max_entries = max_entries

    def _current(self, w: _Window, now: float) -> _Window:
        index = int(now // w.limit.seconds)
        if index != w.index:
            w.index = index
            w.counts = {}  # old window dropped entirely
        return w

    def allowed(self, ip: str | IPAddress, now: float | None = None) -> bool:
        """True if one more failure from ``ip`` stays within every limit."""
        t = self._clock() if now is None else now
        keys = ip_classes(ip)
        for w in self._windows:
            self._current(w, t)
            for j, key in enumerate(keys):
                if w.counts.get((j, key), 0) + 1 > w.limit.limits[j]:
                    return False
        return True

    def record_failure(self, ip: str | IPAddress, now: float | None = None) -> None:
        """Count one failed authentication from ``ip``."""
        t = self._clock() if now is None else now
        keys = ip_classes(ip)
        for w in self._windows:
            self._current(w, t)
            for j, key in enumerate(keys):
                k = (j, key)
                if k not in w.counts and len(w.counts) >= self._max_entries:
                    del w.counts[next(iter(w.counts))]
                w.counts[k] = w.counts.get(k, 0) + 1

    def reset(self, ip: str | IPAddress, now: float | None = None) -> None:
        """After a success: forget ``ip``'s own failures in the current windows and
        subtract them from its subnets' counts (as mox's ``Limiter.Reset``)."""
        t = self._clock() if now is None else now
        keys = ip_classes(ip)
        for w in self._windows:
            if int(t // w.limit.seconds) != w.index:
                continue
            n = w.counts.pop((0, keys[0]), 0)
            for j in (1, 2):
                k = (j, keys[j])
                left = w.counts.get(k, 0) - n
                if left > 0:
                    w.counts[k] = left
                else:
                    w.counts.pop(k, None)

    def entries(self) -> int:
        """Number of counters held (for tests and metrics)."""
        return sum(len(w.counts) for w in self._windows)


def delay_for(failures: int, *, unit: float = AUTH_FAIL_DELAY, cap: float = 15.0) -> float:
    """Seconds to wait before handling an authentication attempt on a connection that
    already had ``failures`` failed attempts: none for the first three, then one more
    second per failure (mox), capped at ``cap``."""
    return min(cap, max(0, failures - FREE_FAILURES) * unit)


_SAFE_MECH = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def log_auth_failure(
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    *,
    protocol: str,
    mechanism: str,
    username: str,
    remote_ip: str,
    reason: str,
) -> None:
    """Log one failed authentication: message ``authentication failed``, fields
    ``remote_ip`` (first, for fail2ban), ``protocol``, ``mechanism``, ``username``,
    ``reason``. Never pass a password; ``username`` is truncated to 256 characters and
    a client-chosen mechanism name that is not a plain token is logged as ``other``."""
    mech = mechanism.upper()
    if not mech or len(mech) > 32 or not set(mech) <= _SAFE_MECH:
        mech = "other"
    logger.info(
        "authentication failed",
        extra={
            "remote_ip": remote_ip,
            "protocol": protocol,
            "mechanism": mech,
            "username": username[:256],
            "reason": reason,
        },
    )
