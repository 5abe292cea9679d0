"""``pillarbox quickstart you@example.com``: a complete first configuration.

Writes ``DIR/pillarbox.toml`` and ``DIR/data/`` (admin database with the domain,
the account and the admin password), prints the generated passwords once, the DNS
records to create and how to start the server. Refuses to touch an existing
configuration or data directory. As mox's quickstart, but TLS starts self-signed
(replace with real certificate files, see the printed advice) until ACME is built.
"""

import secrets
from dataclasses import dataclass
from pathlib import Path

from app.config.dnsrecords import records, zone_text
from app.config.dynamic import DynamicError, split_address, valid_account_name
from app.config.schema import toml_string
from app.config.static import parse
from app.dns.domain import Domain, DomainError
from app.store import admincmds
from app.store.admin import AdminDB

PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"  # no l/1/0 look-alikes


class QuickstartError(Exception):
    """Quickstart cannot proceed; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class Result:
    config_path: Path
    account: str
    address: str
    password: str
    admin_password: str
    hostname: str
    dns: str


def generate_password(groups: int = 4, size: int = 4) -> str:
    """An easy-to-type random password (about 80 bits for the defaults)."""
    return "-".join(
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(size)) for _ in range(groups)
    )


def account_name(local: str) -> str:
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in local.lower())
    return name if valid_account_name(name) else "user"


def config_text(hostname: str, account: str) -> str:
    """The static configuration quickstart writes: public and loopback-admin listeners."""
    public = ["smtp", "submission", "submissions", "imap", "imaps", "http", "https"]
    lines = [
        "# Written by `pillarbox quickstart`; see `pillarbox config describe` for all settings.",
        f"hostname = {toml_string(hostname)}",
        'data_dir = "data"',
        f"postmaster_account = {toml_string(account)}",
        "",
        "[listeners.public]",
        'ips = ["0.0.0.0", "::"]',
        "",
        "[listeners.public.tls]",
        "# Self-signed until you add real certificates, e.g.:",
        '# certificates = [{ cert = "/etc/pillarbox/mail.crt", key = "/etc/pillarbox/mail.key" }]',
        "self_signed = true",
    ]
    for svc in public:
        lines += ["", f"[listeners.public.{svc}]", "enabled = true"]
    lines += [
        "",
        "# Admin pages and /metrics, on loopback only: http://localhost:8080/admin/",
        "[listeners.internal]",
        'ips = ["127.0.0.1", "::1"]',
        "",
        "[listeners.internal.admin_http]",
        "enabled = true",
    ]
    return "\n".join(lines) + "\n"


def _check_inputs(email: str, hostname: str) -> tuple[str, Domain, str]:
    try:
        local, domain = split_address(email)
    except DynamicError as e:
        raise QuickstartError(str(e)) from None
    if not local:
        raise QuickstartError("give a full address, like you@example.com")
    try:
        host = Domain.parse(hostname or f"mail.{domain.ascii}").ascii
    except DomainError as e:
        raise QuickstartError(f"invalid host name: {e.reason}") from None
    return local, domain, host


def quickstart(directory: Path, email: str, hostname: str = "") -> Result:
    """Create configuration and data for ``email``; raises QuickstartError."""
    local, domain, host = _check_inputs(email, hostname)
    cfg_path = directory / "pillarbox.toml"
    data = directory / "data"
    for p in (cfg_path, data):
        if p.exists():
            raise QuickstartError(f"{p} already exists; not overwriting anything")
    account = account_name(local)
    text = config_text(host, account)
    parse(text, str(cfg_path))  # our own output must be valid
    password, admin_password = generate_password(), generate_password()
    directory.mkdir(parents=True, exist_ok=True)
    db = AdminDB(data / "admin.db")
    try:
        admincmds.run(db, "domain.add", {"domain": domain.ascii})
        r = admincmds.run(
            db,
            "account.add",
            {"account": account, "address": email, "password": password},
        )
        admincmds.run(db, "setadminpassword", {"password": admin_password})
        ds = db.snapshot().domains[domain.ascii]
        dkim = admincmds.load_dkim(db).dns(domain.ascii)
    except admincmds.CommandError as e:
        raise QuickstartError(str(e)) from None
    finally:
        db.close()
    tmp = cfg_path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(cfg_path)
    dns = zone_text(records(host, ds, dkim=dkim))
    return Result(cfg_path, account, r["address"], password, admin_password, host, dns)


def report(r: Result) -> str:
    """What quickstart prints: passwords (shown only this once), DNS, next steps."""
    return f"""Pillarbox is configured in {r.config_path.parent}.

Account {r.account}, address {r.address}
  password: {r.password}
Admin web interface (http://localhost:8080/admin/ on this machine)
  password: {r.admin_password}
These passwords are not stored anywhere readable: write them down now.

Create these DNS records (they are also on the admin pages, with a live check):

{r.dns}
The server answers for {r.hostname}: point its A/AAAA records at this machine and
get a certificate for {r.hostname}, mail.DOMAIN, autoconfig.DOMAIN and mta-sts.DOMAIN;
until then it uses a self-signed one.

Start the server:
  pillarbox --config {r.config_path} serve
or install it as a systemd service with that configuration file.
"""
