"""DNS record suggestions, the live check against a loopback DNS server, quickstart."""

import json
from pathlib import Path

from app.config.dnsrecords import MTASTSPolicy, Status, check, records, zone_text
from app.config.dynamic import DomainSettings
from app.dns.domain import Domain
from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.store.admin import AdminDB
from tests.serverproc import run_cli, write_config

DOMAIN = DomainSettings(Domain.parse("example.org"))


def by_name_type(host: str = "mx.example.net", **kw: object) -> dict[tuple[str, str], str]:
    return {(r.name, r.type): r.value for r in records(host, DOMAIN, **kw)}  # type: ignore[arg-type]


def test_records_cover_everything_a_domain_needs() -> None:
    recs = by_name_type(dkim=[("sel1", "v=DKIM1; k=ed25519; p=abc")], tlsa_sha256=["AB" * 32])
    assert recs[("example.org.", "MX")] == "10 mx.example.net."
    assert recs[("example.org.", "TXT")] == "v=spf1 mx ~all"
    assert recs[("sel1._domainkey.example.org.", "TXT")].startswith("v=DKIM1")
    assert recs[("_dmarc.example.org.", "TXT")].startswith("v=DMARC1; p=reject")
    assert recs[("_mta-sts.example.org.", "TXT")].startswith("v=STSv1; id=")
    assert recs[("mta-sts.example.org.", "CNAME")] == "mx.example.net."
    assert recs[("_smtp._tls.example.org.", "TXT")].startswith("v=TLSRPTv1; rua=mailto:")
    assert recs[("_submissions._tcp.example.org.", "SRV")] == "0 1 465 mail.example.org."
    assert recs[("_imaps._tcp.example.org.", "SRV")] == "0 1 993 mail.example.org."
    assert recs[("_pop3._tcp.example.org.", "SRV")] == "0 0 0 ."
    assert recs[("_pop3s._tcp.example.org.", "SRV")] == "0 0 0 ."
    assert recs[("mail.example.org.", "CNAME")] == "mx.example.net."
    assert recs[("autoconfig.example.org.", "CNAME")] == "mx.example.net."
    assert recs[("_25._tcp.mx.example.net.", "TLSA")] == "3 1 1 " + "ab" * 32
    assert recs[("example.org.", "CAA")] == '0 issue "letsencrypt.org"'


def test_caa_binds_acme_account_and_methods() -> None:
    recs = by_name_type(acme_account_uri="https://acme.example/acct/1")
    assert recs[("example.org.", "CAA")] == (
        '0 issue "letsencrypt.org; accounturi=https://acme.example/acct/1; '
        'validationmethods=tls-alpn-01,http-01"'
    )


def test_mta_sts_id_follows_policy() -> None:
    a = MTASTSPolicy("testing", ("mx.example.net",))
    b = MTASTSPolicy("enforce", ("mx.example.net",))
    assert a.id != b.id and a.id.isalnum() and len(a.id) <= 32


def test_no_client_cname_when_client_host_is_the_host() -> None:
    recs = by_name_type(host="mail.example.org")
    assert ("mail.example.org.", "CNAME") not in recs


def publish(
    dns: LoopbackDNSServer,
    host: str,
    skip: set[tuple[str, str]],
    dkim: tuple[tuple[str, str], ...] = (),
) -> None:
    for r in records(host, DOMAIN, dkim=dkim):
        if (r.name, r.type) not in skip:
            dns.add(r.name, r.type, r.value)


async def test_dnscheck_finds_the_missing_and_the_wrong(dns_server: LoopbackDNSServer) -> None:
    publish(dns_server, "mx.example.net", {("_dmarc.example.org.", "TXT"), ("example.org.", "MX")})
    dns_server.add("example.org.", "MX", "10 other.example.net.")
    results = await check(
        Resolver([dns_server.address], timeout=2), records("mx.example.net", DOMAIN)
    )
    bad = {(c.record.name, c.record.type): c for c in results if c.status != Status.OK}
    assert set(bad) == {("_dmarc.example.org.", "TXT"), ("example.org.", "MX")}
    assert bad[("_dmarc.example.org.", "TXT")].status == Status.MISSING
    assert "add: v=DMARC1" in bad[("_dmarc.example.org.", "TXT")].message
    mx = bad[("example.org.", "MX")]
    assert mx.status == Status.DIFFERS and "other.example.net" in mx.message


def test_cli_dnsrecords_and_dnscheck(tmp_path: Path, dns_server: LoopbackDNSServer) -> None:
    cfg = write_config(tmp_path, hostname="mx.example.net")
    assert run_cli(["config", "domain", "add", "example.org"], config=cfg).returncode == 0
    keys = json.loads(run_cli(["config", "dkim", "list", "--json"], config=cfg).stdout)
    dkim = tuple((k["selector"], k["txt"]) for k in keys)
    assert len(dkim) == 1  # a new domain gets a DKIM key
    out = run_cli(["config", "dnsrecords", "example.org"], config=cfg)
    assert out.returncode == 0
    assert zone_text(records("mx.example.net", DOMAIN, dkim=dkim)) in out.stdout
    assert f"{dkim[0][0]}._domainkey.example.org." in out.stdout
    publish(dns_server, "mx.example.net", {("_smtp._tls.example.org.", "TXT")}, dkim)
    r = run_cli(["config", "dnscheck", "--dns", dns_server.address, "example.org"], config=cfg)
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stdout.splitlines() if not x.startswith("ok ")]
    assert len(lines) == 1 and "_smtp._tls.example.org." in lines[0] and "missing" in lines[0]
    dns_server.add(
        "_smtp._tls.example.org.", "TXT", "v=TLSRPTv1; rua=mailto:tls-reports@example.org"
    )
    r = run_cli(
        ["config", "dnscheck", "--json", "--dns", dns_server.address, "example.org"], config=cfg
    )
    assert r.returncode == 0 and all(x["status"] == "ok" for x in json.loads(r.stdout))


def test_clientconfig_cli(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    run_cli(["config", "domain", "add", "example.org"], config=cfg)
    r = run_cli(["clientconfig", "--json", "example.org"], config=cfg)
    assert json.loads(r.stdout) == {
        "domain": "example.org",
        "host": "mail.example.org",
        "imaps_port": 993,
        "imap_port": 143,
        "submissions_port": 465,
        "submission_port": 587,
    }
    assert "port 993" in run_cli(["clientconfig", "example.org"], config=cfg).stdout


def test_quickstart_writes_everything_once(tmp_path: Path) -> None:
    d = tmp_path / "qs"
    r = run_cli(["quickstart", "--dir", str(d), "Mox.Fan@Example.org"])
    assert r.returncode == 0, r.stderr
    assert "10 mail.example.org." in r.stdout and "v=DMARC1" in r.stdout
    passwords = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if "  password: " in line]
    assert len(passwords) == 2
    cfg = d / "pillarbox.toml"
    assert run_cli(["config", "test", str(cfg)]).returncode == 0
    db = AdminDB(d / "data" / "admin.db")
    try:
        snap = db.snapshot()
        assert list(snap.domains) == ["example.org"]
        assert snap.addresses == {"mox.fan@example.org": "mox.fan"}
        assert db.setting("admin_password") is not None
        raw = (d / "data" / "admin.db").read_bytes()
        assert all(p.encode() not in raw for p in passwords)
    finally:
        db.close()
    from app.auth.credentials import Credentials, check_password

    db = AdminDB(d / "data" / "admin.db")
    try:
        creds = Credentials.from_json(db.credentials("mox.fan") or "")
    finally:
        db.close()
    assert check_password(creds, passwords[0])
    again = run_cli(["quickstart", "--dir", str(d), "you@example.org"])
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
