"""``pillarbox localserve``: a local-only instance for trying Pillarbox and testing software.

The first start initialises a directory with a configuration file, a self-signed
certificate and the account ``you@localhost`` (password ``pillarbox``). Everything
listens on loopback only, on the standard ports plus 1000; the admin pages are at
http://localhost:1080/admin/ (password ``pillarbox``), the account pages at
https://localhost:1443/account/.
"""

from pathlib import Path

from app.config.schema import toml_string
from app.store import admincmds
from app.store.admin import AdminDB
from app.tls.certs import generate_self_signed

ACCOUNT = "you"
ADDRESS = "you@localhost"
PASSWORD = "pillarbox"
ADMIN_PASSWORD = "pillarbox"
PORT_OFFSET = 1000
PORTS = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    # Port 1080 is admin_http, not http: it serves /admin/ and /metrics as well as
    # everything the public http service does (autoconfig, MTA-STS, redirects to
    # https for /account/), so a local instance needs one plain-HTTP port, as in mox.
    "admin_http": 80,
    "https": 443,
}


def default_dir() -> Path:
    return Path.home() / ".config" / "pillarbox-localserve"


def config_text(services: list[str]) -> str:
    """The configuration localserve writes: loopback, ports + 1000, self-signed TLS."""
    lines = [
        "# Written by `pillarbox localserve`: a local-only instance for testing.",
        'hostname = "localhost"',
        'data_dir = "data"',
        "localserve = true",
        f"postmaster_account = {toml_string(ACCOUNT)}",
        "",
        "[log]",
        'level = "info"',
        "",
        "[listeners.local]",
        'ips = ["127.0.0.1"]',
        "",
        "[listeners.local.tls]",
        'certificates = [{ cert = "localhost.crt", key = "localhost.key" }]',
    ]
    for name in services:
        if name in PORTS:
            lines += [
                "",
                f"[listeners.local.{name}]",
                "enabled = true",
                f"port = {PORTS[name] + PORT_OFFSET}",
            ]
    return "\n".join(lines) + "\n"


def initialise(directory: Path, services: list[str]) -> bool:
    """Create config, certificate, account and admin password; False if already there."""
    cfg = directory / "pillarbox.toml"
    if cfg.exists():
        return False
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    generate_self_signed(["localhost"], directory / "localhost.crt", directory / "localhost.key")
    db = AdminDB(directory / "data" / "admin.db")
    try:
        admincmds.run(db, "domain.add", {"domain": "localhost"})
        admincmds.run(
            db, "account.add", {"account": ACCOUNT, "address": ADDRESS, "password": PASSWORD}
        )
        db.change(lambda b: b.add_address("@localhost", ACCOUNT))  # catch-all, as mox
        admincmds.run(db, "setadminpassword", {"password": ADMIN_PASSWORD})
    finally:
        db.close()
    tmp = cfg.with_suffix(".tmp")
    tmp.write_text(config_text(services))
    tmp.replace(cfg)
    return True
