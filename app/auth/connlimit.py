"""Limits on incoming connections, shared by every protocol listener.

Per IP class (IPv4 /32, /26, /21; IPv6 /64, /48, /32, as for failed logins) a
connection rate of 300/900/2700 a minute and 30/90/270 connections at once, mox's
defaults; plus a limit on all connections together. A refused connection gets a
protocol-level "try again later" and is closed.
"""

import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from app.auth.ratelimit import FailedAuthLimiter, WindowLimit, ip_classes

IPAddress = IPv4Address | IPv6Address

CONNECTION_RATE = (WindowLimit(60.0, (300, 900, 2700)),)  # mox smtpserver/imapserver
CONCURRENT = (30, 90, 270)


class ConnectionLimiter:
    """Admission control for new connections; not thread-safe (event loop only)."""

    def __init__(
        self,
        *,
        max_total: int,
        concurrent: tuple[int, int, int] = CONCURRENT,
        rate: tuple[WindowLimit, ...] = CONNECTION_RATE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_total = max_total
        self.concurrent = concurrent
        self._rate = FailedAuthLimiter(rate, clock=clock)
        self._open: dict[tuple[int, str], int] = {}
        self.total = 0

    def acquire(self, ip: str | IPAddress) -> str | None:
        """Admit a connection from ``ip`` (None) or say why not; admitted ones must be
        released with :meth:`release`."""
        if self.total >= self.max_total:
            return "too many connections"
        keys = ip_classes(ip)
        for j, key in enumerate(keys):
            if self._open.get((j, key), 0) >= self.concurrent[j]:
                return "too many connections from your network"
        if not self._rate.allowed(ip):
            return "too many new connections from your network"
        self._rate.record_failure(ip)  # counts one connection in the rate windows
        for j, key in enumerate(keys):
            self._open[(j, key)] = self._open.get((j, key), 0) + 1
        self.total += 1
        return None

    def release(self, ip: str | IPAddress) -> None:
        for j, key in enumerate(ip_classes(ip)):
            n = self._open.get((j, key), 0) - 1
            if n > 0:
                self._open[(j, key)] = n
            else:
                self._open.pop((j, key), None)
        self.total -= 1
