"""localserve: a first start initialises a local-only instance; later starts reuse it."""

import tomllib
from pathlib import Path

from app.config.static import load
from app.ops import localserve
from app.serve import services
from app.store.admin import AdminDB


def test_first_start_writes_config_certificate_account_and_admin_password(
    tmp_path: Path,
) -> None:
    d = tmp_path / "ls"
    assert localserve.initialise(d, list(services())) is True
    cfg = load(d / "pillarbox.toml")
    assert cfg.localserve and cfg.hostname == "localhost"
    lst = cfg.listeners["local"]
    assert lst.ips == ["127.0.0.1"]  # loopback only
    enabled = {
        s: lst.port(s)
        for s in ("smtp", "submission", "submissions", "imap", "imaps")
        if getattr(lst, s).enabled
    }
    assert enabled == {
        "smtp": 1025,
        "submission": 1587,
        "submissions": 1465,
        "imap": 1143,
        "imaps": 1993,
    }  # the standard ports + 1000
    assert (d / "localhost.crt").exists() and (d / "localhost.key").stat().st_mode & 0o777 == 0o600
    db = AdminDB(d / "data" / "admin.db")
    try:
        snap = db.snapshot()
        assert snap.addresses["you@localhost"] == "you" and snap.addresses["@localhost"] == "you"
        assert db.credentials("you") is not None and db.setting("admin_password") is not None
    finally:
        db.close()
    # A second start keeps everything as it is.
    before = (d / "pillarbox.toml").read_text()
    assert localserve.initialise(d, list(services())) is False
    assert (d / "pillarbox.toml").read_text() == before
    assert tomllib.loads(before)["postmaster_account"] == "you"


def test_only_implemented_services_get_a_listener(tmp_path: Path) -> None:
    text = localserve.config_text(["smtp"])
    assert "[listeners.local.smtp]" in text and "[listeners.local.imap]" not in text
