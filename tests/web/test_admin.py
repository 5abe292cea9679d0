"""The admin interface of a real ``pillarbox serve``: login, CSRF, logout, changes."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import run_cli
from tests.web.helpers import Client, WebServer, web_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    with web_server(tmp_path_factory.mktemp("admin")) as s:
        yield s


def login(server: WebServer, password: str = "admin-pw") -> tuple[Client, str]:
    c = Client()
    page = c.get(server.admin + "/admin/")
    assert page.status == 200 and "Admin login" in page.body
    page = c.post(server.admin + "/admin/login", {"csrf": page.csrf, "password": password})
    assert page.status == 200, page.body
    assert "Overview" in page.body
    return c, page.csrf


def test_login_sets_strict_httponly_cookie(server: WebServer) -> None:
    c = Client(follow=False)
    page = c.get(server.admin + "/admin/")
    page = c.post(server.admin + "/admin/login", {"csrf": page.csrf, "password": "admin-pw"})
    assert page.status == 303
    (cookie,) = [c for c in page.set_cookies if c.startswith("pb_admin=")]
    assert "pb_admin=" in cookie and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/admin/" in cookie
    assert "Secure" not in cookie  # plain HTTP admin listener


def test_wrong_password_and_missing_login_token(server: WebServer) -> None:
    c = Client()
    page = c.get(server.admin + "/admin/")
    bad = c.post(server.admin + "/admin/login", {"csrf": page.csrf, "password": "nope"})
    assert bad.status == 403 and "Wrong password" in bad.body
    no_token = Client().post(server.admin + "/admin/login", {"password": "admin-pw"})
    assert no_token.status == 403


def test_post_without_csrf_token_is_403(server: WebServer) -> None:
    c, _ = login(server)
    r = c.post(server.admin + "/admin/domains", {"action": "add", "domain": "nocsrf.example"})
    assert r.status == 403
    for wrong in ("wrong", "ünïcode"):
        r = c.post(
            server.admin + "/admin/domains",
            {"action": "add", "domain": "nocsrf.example", "csrf": wrong},
        )
        assert r.status == 403
    assert "nocsrf.example" not in c.get(server.admin + "/admin/domains").body


def test_logout_makes_old_cookie_useless(server: WebServer) -> None:
    c, csrf = login(server)
    old = c.cookie("pb_admin")
    assert old
    page = c.post(server.admin + "/admin/logout", {"csrf": csrf})
    assert "Admin login" in page.body
    thief = Client()
    thief.opener.addheaders = [("Cookie", f"pb_admin={old}")]
    page = thief.get(server.admin + "/admin/domains")
    assert "Admin login" in page.body  # redirected to the login page


def test_add_domain_account_alias_through_forms(server: WebServer) -> None:
    c, csrf = login(server)
    page = c.post(
        server.admin + "/admin/domains",
        {"csrf": csrf, "action": "add", "domain": "forms.example", "client_settings_domain": ""},
    )
    assert page.status == 200 and "Domain added." in page.body
    assert "mail.forms.example" in page.body
    page = c.post(
        server.admin + "/admin/accounts",
        {
            "csrf": csrf,
            "action": "add",
            "account": "alice",
            "address": "alice@forms.example",
            "password": "alice-secret-1",
            "quota": "1000000",
        },
    )
    assert "Account added." in page.body and "alice@forms.example" in page.body
    page = c.post(
        server.admin + "/admin/aliases",
        {
            "csrf": csrf,
            "action": "add",
            "alias": "team@forms.example",
            "members": "alice@forms.example",
        },
    )
    assert "team@forms.example" in page.body
    page = c.post(
        server.admin + "/admin/domains/forms.example",
        {"csrf": csrf, "action": "catchall", "account": "alice"},
    )
    assert "Saved." in page.body
    # The same state through the CLI, which asks the running server.
    accounts = json.loads(
        run_cli(["config", "account", "list", "--json"], config=server.config).stdout
    )
    assert accounts[0]["addresses"] == ["@forms.example", "alice@forms.example"]
    assert accounts[0]["quota"] == 1000000
    # Mistakes are explained, not a traceback.
    page = c.post(
        server.admin + "/admin/accounts",
        {"csrf": csrf, "action": "add", "account": "bob", "address": "bob@unknown.example"},
    )
    assert page.status == 400 and "unknown.example is not configured" in page.body
    overview = c.get(server.admin + "/admin/")
    assert "alice" in overview.body and "976.6 KiB" in overview.body
    assert server.proc.tracebacks() == []


def test_domain_page_shows_dns_records_and_escapes(server: WebServer, tmp_path: Path) -> None:
    c, csrf = login(server)
    c.post(
        server.admin + "/admin/domains",
        {
            "csrf": csrf,
            "action": "add",
            "domain": "dns.example",
            "description": "<script>x</script>",
        },
    )
    page = c.get(server.admin + "/admin/domains")
    assert "<script>x</script>" not in page.body and "&lt;script&gt;" in page.body
    page = c.get(server.admin + "/admin/domains/dns.example")
    assert "_mta-sts.dns.example." in page.body and "v=DMARC1" in page.body


def test_metrics_endpoint(server: WebServer) -> None:
    c = Client()
    c.get(server.admin + "/admin/")
    text = c.get(server.admin + "/metrics").body
    assert "# TYPE pillarbox_http_requests_total counter" in text
    assert 'pillarbox_http_requests_total{code="200",listener="local"}' not in text  # label order
    assert 'pillarbox_http_requests_total{listener="local",code="200"}' in text
    assert 'pillarbox_connections_total{service="admin_http"}' in text


def test_log_levels_change_at_once_on_the_running_server(server: WebServer) -> None:
    c, _ = login(server)
    page = c.get(server.admin + "/admin/logging")
    assert page.status == 200 and "<code>smtp</code>" in page.body
    page = c.post(
        server.admin + "/admin/logging", {"csrf": page.csrf, "package": "smtp", "level": "debug"}
    )
    assert "Log level changed." in page.body
    # The CLI asks the running server: its smtp logger is now at debug.
    r = run_cli(["config", "loglevel", "list", "--json"], config=server.config)
    levels = {x["package"]: (x["level"], x["set"]) for x in json.loads(r.stdout)}
    assert levels["smtp"] == ("debug", True) and levels["imap"][1] is False
    page = c.post(
        server.admin + "/admin/logging", {"csrf": page.csrf, "package": "smtp", "level": "loud"}
    )
    assert page.status == 400 and "level must be one of" in page.body
    r = run_cli(["config", "loglevel", "set", "default", "--package", "smtp"], config=server.config)
    assert r.returncode == 0
