"""Fixtures shared by the whole suite, and a guard that keeps tests off the network.

The guard (installed for the session) patches ``socket.socket.connect``,
``connect_ex``, ``sendto``, ``sendmsg``, ``socket.create_connection`` and the name
lookup functions of :mod:`socket` so that reaching anything but loopback (127.0.0.0/8, ::1) or an
AF_UNIX socket raises :class:`ExternalNetworkAccess` in the test. asyncio's
``create_connection``, ``open_connection`` and datagram endpoints end in those same
calls. Because code under test may swallow exceptions, every attempt is also
recorded and fails the test in which it happened; tests of the guard itself use
the ``network_guard`` fixture's ``expect_violation()``. Subprocesses are not covered.
"""

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver


class ExternalNetworkAccess(RuntimeError):
    """A test tried to reach a non-loopback address or resolve a non-local name."""

    def __init__(self, what: str, target: object) -> None:
        super().__init__(f"tests may only use loopback: {what} {target!r}")
        self.what = what
        self.target = target


def _is_loopback_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    h = host.strip("[]").split("%", 1)[0]
    if h.lower() == "localhost" or h.lower().endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_ip_literal(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


class NetworkGuard:
    """Records and refuses non-loopback network use."""

    def __init__(self) -> None:
        self.violations: list[ExternalNetworkAccess] = []
        self._expecting = 0

    def refuse(self, what: str, target: object) -> None:
        err = ExternalNetworkAccess(what, target)
        if not self._expecting:
            self.violations.append(err)
        raise err

    def check_address(self, sock: socket.socket, what: str, address: object) -> None:
        if sock.family == socket.AF_UNIX or address is None:
            return
        if isinstance(address, tuple) and address and _is_loopback_host(address[0]):
            return
        self.refuse(what, address)

    def check_name(self, what: str, host: object) -> None:
        # Numeric hosts need no network to "resolve"; connect() checks where they go.
        if host is None or host in ("", b"") or _is_loopback_host(host) or _is_ip_literal(host):
            return
        self.refuse(what, host)

    @contextlib.contextmanager
    def expect_violation(self) -> Iterator[None]:
        """Within this block, refused attempts raise but do not fail the test."""
        self._expecting += 1
        try:
            with pytest.raises(ExternalNetworkAccess):
                yield
        finally:
            self._expecting -= 1


def _patches(guard: NetworkGuard) -> dict[tuple[Any, str], Callable[..., Any]]:
    sock_cls = socket.socket
    orig_connect = sock_cls.connect
    orig_connect_ex = sock_cls.connect_ex
    orig_sendto = sock_cls.sendto
    orig_sendmsg = sock_cls.sendmsg
    orig_gai = socket.getaddrinfo
    orig_ghbn = socket.gethostbyname
    orig_ghbn_ex = socket.gethostbyname_ex
    orig_ghba = socket.gethostbyaddr
    orig_create_connection = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        guard.check_address(self, "connect", address)
        orig_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        guard.check_address(self, "connect_ex", address)
        return orig_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        guard.check_address(self, "sendto", args[-1] if args else None)
        return orig_sendto(self, data, *args)

    def sendmsg(self: socket.socket, buffers: Any, *args: Any) -> int:
        guard.check_address(self, "sendmsg", args[2] if len(args) > 2 else None)
        return orig_sendmsg(self, buffers, *args)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        # Checked before a socket exists: create_connection closes its socket only on
        # OSError, so refusing inside connect() would leak it.
        if not _is_loopback_host(address[0]):
            guard.refuse("create_connection", address)
        return orig_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        guard.check_name("getaddrinfo", host)
        return orig_gai(host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        guard.check_name("gethostbyname", host)
        return orig_ghbn(host)

    def gethostbyname_ex(host: str) -> Any:
        guard.check_name("gethostbyname_ex", host)
        return orig_ghbn_ex(host)

    def gethostbyaddr(host: str) -> Any:
        if not _is_loopback_host(host):
            guard.refuse("gethostbyaddr", host)
        return orig_ghba(host)

    return {
        (sock_cls, "connect"): connect,
        (sock_cls, "connect_ex"): connect_ex,
        (sock_cls, "sendto"): sendto,
        (sock_cls, "sendmsg"): sendmsg,
        (socket, "create_connection"): create_connection,
        (socket, "getaddrinfo"): getaddrinfo,
        (socket, "gethostbyname"): gethostbyname,
        (socket, "gethostbyname_ex"): gethostbyname_ex,
        (socket, "gethostbyaddr"): gethostbyaddr,
    }


@pytest.fixture(scope="session", autouse=True)
def network_guard() -> Iterator[NetworkGuard]:
    """Session-wide: refuse and record any non-loopback network use."""
    guard = NetworkGuard()
    patches = _patches(guard)
    saved = {(obj, attr): getattr(obj, attr) for obj, attr in patches}
    for (obj, attr), fn in patches.items():
        setattr(obj, attr, fn)
    try:
        yield guard
    finally:
        for (obj, attr), fn in saved.items():
            setattr(obj, attr, fn)


@pytest.fixture(autouse=True)
def _fail_on_network_access(network_guard: NetworkGuard) -> Iterator[None]:
    """Fail a test that tried to reach the network, even if the code swallowed the error."""
    network_guard.violations.clear()
    yield
    found, network_guard.violations[:] = list(network_guard.violations), []
    if found:
        pytest.fail("test tried to use the network: " + "; ".join(map(str, found)), pytrace=False)


@pytest.fixture
def dns_server() -> Iterator[LoopbackDNSServer]:
    """A started loopback DNS server with no data."""
    with LoopbackDNSServer() as server:
        yield server


@pytest.fixture
def resolver(dns_server: LoopbackDNSServer) -> Resolver:
    """A resolver that asks only ``dns_server``, with a 1 second timeout."""
    return Resolver([dns_server.address], timeout=1.0)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI every tool a test needs is installed: a skipped (or expected-to-fail) test
    there means a feature went untested, so the run fails instead of passing quietly."""
    import os

    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter is not None else {}
    skipped = [*stats.get("skipped", []), *stats.get("xfailed", [])]
    if skipped:
        for report in skipped:
            reporter.write_line(f"skipped in CI: {report.nodeid}: {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
