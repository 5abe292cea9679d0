"""Small units of the web platform: metrics text format, session store, localserve."""

import time
from pathlib import Path

import pytest

from app.metrics import MetricError, Metrics, Registry
from app.ops.localserve import config_text
from app.store import sessions
from app.store.admin import AdminDB
from app.web.pages import static_file
from app.web.wizard import toml_dump


def test_metrics_text_format() -> None:
    m = Metrics()
    m.connections.inc(service="imaps")
    m.connections.inc(2, service="imaps")
    m.deliveries.inc(result='odd"name\n')
    m.queue_size.set(7)
    m.auth_attempts.inc(protocol="web", result="ok")
    text = m.render()
    assert 'pillarbox_connections_total{service="imaps"} 3' in text
    assert 'pillarbox_deliveries_total{result="odd\\"name\\n"} 1' in text
    assert "# TYPE pillarbox_queue_size gauge\npillarbox_queue_size 7" in text
    assert text.endswith("\n")
    with pytest.raises(MetricError):
        m.connections.inc(wrong="x")
    with pytest.raises(MetricError):
        m.connections.inc(-1, service="x")
    r = Registry()
    r.counter("a", "A")
    with pytest.raises(MetricError):
        r.gauge("a", "again")


def test_session_store_hashes_ids_and_expires(tmp_path: Path) -> None:
    db = AdminDB(tmp_path / "admin.db")
    try:
        sid, s = sessions.create(db, "account", "joe")
        assert sessions.lookup(db, sid, "account") == s
        assert sessions.lookup(db, sid, "admin") is None  # kinds do not mix
        raw = db.db.execute("SELECT id_hash FROM sessions").fetchall()
        assert sid not in str(raw)
        sessions.delete(db, sid)
        assert sessions.lookup(db, sid, "account") is None
        old, _ = sessions.create(db, "admin", "", lifetime=-1)
        assert sessions.lookup(db, old, "admin") is None
        a, _ = sessions.create(db, "account", "joe")
        b, _ = sessions.create(db, "account", "joe")
        assert sessions.delete_subject(db, "account", "joe") == 2
        assert (
            sessions.lookup(db, a, "account") is None and sessions.lookup(db, b, "account") is None
        )
        assert time.time() < s.expires
    finally:
        db.close()


@pytest.mark.parametrize(
    "name",
    [
        "../__init__.py",
        "..",
        ".hidden.css",
        "x/../style.css",
        "style.css/",
        "STYLE.CSS",
        "style.py",
    ],
)
def test_static_resolver_refuses_anything_but_plain_names(name: str) -> None:
    assert static_file(name) is None


def test_static_resolver_serves_css() -> None:
    found = static_file("style.css")
    assert found is not None and found[1] == "text/css; charset=utf-8"


def test_localserve_serves_admin_on_the_plain_http_port() -> None:
    text = config_text(["admin_http", "https", "http", "smtp"])
    assert "[listeners.local.admin_http]\nenabled = true\nport = 1080" in text
    assert "[listeners.local.https]\nenabled = true\nport = 1443" in text
    assert "[listeners.local.http]" not in text


def test_toml_dump_round_trips() -> None:
    import tomllib

    table = {
        "hostname": "mx.example",
        "n": 3,
        "listeners": {
            "a b": {"ips": ["127.0.0.1"], "tls": {"certificates": [{"cert": "c", "key": "k"}]}}
        },
    }
    assert tomllib.loads(toml_dump(table)) == table


def test_tlsa_digest_matches_openssl(tmp_path: Path) -> None:
    import hashlib
    import shutil
    import subprocess

    from app.tls.certs import generate_self_signed
    from app.web.settings import tlsa_digests

    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed (the CI script installs it)"
    generate_self_signed(["mx.example"], tmp_path / "c.crt", tmp_path / "c.key")
    pem = subprocess.run(
        [openssl, "x509", "-in", str(tmp_path / "c.crt"), "-noout", "-pubkey"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-outform", "DER"], input=pem, capture_output=True, check=True
    ).stdout
    missing = str(tmp_path / "missing.crt")
    assert tlsa_digests([str(tmp_path / "c.crt"), missing]) == [hashlib.sha256(der).hexdigest()]
