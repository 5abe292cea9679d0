"""The account interface and public endpoints of a real ``pillarbox serve``."""

import http.client
import plistlib
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth.credentials import Credentials, check_password
from app.store.admin import AdminDB
from tests.serverproc import run_cli
from tests.web.helpers import Client, WebServer, unverified, web_server

PASSWORD = "first-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    d = tmp_path_factory.mktemp("account")
    with web_server(d) as s:
        for args, stdin in [
            (["config", "domain", "add", "acct.example"], ""),
            (["config", "account", "add", "--password-stdin", "joe", "joe@acct.example"], PASSWORD),
            (["config", "alias", "add", "all@acct.example", "joe@acct.example"], ""),
        ]:
            r = run_cli(args, config=s.config, stdin=stdin + "\n")
            assert r.returncode == 0, r.stderr
        yield s


def login(server: WebServer, password: str = PASSWORD) -> tuple[Client, str]:
    c = Client()
    page = c.get(server.https + "/account/")
    page = c.post(
        server.https + "/account/login",
        {"csrf": page.csrf, "username": "Joe@acct.example", "password": password},
    )
    assert page.status == 200 and "Your account" in page.body, page.body
    return c, page.csrf


def stored_credentials(server: WebServer, account: str) -> Credentials:
    db = AdminDB(server.config.parent / "data" / "admin.db")
    try:
        raw = db.credentials(account)
    finally:
        db.close()
    assert raw is not None
    return Credentials.from_json(raw)


def test_http_redirects_account_pages_to_https(server: WebServer) -> None:
    c = Client(follow=False)
    page = c.get(server.http + "/account/?x=1")
    assert page.status == 301
    assert page.headers["Location"] == server.https + "/account/?x=1"


def test_login_shows_addresses_aliases_and_secure_cookie(server: WebServer) -> None:
    c = Client(follow=False)
    page = c.get(server.https + "/account/")
    page = c.post(
        server.https + "/account/login",
        {"csrf": page.csrf, "username": "joe@acct.example", "password": PASSWORD},
    )
    (cookie,) = [x for x in page.set_cookies if x.startswith("pb_account=")]
    assert "Secure" in cookie and "HttpOnly" in cookie
    c2, _ = login(server)
    home = c2.get(server.https + "/account/")
    assert "joe@acct.example" in home.body and "all@acct.example" in home.body


def test_wrong_password_is_refused(server: WebServer) -> None:
    c = Client()
    page = c.get(server.https + "/account/")
    page = c.post(
        server.https + "/account/login",
        {"csrf": page.csrf, "username": "joe@acct.example", "password": "wrong"},
    )
    assert page.status == 403 and "Wrong address or password" in page.body
    page = c.post(
        server.https + "/account/login",
        {"csrf": page.csrf, "username": "nobody@acct.example", "password": "wrong"},
    )
    assert page.status == 403


def test_password_change_then_only_new_password_verifies(server: WebServer) -> None:
    c, csrf = login(server)
    page = c.post(
        server.https + "/account/password",
        {
            "csrf": csrf,
            "current": PASSWORD,
            "new": "second-password-2",
            "new2": "second-password-2",
        },
    )
    assert "Password changed." in page.body
    creds = stored_credentials(server, "joe")
    assert check_password(creds, "second-password-2")
    assert not check_password(creds, PASSWORD)
    # The old session ended with the change; the new one works.
    page = c.get(server.https + "/account/")
    assert "Your account" in page.body
    page = c.post(
        server.https + "/account/password",
        {"csrf": page.csrf, "current": "second-password-2", "new": PASSWORD, "new2": PASSWORD},
    )
    assert "Password changed." in page.body


def test_logout_ends_session(server: WebServer) -> None:
    c, csrf = login(server)
    old = c.cookie("pb_account")
    c.post(server.https + "/account/logout", {"csrf": csrf})
    thief = Client()
    thief.opener.addheaders = [("Cookie", f"pb_account={old}")]
    assert "Log in to your account" in thief.get(server.https + "/account/").body


def test_mobileconfig_and_manual_settings(server: WebServer) -> None:
    c, _ = login(server)
    page = c.get(server.https + "/account/settings")
    assert "mail.acct.example" in page.body and "993" in page.body and "465" in page.body
    with c.opener.open(server.https + "/account/profile.mobileconfig") as r:
        assert r.headers["Content-Type"] == "application/x-apple-aspen-config"
        profile = plistlib.loads(r.read())
    (mail,) = profile["PayloadContent"]
    assert mail["IncomingMailServerHostName"] == "mail.acct.example"
    assert mail["IncomingMailServerPortNumber"] == 993
    assert mail["OutgoingMailServerPortNumber"] == 465
    assert mail["EmailAddress"] == "joe@acct.example"


def _get(base: str, path: str, host: str) -> tuple[int, str, bytes]:
    port = int(base.rsplit(":", 1)[1])
    ctx: ssl.SSLContext | None = unverified() if base.startswith("https") else None
    conn = (
        http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
        if ctx
        else http.client.HTTPConnection("127.0.0.1", port)
    )
    conn.request("GET", path, headers={"Host": host})
    r = conn.getresponse()
    return r.status, r.getheader("Content-Type") or "", r.read()


@pytest.mark.parametrize(
    "path",
    [
        "/mail/config-v1.1.xml?emailaddress=joe%40acct.example",
        "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=joe%40acct.example",
    ],
)
def test_thunderbird_autoconfig(server: WebServer, path: str) -> None:
    status, ctype, body = _get(server.http, path, "autoconfig.acct.example")
    assert status == 200 and ctype.startswith("application/xml")
    prov = ET.fromstring(body).find("emailProvider")
    assert prov is not None and prov.get("id") == "acct.example"
    servers = [
        (s.tag, s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
        for s in prov
        if s.tag.endswith("Server")
    ]
    assert servers == [
        ("incomingServer", "imap", "mail.acct.example", "993", "SSL"),
        ("incomingServer", "imap", "mail.acct.example", "143", "STARTTLS"),
        ("outgoingServer", "smtp", "mail.acct.example", "465", "SSL"),
        ("outgoingServer", "smtp", "mail.acct.example", "587", "STARTTLS"),
    ]
    status, _, _ = _get(server.http, "/mail/config-v1.1.xml?emailaddress=x@other.example", "x")
    assert status == 404


def test_outlook_autodiscover(server: WebServer) -> None:
    port = int(server.https.rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=unverified())
    body = (
        '<?xml version="1.0"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
        'autodiscover/outlook/requestschema/2006"><Request>'
        "<EMailAddress>joe@acct.example</EMailAddress>"
        "<AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>"
    )
    conn.request(
        "POST",
        "/Autodiscover/Autodiscover.xml",
        body=body,
        headers={"Host": "autodiscover.acct.example"},
    )
    r = conn.getresponse()
    assert r.status == 200
    root = ET.fromstring(r.read())
    ns = {"o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    protos = root.findall(".//o:Protocol", ns)
    got = {
        p.findtext("o:Type", namespaces=ns): (
            p.findtext("o:Server", namespaces=ns),
            p.findtext("o:Port", namespaces=ns),
            p.findtext("o:SSL", namespaces=ns),
        )
        for p in protos
    }
    assert got == {
        "IMAP": ("mail.acct.example", "993", "on"),
        "SMTP": ("mail.acct.example", "465", "on"),
    }


def test_mta_sts_policy(server: WebServer) -> None:
    status, ctype, body = _get(server.https, "/.well-known/mta-sts.txt", "mta-sts.acct.example")
    assert status == 200 and ctype.startswith("text/plain")
    assert body.decode().split("\r\n") == [
        "version: STSv1",
        "mode: testing",
        "mx: mail.test.example",
        "max_age: 86400",
        "",
    ]
    status, _, _ = _get(server.https, "/.well-known/mta-sts.txt", "mta-sts.unknown.example")
    assert status == 404


def test_failed_logins_are_rate_limited(tmp_path: Path) -> None:
    with web_server(tmp_path) as s:
        c = Client()
        page = c.get(s.https + "/account/")
        statuses = []
        for _ in range(11):
            page = c.post(
                s.https + "/account/login",
                {"csrf": page.csrf, "username": "x@nowhere.example", "password": "guess"},
            )
            statuses.append(page.status)
        assert statuses == [403] * 10 + [429]
        assert "Too many failed attempts" in page.body
        metrics = Client().get(s.admin + "/metrics").body
        assert 'pillarbox_auth_attempts_total{protocol="web",result="badcreds"} 10' in metrics
        assert 'pillarbox_auth_attempts_total{protocol="web",result="ratelimited"} 1' in metrics
