"""Connection admission per IP class, concurrently and by rate."""

from app.auth.connlimit import ConnectionLimiter
from app.auth.ratelimit import WindowLimit


def test_concurrent_limit_per_address_and_release() -> None:
    lim = ConnectionLimiter(max_total=100, concurrent=(2, 3, 4))
    assert lim.acquire("192.0.2.1") is None
    assert lim.acquire("192.0.2.1") is None
    assert lim.acquire("192.0.2.1") == "too many connections from your network"
    assert lim.acquire("192.0.2.2") is None  # same /26: third of 3
    assert lim.acquire("192.0.2.3") == "too many connections from your network"
    lim.release("192.0.2.1")
    assert lim.acquire("192.0.2.3") is None
    assert lim.total == 3


def test_total_limit() -> None:
    lim = ConnectionLimiter(max_total=2)
    assert lim.acquire("192.0.2.1") is None
    assert lim.acquire("198.51.100.1") is None
    assert lim.acquire("203.0.113.1") == "too many connections"


def test_rate_limit_uses_windows_and_ipv6_prefixes() -> None:
    now = [1000.0]
    lim = ConnectionLimiter(
        max_total=1000,
        concurrent=(100, 100, 100),
        rate=(WindowLimit(60.0, (2, 10, 10)),),
        clock=lambda: now[0],
    )
    for _ in range(2):
        assert lim.acquire("2001:db8::1") is None
        lim.release("2001:db8::1")
    assert lim.acquire("2001:db8::2") == "too many new connections from your network"  # same /64
    assert lim.acquire("2001:db8:1::1") is None  # other /64
    now[0] += 60
    assert lim.acquire("2001:db8::2") is None
