import logging

import pytest

from app.auth.ratelimit import FailedAuthLimiter, delay_for, ip_classes, log_auth_failure
from app.log import LogfmtFormatter


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def fail(lim: FailedAuthLimiter, ip: str, n: int) -> None:
    for _ in range(n):
        assert lim.allowed(ip)
        lim.record_failure(ip)


def test_ip_classes() -> None:
    assert ip_classes("192.0.2.77") == ("192.0.2.77/32", "192.0.2.64/26", "192.0.0.0/21")
    assert ip_classes("2001:db8:1:2:3::4") == (
        "2001:db8:1:2::/64",
        "2001:db8:1::/48",
        "2001:db8::/32",
    )
    assert ip_classes("::ffff:192.0.2.1")[0] == "192.0.2.1/32"


def test_ten_per_minute_per_ipv4_address() -> None:
    clock = Clock(60 * 1000)
    lim = FailedAuthLimiter(clock=clock)
    fail(lim, "192.0.2.1", 10)
    assert not lim.allowed("192.0.2.1")
    assert lim.allowed("192.0.2.2")  # the /26 is at 10 of 30
    clock.t += 60  # next minute window
    assert lim.allowed("192.0.2.1")


def test_subnet_limits_ipv4() -> None:
    clock = Clock(60 * 1000)
    lim = FailedAuthLimiter(clock=clock)
    for host in range(3):
        fail(lim, f"192.0.2.{host}", 10)
    assert not lim.allowed("192.0.2.50")  # same /26: 30 reached
    assert lim.allowed("192.0.2.70")  # other /26, same /21
    for host in range(64, 64 * 7, 64):  # fill the /21 through other /26s
        for i in range(3):
            if lim.allowed(f"192.0.{2 + host // 256}.{host % 256 + i}"):
                fail(lim, f"192.0.{2 + host // 256}.{host % 256 + i}", 10)
    assert not lim.allowed("192.0.7.200")  # /21 192.0.0.0/21 reached 90


def test_subnet_limits_ipv6() -> None:
    clock = Clock(60 * 1000)
    lim = FailedAuthLimiter(clock=clock)
    fail(lim, "2001:db8:0:1::1", 10)
    assert not lim.allowed("2001:db8:0:1::ffff")  # same /64
    fail(lim, "2001:db8:0:2::1", 10)
    fail(lim, "2001:db8:0:3::1", 10)
    assert not lim.allowed("2001:db8:0:4::1")  # same /48: 30
    assert lim.allowed("2001:db8:1:4::1")  # other /48, same /32


def test_daily_limit() -> None:
    clock = Clock(86400 * 100)
    lim = FailedAuthLimiter(clock=clock)
    for _ in range(5):
        fail(lim, "198.51.100.9", 10)
        clock.t += 61
    assert not lim.allowed("198.51.100.9")  # 50 per day
    clock.t = 86400 * 101
    assert lim.allowed("198.51.100.9")


def test_reset_on_success() -> None:
    clock = Clock(60 * 1000)
    lim = FailedAuthLimiter(clock=clock)
    fail(lim, "192.0.2.1", 9)
    fail(lim, "192.0.2.2", 9)
    lim.reset("192.0.2.1")
    fail(lim, "192.0.2.1", 10)
    # The earlier 9 from .1 were subtracted from the /26 too: 9 + 10 + 10 = 29 now,
    # where without the reset .3's failures would already have been refused.
    fail(lim, "192.0.2.3", 10)
    fail(lim, "192.0.2.4", 1)
    assert not lim.allowed("192.0.2.5")


def test_memory_is_bounded() -> None:
    clock = Clock(60 * 1000)
    lim = FailedAuthLimiter(clock=clock, max_entries=100)
    for i in range(1000):
        lim.record_failure(f"2001:db8:{i:x}::1")
    assert lim.entries() <= 2 * 100
    clock.t += 86400 * 2
    lim.record_failure("192.0.2.1")
    assert lim.entries() == 2 * 3  # old windows dropped


def test_explicit_now_overrides_clock() -> None:
    lim = FailedAuthLimiter(clock=lambda: pytest.fail("clock used"))
    for _ in range(10):
        lim.record_failure("192.0.2.1", now=120.0)
    assert not lim.allowed("192.0.2.1", now=130.0)
    assert lim.allowed("192.0.2.1", now=180.0)


def test_delay_for() -> None:
    assert [delay_for(n) for n in range(7)] == [0, 0, 0, 0, 1, 2, 3]
    assert delay_for(1000) == 15


def test_log_line_for_fail2ban(caplog: pytest.LogCaptureFixture) -> None:
    import re

    logger = logging.getLogger("app.auth.test")
    with caplog.at_level(logging.INFO, logger="app.auth.test"):
        log_auth_failure(
            logger,
            protocol="smtp",
            mechanism="PLAIN",
            username='evil remote_ip=9.9.9.9 "x',
            remote_ip="203.0.113.5",
            reason="bad password",
        )
        log_auth_failure(
            logger,
            protocol="imap",
            mechanism="x y",
            username="u",
            remote_ip="2001:db8::5",
            reason="unknown user",
        )
    lines = [LogfmtFormatter().format(r) for r in caplog.records]
    failregex = r'^.* msg="authentication failed" remote_ip=(?P<host>\S+)(?: |$)'
    hosts = [m.group("host") for ln in lines if (m := re.match(failregex, ln))]
    assert hosts == ["203.0.113.5", "2001:db8::5"]
    assert "mechanism=other" in lines[1]
    assert caplog.records[0].getMessage() == "authentication failed"
