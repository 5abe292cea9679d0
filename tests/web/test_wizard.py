"""The first-run setup wizard on a fresh ``pillarbox serve``, and the DNS "check now"
button against the loopback DNS server."""

import re
import tomllib
from pathlib import Path

from app.config.dnsrecords import records
from app.config.dynamic import DomainSettings
from app.dns.domain import Domain
from app.dns.loopback import LoopbackDNSServer
from app.store.admin import AdminDB
from app.store.admincmds import load_dkim
from tests.serverproc import ServerProcess
from tests.web.helpers import Client, web_config


def setup_url(proc: ServerProcess) -> str:
    line = proc.wait_for("setup wizard waiting")
    m = re.search(r'url="?([^"\s]+)', line)
    assert m
    return m.group(1)


def test_wizard_sets_up_and_check_now_finds_missing_record(
    tmp_path: Path, dns_server: LoopbackDNSServer
) -> None:
    cfg, pa, _, _ = web_config(tmp_path, f'[dns]\nservers = ["{dns_server.address}"]\n')
    proc = ServerProcess(["serve"], config=cfg)
    try:
        proc.wait_for("pillarbox started")
        url = setup_url(proc)
        admin = f"http://127.0.0.1:{pa}"
        c = Client()
        assert "setup wizard waiting" in c.get(admin + "/admin/").body.replace(
            "<code>", ""
        ).replace("</code>", "")
        assert c.get(admin + "/admin/setup?token=wrong").status == 403
        form = c.get(url)
        assert form.status == 200 and "Set up Pillarbox" in form.body
        bad = c.post(
            admin + "/admin/setup",
            {"csrf": form.csrf, "token": url.split("token=")[1], "hostname": "mx.wiz.example",
             "address": "not-an-address", "tls": "self_signed"},
        )  # fmt: skip
        assert bad.status == 400
        done = c.post(
            admin + "/admin/setup",
            {"csrf": bad.csrf, "token": url.split("token=")[1], "hostname": "mx.wiz.example",
             "address": "me@wiz.example", "admin_password": "", "tls": "self_signed"},
        )  # fmt: skip
        assert done.status == 200, done.body
        admin_pw = re.search(r'id="admin-password">([^<]+)<', done.body)
        assert admin_pw and "10 mx.wiz.example." in done.body
        proc.wait_for("configuration applied")
        written = tomllib.loads(cfg.read_text())
        assert written["hostname"] == "mx.wiz.example"
        assert written["listeners"]["local"]["tls"] == {"self_signed": True}
        # The token is single-use.
        assert c.get(url).status == 403

        # Publish all records but the MX; the domain page's check says what is missing.
        ds = DomainSettings(Domain.parse("wiz.example"))
        admin_db = AdminDB(cfg.parent / written["data_dir"] / "admin.db")
        try:
            dkim = load_dkim(admin_db).dns("wiz.example")  # the key the wizard created
        finally:
            admin_db.close()
        assert len(dkim) == 1
        for r in records("mx.wiz.example", ds, dkim=dkim):
            if r.type != "MX":
                dns_server.add(r.name, r.type, r.value)
        page = c.get(admin + "/admin/")
        page = c.post(admin + "/admin/login", {"csrf": page.csrf, "password": admin_pw.group(1)})
        assert "Overview" in page.body
        page = c.get(admin + "/admin/domains/wiz.example")
        page = c.post(admin + "/admin/domains/wiz.example", {"csrf": page.csrf, "action": "check"})
        statuses = re.findall(r'<td><code>([^<]+)</code></td><td class="status-(\w+)">', page.body)
        missing = [name for name, status in statuses if status != "ok"]
        assert missing == ["wiz.example. MX"], statuses
        assert proc.tracebacks() == []
    finally:
        proc.stop()
