"""Routes and transports (mox's semantics): account, domain, global; dot = subdomains."""

import pytest

from app.config.schema import ConfigError
from app.config.static import Config, QueueTransport, TransportKind, TransportTLS, parse
from app.queue import routes


def cfg(extra: str) -> Config:
    return parse('hostname = "mail.test.example"\ndata_dir = "data"\n' + extra)


TRANSPORTS = (
    '[queue.transports.a]\nkind = "smarthost"\nhost = "a.example"\n'
    '[queue.transports.b]\nkind = "smarthost"\nhost = "b.example"\n'
    '[queue.transports.c]\nkind = "fail"\n'
)


def pick(c: Config, **kw: object) -> str:
    args: dict[str, object] = {
        "forced": "",
        "account": "you",
        "sender_domain": "example.org",
        "rcpt_domain": "remote.example",
        "attempts": 0,
    }
    args.update(kw)
    return routes.choose(c.queue, **args).name  # type: ignore[arg-type]


def test_domain_matching() -> None:
    assert routes.domain_matches([], "x.example")
    assert routes.domain_matches(["x.example"], "X.Example")
    assert not routes.domain_matches(["x.example"], "sub.x.example")
    assert routes.domain_matches([".x.example"], "sub.x.example")
    assert not routes.domain_matches([".x.example"], "x.example")


def test_no_route_is_direct() -> None:
    assert pick(cfg(TRANSPORTS)) == "direct"


def test_account_then_domain_then_global_routes() -> None:
    c = cfg(
        TRANSPORTS + '[queue.routes.g]\ntransport = "c"\n'
        '[queue.routes.d]\ntransport = "b"\ndomain = "example.org"\n'
        '[queue.routes.acc]\ntransport = "a"\naccount = "you"\n'
    )
    assert pick(c) == "a"
    assert pick(c, account="other") == "b"
    assert pick(c, account="other", sender_domain="example.net") == "c"


def test_from_to_and_min_attempts() -> None:
    c = cfg(
        TRANSPORTS + '[queue.routes.r1]\ntransport = "a"\nto_domains = [".remote.example"]\n'
        '[queue.routes.r2]\ntransport = "b"\nfrom_domains = ["example.org"]\nmin_attempts = 2\n'
    )
    assert pick(c, rcpt_domain="mx.remote.example") == "a"
    assert pick(c) == "direct"
    assert pick(c, attempts=2) == "b"
    assert pick(c, attempts=2, sender_domain="example.net") == "direct"


def test_forced_transport_and_unknown_name() -> None:
    c = cfg(TRANSPORTS)
    assert pick(c, forced="b") == "b"
    assert pick(c, forced="direct") == "direct"
    with pytest.raises(routes.UnknownTransport):
        pick(c, forced="nosuch")


def test_config_rejects_bad_routes_and_transports() -> None:
    with pytest.raises(ConfigError) as e:
        cfg('[queue.transports.s]\nkind = "smarthost"\n[queue.routes.r]\ntransport = "nosuch"\n')
    text = str(e.value)
    assert "queue.transports.s.host" in text and "queue.routes.r.transport" in text


def test_attempt_fields_default_ports() -> None:
    f = routes.attempt_fields(
        QueueTransport(kind=TransportKind.SMARTHOST, host="r", tls=TransportTLS.IMPLICIT)
    )
    assert (f["kind"], f["port"], f["tls"]) == ("smarthost", 465, "implicit")
    assert (
        routes.attempt_fields(QueueTransport(kind=TransportKind.SMARTHOST, host="r"))["port"] == 587
    )
    assert routes.attempt_fields(QueueTransport(port_override=2525))["port_override"] == 2525


def test_localserve_goes_to_own_smtp_listener() -> None:
    c = cfg(
        'localserve = true\n[listeners.local]\nips = ["127.0.0.1"]\n'
        "[listeners.local.smtp]\nenabled = true\nport = 1025\n"
    )
    chosen = routes.localserve_transport(c)
    assert chosen is not None
    assert (chosen.settings.host, chosen.settings.port) == ("127.0.0.1", 1025)


def test_config_describe_documents_queue() -> None:
    from app.config.static import example

    text = example()
    for key in ("[queue]", "[queue.transports.relay]", "[queue.routes.viarelay]", "min_attempts"):
        assert key in text
