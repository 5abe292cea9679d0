"""One delivery attempt against scripted SMTP peers on loopback, found through the
loopback DNS server: MX handling, TLS modes, MTA-STS, DANE, REQUIRETLS, limits,
per-recipient results, reply injection and timeouts."""

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.queue.attempt import AttemptResult, Recipient, Transport, attempt
from app.queue.mtasts import MTASTSCache
from app.queue.tlsrpt import PolicyType, ResultType
from app.smtp.codes import Reply
from app.smtp.events import DataEnd, Event, Mail, Rcpt
from app.smtp.protocol import ServerProtocol
from tests.queue.test_client_peer import (
    FAST,
    Cert,
    FakeServer,
    make_ca,
    make_leaf,
    server_context,
    trust,
)
from tests.queue.test_mtasts import ENFORCE, PolicyServer

MSG = b"From: s@src.example\r\nTo: a@d.example\r\nSubject: hi\r\n\r\nHello.\r\n.dot line\r\n"


@pytest.fixture
def fresh(dns_server: LoopbackDNSServer) -> Resolver:
    return Resolver([dns_server.address], timeout=1.0, cache_size=0)


@pytest.fixture(scope="module")
def ca() -> Cert:
    return make_ca()


@pytest.fixture
def tls_leaf(ca: Cert) -> Cert:
    return make_leaf(ca, ["mx.d.example", "mx.sts.example"])


@pytest.fixture
async def peers() -> AsyncIterator[list[FakeServer]]:
    servers: list[FakeServer] = []
    yield servers
    for s in servers:
        await s.stop()


async def start(peers: list[FakeServer], **kw: Any) -> FakeServer:
    s = await FakeServer(**kw).start()
    peers.append(s)
    return s


def mx(
    d: LoopbackDNSServer, domain: str = "d.example", ips: Sequence[str] = ("127.0.0.1",)
) -> None:
    d.add(domain, "MX", f"10 mx.{domain}.")
    for ip in ips:
        d.add(f"mx.{domain}", "AAAA" if ":" in ip else "A", ip)


async def send(
    resolver: Resolver,
    port: int,
    rcpts: Sequence[str] = ("a@d.example",),
    domain: str = "d.example",
    **kw: Any,
) -> AttemptResult:
    args: dict[str, Any] = {
        "sender": "s@src.example",
        "recipients": [Recipient(r) for r in rcpts],
        "domain": domain,
        "message": MSG,
        "size": len(MSG),
        "smtputf8": False,
        "eight_bit": False,
        "requiretls": False,
        "tls_required_no": False,
        "transport": Transport(port_override=port),
        "ehlo_hostname": "client.example",
        "attempt_number": 1,
        "timeouts": FAST,
    }
    args.update(kw)
    return await attempt(resolver, **args)


def only(kind: type[Event], reply: Reply, match: str = "") -> Any:
    def answer(p: ServerProtocol, ev: Event) -> Reply | None:
        if isinstance(ev, kind) and match in getattr(ev, "path", ""):
            return reply
        return None

    return answer


# --- basics -------------------------------------------------------------------


async def test_opportunistic_starttls_with_self_signed_cert_delivers(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    leaf = make_leaf(make_ca("Unknown"), ["mx.d.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path))
    mx(dns_server)
    res = await send(fresh, srv.port)
    (r,) = res.recipients
    assert r.ok and r.code == 250 and r.remote_mta == "mx.d.example"
    assert srv.received[0].tls and srv.received[0].data == MSG
    assert res.dialed == ("127.0.0.1",) and res.host == "mx.d.example"
    (rep,) = res.tls_reports
    assert rep.policy_type is PolicyType.NO_POLICY_FOUND and rep.success_count == 1


async def test_per_recipient_results_and_pipelining(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers, answer=only(Rcpt, Reply(550, "1.1", "no such user"), "bad@"))
    mx(dns_server)
    res = await send(fresh, srv.port, ["a@d.example", "bad@d.example", "c@d.example"])
    ok = {r.address: r for r in res.recipients}
    assert ok["a@d.example"].ok and ok["c@d.example"].ok
    bad = ok["bad@d.example"]
    assert not bad.ok and bad.permanent and bad.enhanced == "5.1.1" and bad.text == "no such user"
    assert srv.received[0].rcpts == ["a@d.example", "c@d.example"]


async def test_rcptmax_excess_recipients_are_temporary(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers, max_recipients=2)
    mx(dns_server)
    res = await send(fresh, srv.port, ["a@d.example", "b@d.example", "c@d.example"])
    assert [r.ok for r in res.recipients] == [True, True, False]
    last = res.recipients[2]
    assert not last.permanent and last.code == 452 and last.enhanced == "4.5.3"


async def test_no_mx_uses_implicit_mx_and_path_message_without_chunking(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    srv = await start(peers, chunking=False, ehlo_drop=["PIPELINING"])
    dns_server.add("implicit.example", "A", "127.0.0.1")
    big = b"Subject: big\r\n\r\n" + b"line of text\n.starts with dot\r\n" * 40000
    path = tmp_path / "msg"
    path.write_bytes(big)
    res = await send(
        fresh,
        srv.port,
        ["x@implicit.example"],
        domain="implicit.example",
        message=path,
        size=len(big),
    )
    assert res.recipients[0].ok and res.host == "implicit.example"
    assert srv.received[0].data == big.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


async def test_cname_mx_target(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers)
    dns_server.add("alias.example", "CNAME", "d.example.")
    mx(dns_server)
    res = await send(fresh, srv.port, ["a@alias.example"], domain="alias.example")
    assert res.recipients[0].ok and res.host == "mx.d.example"


async def test_null_mx_fails_permanently(dns_server: LoopbackDNSServer, fresh: Resolver) -> None:
    dns_server.add("null.example", "MX", "0 .")
    res = await send(fresh, 1, ["a@null.example"], domain="null.example")
    (r,) = res.recipients
    assert r.permanent and not r.ok and r.enhanced == "5.1.10" and res.dialed == ()


async def test_second_mx_used_when_first_is_unreachable(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers, host="127.0.0.3")
    dns_server.add("two.example", "MX", ["10 mx1.two.example.", "20 mx2.two.example."])
    dns_server.add("mx1.two.example", "A", "127.0.0.2")
    dns_server.add("mx2.two.example", "A", "127.0.0.3")
    res = await send(fresh, srv.port, ["a@two.example"], domain="two.example")
    assert res.recipients[0].ok and res.dialed == ("127.0.0.2", "127.0.0.3")
    assert res.host == "mx2.two.example" and len(res.tls_reports) == 2


async def test_smtputf8_required_but_missing_is_5_6_7(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers, smtputf8=False)
    mx(dns_server)
    res = await send(fresh, srv.port, ["ü@d.example"], smtputf8=True)
    (r,) = res.recipients
    assert r.permanent and r.enhanced == "5.6.7" and srv.received == []


async def test_size_over_remote_limit_is_permanent(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers)
    mx(dns_server)
    res = await send(fresh, srv.port, size=200 * 1024 * 1024)
    assert res.recipients[0].permanent and res.recipients[0].enhanced == "5.3.4"


async def test_temporary_mail_refusal_applies_to_all(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers, answer=only(Mail, Reply(451, "3.0", "busy")))
    mx(dns_server)
    res = await send(fresh, srv.port, ["a@d.example", "b@d.example"])
    assert all(not r.ok and not r.permanent and r.code == 451 for r in res.recipients)


async def test_data_refusal_applies_to_all_accepted(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(
        peers, chunking=False, answer=only(DataEnd, Reply(554, "6.0", "content rejected"))
    )
    mx(dns_server)
    res = await send(fresh, srv.port, ["a@d.example", "b@d.example"])
    assert [(r.ok, r.permanent, r.code) for r in res.recipients] == [(False, True, 554)] * 2


async def test_silent_server_times_out_temporarily(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    from app.smtp.dial import Timeouts

    srv = await start(peers, silent=True)
    mx(dns_server)
    res = await send(fresh, srv.port, timeouts=Timeouts(connect=1, greeting=0.3))
    (r,) = res.recipients
    assert not r.ok and not r.permanent and "timeout" in r.text


async def test_tls_failure_under_opportunistic_retries_without_tls(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    leaf = make_leaf(make_ca(), ["mx.d.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path), fail_handshake=True)
    mx(dns_server)
    res = await send(fresh, srv.port)
    assert res.recipients[0].ok and srv.connections == 2 and not srv.received[0].tls
    assert res.tls_reports[0].failure_count == 1


async def test_dual_stack_policy_rejection_is_temporary_on_first_attempt(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers, answer=only(Mail, Reply(550, "7.1", "your ip is listed")))
    await start(peers, host="::1", port=srv.port, answer=only(Mail, Reply(550, "7.1", "listed")))
    mx(dns_server, ips=("127.0.0.1", "::1"))
    first = await send(fresh, srv.port)
    assert not first.recipients[0].permanent and first.dialed == ("127.0.0.1",)
    second = await send(fresh, srv.port, attempt_number=2)
    assert second.recipients[0].permanent and second.dialed == ("::1",)
    mx(dns_server, "v4only.example")
    only4 = await send(fresh, srv.port, ["a@v4only.example"], domain="v4only.example")
    assert only4.recipients[0].permanent


# --- MTA-STS --------------------------------------------------------------------


@pytest.fixture
def policy_server(ca: Cert, tmp_path: Path) -> Any:
    s = PolicyServer(make_leaf(ca, ["mta-sts.sts.example"]), ca, tmp_path)
    yield s
    s.stop()


def sts(d: LoopbackDNSServer, ps: PolicyServer, policy: str = ENFORCE) -> None:
    mx(d, "sts.example")
    d.add("mta-sts.sts.example", "A", "127.0.0.1")
    d.add("_mta-sts.sts.example", "TXT", "v=STSv1; id=1")
    ps.responses["mta-sts.sts.example"] = (200, "text/plain", policy.encode())


def sts_cache(ps: PolicyServer, ca: Cert) -> MTASTSCache:
    from app.queue.mtasts import PolicyFetcher

    return MTASTSCache(PolicyFetcher(port=ps.port, context=trust(ca), timeout=5))


async def test_mtasts_enforce_refuses_certificate_that_is_not_pkix_valid(
    dns_server: LoopbackDNSServer,
    fresh: Resolver,
    peers: list[FakeServer],
    tmp_path: Path,
    ca: Cert,
    policy_server: PolicyServer,
) -> None:
    leaf = make_leaf(make_ca("Untrusted"), ["mx.sts.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path))
    sts(dns_server, policy_server)
    res = await send(
        fresh,
        srv.port,
        ["a@sts.example"],
        domain="sts.example",
        mtasts_cache=sts_cache(policy_server, ca),
        pkix_context=trust(ca),
    )
    (r,) = res.recipients
    assert not r.ok and not r.permanent and srv.received == [] and srv.connections == 1
    (rep,) = res.tls_reports
    assert rep.policy_type is PolicyType.STS and rep.failure_count == 1
    assert rep.failures[0].result_type is ResultType.CERTIFICATE_NOT_TRUSTED
    # TLS-Required: No relaxes the policy: delivered with opportunistic TLS.
    relaxed = await send(
        fresh,
        srv.port,
        ["a@sts.example"],
        domain="sts.example",
        mtasts_cache=sts_cache(policy_server, ca),
        pkix_context=trust(ca),
        tls_required_no=True,
    )
    assert relaxed.recipients[0].ok


async def test_mtasts_enforce_delivers_with_pkix_valid_certificate(
    dns_server: LoopbackDNSServer,
    fresh: Resolver,
    peers: list[FakeServer],
    tmp_path: Path,
    ca: Cert,
    tls_leaf: Cert,
    policy_server: PolicyServer,
) -> None:
    srv = await start(peers, tls=server_context(tls_leaf, ca, tmp_path))
    sts(dns_server, policy_server)
    res = await send(
        fresh,
        srv.port,
        ["a@sts.example"],
        domain="sts.example",
        mtasts_cache=sts_cache(policy_server, ca),
        pkix_context=trust(ca),
    )
    assert res.recipients[0].ok and srv.received[0].tls
    (rep,) = res.tls_reports
    assert rep.policy_type is PolicyType.STS and rep.success_count == 1
    assert rep.mx_host_patterns == ("mx.sts.example", "*.alt.example")


async def test_mtasts_enforce_skips_mx_not_in_policy(
    dns_server: LoopbackDNSServer,
    fresh: Resolver,
    peers: list[FakeServer],
    tmp_path: Path,
    ca: Cert,
    tls_leaf: Cert,
    policy_server: PolicyServer,
) -> None:
    srv = await start(peers, tls=server_context(tls_leaf, ca, tmp_path))
    policy = "version: STSv1\nmode: enforce\nmx: other.example\nmax_age: 600\n"
    sts(dns_server, policy_server, policy)
    res = await send(
        fresh,
        srv.port,
        ["a@sts.example"],
        domain="sts.example",
        mtasts_cache=sts_cache(policy_server, ca),
        pkix_context=trust(ca),
    )
    assert not res.recipients[0].ok and srv.connections == 0 and res.dialed == ()
    assert res.tls_reports[0].failures[0].failure_reason_code == "mtasts-policy-mx-mismatch"


async def test_mtasts_testing_only_reports(
    dns_server: LoopbackDNSServer,
    fresh: Resolver,
    peers: list[FakeServer],
    tmp_path: Path,
    ca: Cert,
    policy_server: PolicyServer,
) -> None:
    leaf = make_leaf(make_ca("Untrusted"), ["mx.sts.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path))
    sts(dns_server, policy_server, ENFORCE.replace("enforce", "testing"))
    res = await send(
        fresh,
        srv.port,
        ["a@sts.example"],
        domain="sts.example",
        mtasts_cache=sts_cache(policy_server, ca),
        pkix_context=trust(ca),
    )
    assert res.recipients[0].ok


# --- DANE -----------------------------------------------------------------------


def dane_zone(d: LoopbackDNSServer, tlsa: str) -> None:
    mx(d, "dane.example")
    d.add("_25._tcp.mx.dane.example", "TLSA", tlsa)
    d.set_authentic("dane.example")


async def test_dane_ee_verified_delivery(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    leaf = make_leaf(make_ca("Private"), ["whatever.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path))
    dane_zone(dns_server, "3 1 1 " + leaf.spki_sha256().hex())
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example")
    assert res.recipients[0].ok and srv.received[0].tls
    (rep,) = res.tls_reports
    assert rep.policy_type is PolicyType.TLSA and rep.success_count == 1
    assert rep.policy_domain == "mx.dane.example"


async def test_dane_mismatch_fails_and_is_never_downgraded(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    leaf = make_leaf(make_ca(), ["mx.dane.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path))
    dane_zone(dns_server, "3 1 1 " + "ab" * 32)
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example")
    (r,) = res.recipients
    assert not r.ok and not r.permanent and "dane" in r.text
    assert srv.connections == 1 and srv.received == []
    assert res.tls_reports[0].failures[0].result_type is ResultType.VALIDATION_FAILURE


async def test_dane_server_without_starttls_fails(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers)
    dane_zone(dns_server, "3 1 1 " + "ab" * 32)
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example")
    assert not res.recipients[0].ok and srv.received == [] and srv.connections == 1
    assert res.tls_reports[0].failures[0].result_type is ResultType.STARTTLS_NOT_SUPPORTED


async def test_tlsa_lookup_failure_is_temporary(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers)
    mx(dns_server, "dane.example")
    dns_server.set_authentic("dane.example")
    dns_server.servfail("_25._tcp.mx.dane.example", "TLSA")
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example")
    assert not res.recipients[0].ok and not res.recipients[0].permanent
    assert srv.connections == 0


async def test_not_authentic_means_no_dane(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer]
) -> None:
    srv = await start(peers)  # no STARTTLS at all
    mx(dns_server, "dane.example")
    dns_server.add("_25._tcp.mx.dane.example", "TLSA", "3 1 1 " + "ab" * 32)
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example")
    assert res.recipients[0].ok


# --- REQUIRETLS -------------------------------------------------------------------


async def test_requiretls_without_policy_fails_permanently(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    leaf = make_leaf(make_ca(), ["mx.d.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path))
    mx(dns_server)
    res = await send(fresh, srv.port, requiretls=True)
    (r,) = res.recipients
    assert r.permanent and r.enhanced == "5.7.30" and srv.connections == 0


async def test_requiretls_with_dane_sends_requiretls_parameter(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    leaf = make_leaf(make_ca(), ["mx.dane.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path))
    dane_zone(dns_server, "3 1 1 " + leaf.spki_sha256().hex())
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example", requiretls=True)
    assert res.recipients[0].ok and srv.received[0].mail.requiretls


async def test_requiretls_to_server_without_requiretls_is_5_7_30(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    leaf = make_leaf(make_ca(), ["mx.dane.example"])
    srv = await start(peers, tls=server_context(leaf, None, tmp_path), requiretls=False)
    dane_zone(dns_server, "3 1 1 " + leaf.spki_sha256().hex())
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example", requiretls=True)
    (r,) = res.recipients
    assert r.permanent and r.enhanced == "5.7.30" and srv.received == []


async def test_fail_transport(fresh: Resolver) -> None:
    res = await send(fresh, 1, transport=Transport(kind="fail"))
    assert res.recipients[0].permanent and res.dialed == ()


async def test_dane_ta_verified_delivery_with_chain(
    dns_server: LoopbackDNSServer, fresh: Resolver, peers: list[FakeServer], tmp_path: Path
) -> None:
    private_ca = make_ca("Private TA")
    leaf = make_leaf(private_ca, ["mx.dane.example"])
    srv = await start(peers, tls=server_context(leaf, private_ca, tmp_path))
    dane_zone(dns_server, "2 1 1 " + private_ca.spki_sha256().hex())
    res = await send(fresh, srv.port, ["a@dane.example"], domain="dane.example")
    assert res.recipients[0].ok and srv.received[0].tls
