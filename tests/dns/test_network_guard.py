"""The suite-wide guard in tests/conftest.py keeps every test on loopback.

(It lives with the DNS tests because the loopback DNS server is what makes a
network-free suite possible.)
"""

import asyncio
import socket
from pathlib import Path

import dns.message
import dns.query
import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from tests.conftest import NetworkGuard
from tests.dns.test_loopback import ipv6_loopback_available

# Documentation addresses (RFC 5737, RFC 3849): never routed, but the guard must
# refuse them before any packet leaves.
REMOTE_V4 = "192.0.2.1"
REMOTE_V6 = "2001:db8::1"


def test_tcp_connect_to_remote_address_is_refused(network_guard: NetworkGuard) -> None:
    with socket.socket() as s, network_guard.expect_violation():
        s.connect((REMOTE_V4, 25))
    with socket.socket() as s, network_guard.expect_violation():
        s.connect_ex((REMOTE_V4, 25))
    with network_guard.expect_violation():
        socket.create_connection((REMOTE_V4, 25), timeout=1)


def test_ipv6_connect_to_remote_address_is_refused(network_guard: NetworkGuard) -> None:
    with socket.socket(socket.AF_INET6) as s, network_guard.expect_violation():
        s.connect((REMOTE_V6, 25, 0, 0))


def test_udp_sendto_remote_address_is_refused(network_guard: NetworkGuard) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with network_guard.expect_violation():
            s.sendto(b"x", (REMOTE_V4, 53))
        with network_guard.expect_violation():
            s.sendto(b"x", 0, (REMOTE_V4, 53))
        with network_guard.expect_violation():
            s.sendmsg([b"x"], [], 0, (REMOTE_V4, 53))


def test_resolving_a_public_name_is_refused(network_guard: NetworkGuard) -> None:
    with network_guard.expect_violation():
        socket.getaddrinfo("example.com", 80)
    with network_guard.expect_violation():
        socket.gethostbyname("example.com")
    with network_guard.expect_violation():
        socket.gethostbyaddr(REMOTE_V4)


async def test_asyncio_connections_and_datagrams_are_refused(
    network_guard: NetworkGuard,
) -> None:
    loop = asyncio.get_running_loop()
    with network_guard.expect_violation():
        await asyncio.open_connection(REMOTE_V4, 25)
    with network_guard.expect_violation():
        await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=(REMOTE_V4, 53))
    with network_guard.expect_violation():
        await asyncio.open_connection("mail.example.com", 25)


async def test_resolver_cannot_query_a_remote_server(network_guard: NetworkGuard) -> None:
    r = Resolver([REMOTE_V4], timeout=1.0, attempts=1)
    with network_guard.expect_violation():
        await r.lookup_a("example.com")


def test_swallowed_violation_is_still_recorded(network_guard: NetworkGuard) -> None:
    with socket.socket() as s:
        try:
            s.connect((REMOTE_V4, 25))
        except Exception:
            pass  # code under test that hides errors cannot hide this
    assert len(network_guard.violations) == 1
    network_guard.violations.clear()  # this test expected it


def test_loopback_and_unix_sockets_are_allowed(
    dns_server: LoopbackDNSServer, tmp_path: Path
) -> None:
    dns_server.add("example", "A", "192.0.2.1")
    q = dns.message.make_query("example.", "A")
    assert dns.query.udp(q, "127.0.0.1", port=dns_server.port, timeout=2).answer
    assert socket.getaddrinfo("localhost", 25)
    assert socket.getaddrinfo("127.0.0.2", 25)
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(str(tmp_path / "s"))
        server.listen()
        client.connect(str(tmp_path / "s"))


@pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 cannot be bound here")
def test_ipv6_loopback_is_allowed() -> None:
    with socket.socket(socket.AF_INET6) as server:
        server.bind(("::1", 0))
        server.listen()
        with socket.create_connection(("::1", server.getsockname()[1]), timeout=2):
            pass
