"""The spf, dmarc, dnsbl and dns commands, as real subprocesses and in-process.

The whole OpenSPF suite also runs through ``pillarbox spf check --json`` in-process
(``app.cli.main``, the same code path as the executable); a few cases run as real
child processes.
"""

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import cli
from app.dns.loopback import LoopbackDNSServer
from tests.mailauth.spf_suite import (
    DEFAULT_EXPLANATION,
    Case,
    cases,
    explanation_matches,
    load,
    scenarios,
)

ROOT = Path(__file__).resolve().parent.parent.parent
CASES = list(cases())
SCENARIOS = scenarios()


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *argv],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip


def last_json(stdout: str) -> dict[str, object]:
    data = json.loads(stdout.strip().splitlines()[-1])
    assert isinstance(data, dict)
    return data


def spf_argv(server: LoopbackDNSServer, case: Case) -> list[str]:
    return [
        "spf", "check", "--dns", server.address, "--timeout", "0.5",
        "--helo", case.helo, "--receiver", "receiver.example",
        "--default-explanation", DEFAULT_EXPLANATION, "--json", "--", case.mailfrom, case.host,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def suite_server() -> Iterator[Callable[[int], LoopbackDNSServer]]:
    servers: dict[int, LoopbackDNSServer] = {}

    def get(i: int) -> LoopbackDNSServer:
        if i not in servers:
            s = LoopbackDNSServer().start()
            load(s, SCENARIOS[i]["zonedata"])
            servers[i] = s
        return servers[i]

    yield get
    for s in servers.values():
        s.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_spf_suite_through_the_cli(
    case: Case,
    suite_server: Callable[[int], LoopbackDNSServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = cli.main(spf_argv(suite_server(case.scenario), case))
    out = capsys.readouterr().out
    assert rc == 0
    data = last_json(out)
    assert data["result"] in case.results, data
    if data["result"] == "fail":
        assert explanation_matches(case, str(data["explanation"])), data


SUBPROCESS_CASES = [
    "nolocalpart",
    "redirect-cancels-exp",
    "helo-not-fqdn",
    "mx-limit",
    "p-macro-ip6-valid",
]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_spf_suite_cases_as_subprocesses(
    name: str, suite_server: Callable[[int], LoopbackDNSServer]
) -> None:
    case = next(c for c in CASES if c.name == name)
    p = run(*spf_argv(suite_server(case.scenario), case))
    assert p.returncode == 0, p.stderr
    data = last_json(p.stdout)
    assert data["result"] in case.results
    if data["result"] == "fail":
        assert explanation_matches(case, str(data["explanation"]))


@pytest.fixture
def zone(dns_server: LoopbackDNSServer) -> LoopbackDNSServer:
    dns_server.load_dict(
        {
            "example.org.": {"TXT": "v=spf1 ip4:192.0.2.0/24 -all", "A": "192.0.2.10"},
            "mail.example.org.": {"A": "192.0.2.25", "TXT": "v=spf1 a -all"},
            "_dmarc.example.org.": {"TXT": "v=DMARC1; p=reject; rua=mailto:d@example.org"},
            "2.0.0.127.bl.example.": {"A": "127.0.0.2", "TXT": "listed for testing"},
            "10.2.0.192.bl.example.": {"A": "127.0.0.4"},
        }
    )
    dns_server.set_authentic("org.")  # the whole tree walk, up to the TLD, is signed
    return dns_server


def test_spf_check_human_output(zone: LoopbackDNSServer) -> None:
    p = run("spf", "check", "--dns", zone.address, "user@example.org", "192.0.2.7")
    assert p.returncode == 0, p.stderr
    assert "spf pass for mailfrom example.org from 192.0.2.7" in p.stdout
    assert "ip4:192.0.2.0/24" in p.stdout


def test_spf_check_null_sender_checks_helo(zone: LoopbackDNSServer) -> None:
    p = run(
        "spf",
        "check",
        "--json",
        "--dns",
        zone.address,
        "--helo",
        "mail.example.org",
        "",
        "192.0.2.25",
    )
    assert p.returncode == 0, p.stderr
    data = last_json(p.stdout)
    assert data["result"] == "pass" and data["identity"] == "helo"
    assert data["domain"] == "mail.example.org"


def test_spf_check_bare_domain_and_fail(zone: LoopbackDNSServer) -> None:
    p = run("spf", "check", "--json", "--dns", zone.address, "example.org", "198.51.100.1")
    data = last_json(p.stdout)
    assert data["result"] == "fail" and data["mechanism"] == "-all"


def test_spf_check_bad_ip_is_an_operator_error(zone: LoopbackDNSServer) -> None:
    p = run("spf", "check", "--dns", zone.address, "a@example.org", "not-an-ip")
    assert p.returncode == 1
    assert "pillarbox: not an ip address" in p.stderr
    assert "Traceback" not in p.stderr


def test_spf_lookup(zone: LoopbackDNSServer) -> None:
    p = run("spf", "lookup", "--json", "--dns", zone.address, "example.org")
    assert p.returncode == 0, p.stderr
    data = last_json(p.stdout)
    assert data["status"] == "found"
    assert data["directives"] == ["ip4:192.0.2.0/24", "-all"]
    p = run("spf", "lookup", "--dns", zone.address, "nothing.example.org")
    assert p.returncode == 1 and "none" in p.stdout


def test_dmarc_lookup(zone: LoopbackDNSServer) -> None:
    p = run("dmarc", "lookup", "--json", "--dns", zone.address, "sub.example.org")
    assert p.returncode == 0, p.stderr
    data = last_json(p.stdout)
    assert data["status"] == "found" and data["domain"] == "example.org"
    assert data["org_domain"] == "example.org" and data["authentic"] is True
    assert isinstance(data["policy"], dict) and data["policy"]["p"] == "reject"
    p = run("dmarc", "lookup", "--dns", zone.address, "--method", "rfc7489", "example.org")
    assert "found at _dmarc.example.org" in p.stdout


def test_dnsbl_check(zone: LoopbackDNSServer) -> None:
    p = run("dnsbl", "check", "--json", "--dns", zone.address, "bl.example", "127.0.0.2")
    data = last_json(p.stdout)
    assert data["listed"] is True and data["explanation"] == "listed for testing"
    p = run("dnsbl", "check", "--dns", zone.address, "bl.example", "192.0.2.10")
    assert "LISTED" in p.stdout and "127.0.0.4" in p.stdout
    p = run("dnsbl", "check", "--json", "--dns", zone.address, "bl.example", "192.0.2.11")
    assert last_json(p.stdout)["result"] == "pass"


def test_dns_lookup_shows_authentic(zone: LoopbackDNSServer) -> None:
    p = run("dns", "lookup", "--json", "--dns", zone.address, "A", "mail.example.org")
    assert p.returncode == 0, p.stderr
    data = last_json(p.stdout)
    assert data["records"] == ["192.0.2.25"] and data["authentic"] is True
    p = run("dns", "lookup", "--dns", zone.address, "TXT", "bl.example")
    assert p.returncode == 1 and "not authentic" in p.stdout
    p = run("dns", "lookup", "--dns", zone.address, "A", "example.org")
    assert "dnssec: authentic" in p.stdout and "192.0.2.10" in p.stdout


def test_dmarc_verify_a_signed_message_from_stdin(dns_server: LoopbackDNSServer) -> None:
    from app.mailauth import dkim
    from app.mailauth.dkim_keys import generate_ed25519, load_private_key, txt_record

    key = generate_ed25519()
    dns_server.add("good.example", "TXT", '"v=spf1 ip4:192.0.2.0/24 -all"')
    dns_server.add("k._domainkey.good.example", "TXT", txt_record(key))
    dns_server.add("_dmarc.good.example", "TXT", '"v=DMARC1; p=reject"')
    msg = b"From: a@good.example\r\nSubject: v\r\n\r\nbody\r\n"
    signed = dkim.sign(msg, selectors=[dkim.Selector("good.example", "k", load_private_key(key))])
    args = [
        sys.executable,
        "-m",
        "app.cli",
        "dmarc",
        "verify",
        "--json",
        "--dns",
        dns_server.address,
        "192.0.2.7",
        "a@good.example",
        "mx.good.example",
    ]
    r = subprocess.run(args, input=signed + msg, capture_output=True, timeout=60)
    out = last_json(r.stdout.decode())
    assert r.returncode == 0
    assert out["dmarc"] == "pass" and out["spf"] == "pass" and out["reject"] is False
    assert out["dkim"] == [
        {"domain": "good.example", "selector": "k", "status": "pass", "trusted": True}
    ]
    # Unsigned, from an address SPF does not allow: the policy says reject.
    args[-3] = "198.51.100.1"
    r = subprocess.run(args, input=msg, capture_output=True, timeout=60)
    out = last_json(r.stdout.decode())
    assert out["dmarc"] == "fail" and out["reject"] is True
    human = subprocess.run(
        [a for a in args if a != "--json"], input=msg, capture_output=True, timeout=60
    )
    assert b"dmarc=fail" in human.stdout and b"verdict: reject" in human.stdout
