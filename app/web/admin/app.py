"""Routes of the admin interface; :func:`build` makes one bottle app per server."""

import hmac
import logging
import shutil
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import bottle

import app
from app.config.dnsrecords import Check, MTASTSPolicy, Record, check, records, zone_text
from app.config.dynamic import AccountSettings, DomainSettings
from app.config.static import STANDARD_PORTS
from app.dns.resolver import Resolver
from app.queue.store import QueueError
from app.store import admincmds
from app.web import wizard
from app.web.context import WebContext
from app.web.pages import Templates, add_static_route, form, new_app
from app.web.sessions import SessionAuth, remote_ip
from app.web.settings import mtasts_policy, set_mtasts_mode, tlsa_digests
from app.web.wizard import SetupError, SetupInput

log = logging.getLogger(__name__)

BASE = "/admin/"
NAV = [
    (BASE, "Overview"),
    (BASE + "domains", "Domains"),
    (BASE + "accounts", "Accounts"),
    (BASE + "aliases", "Aliases"),
    (BASE + "queue", "Queue"),
    (BASE + "logging", "Logging"),
]
DONE = {
    "domain-add": "Domain added.",
    "domain-rm": "Domain removed.",
    "account-add": "Account added.",
    "account-rm": "Account removed.",
    "saved": "Saved.",
    "password": "Password changed.",
    "loglevel": "Log level changed.",
    "queue": "Done.",
}


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unlimited"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)  # pragma: no cover


class AdminPages:
    """Handlers of the admin app; ``ctx`` reaches the server from handler threads."""

    def __init__(self, ctx: WebContext, setup_token: str = "") -> None:
        self.ctx = ctx
        self.auth = SessionAuth(ctx, "admin", BASE)
        self.tpl = Templates(BASE)
        self.setup_token = setup_token  # "" when the wizard is not offered

    def page(self, name: str, title: str, csrf: str, **kw: Any) -> str:
        kw.setdefault("ok", DONE.get(bottle.request.query.get("done") or "", ""))
        kw.setdefault("err", "")
        return self.tpl.render(name, title=title, nav=NAV, csrf=csrf, logout=BASE + "logout", **kw)

    def change(self, cmd: str, args: dict[str, Any], done: str, retry: Callable[[str], str]) -> str:
        """Run an admin command; on success redirect (POST-redirect-GET) with a notice,
        on an operator mistake render the page again with the reason."""
        try:
            self.ctx.command(cmd, args)
        except admincmds.CommandError as e:
            bottle.response.status = 400
            return retry(str(e))
        bottle.redirect(f"{bottle.request.path}?done={done}", 303)
        return ""  # pragma: no cover - redirect raises

    # Login.

    def login_page(self, message: str = "") -> str:
        has_password = self.ctx.admin(lambda db: db.setting(admincmds.ADMIN_PASSWORD_KEY))
        if not has_password and self.setup_token:
            return self.tpl.render("wizard_wait", title="Set up Pillarbox")
        if not has_password and not message:
            message = "No admin password is set. Run: pillarbox setadminpassword"
        return self.tpl.render(
            "login",
            title="Admin login",
            action=BASE + "login",
            token=self.auth.login_token(),
            message=message,
            ask_user=False,
            username="",
        )

    def login(self) -> str:
        self.auth.check_login_token()
        stored = self.ctx.admin(lambda db: db.setting(admincmds.ADMIN_PASSWORD_KEY))
        result = self.ctx.check_login(remote_ip(), stored, form("password", strip=False))
        if not result.ok or stored is None:
            bottle.response.status = 429 if result.limited else 403
            msg = "Too many failed attempts; try later." if result.limited else "Wrong password."
            return self.login_page(msg)
        self.auth.start("")
        log.info("admin login", extra={"remote_ip": remote_ip()})
        bottle.redirect(BASE, 303)
        return ""  # pragma: no cover

    def logout(self) -> None:
        self.auth.require()
        self.auth.end()
        bottle.redirect(BASE, 303)

    # First-run setup.

    def _setup_allowed(self, token: str) -> bool:
        if not self.setup_token or not token:
            return False
        if not hmac.compare_digest(token.encode(), self.setup_token.encode()):
            return False
        return not self.ctx.admin(lambda db: db.setting(admincmds.ADMIN_PASSWORD_KEY))

    def setup_form(self, err: str = "", **values: str) -> str:
        token = str(bottle.request.query.get("token") or form("token"))
        if not self._setup_allowed(token):
            bottle.abort(403, "setup link expired or wrong; see the server log")
        defaults: dict[str, Any] = {"hostname": self.ctx.services.config.hostname, "address": "", "tls": "",
                    "cert": "", "key": ""}  # fmt: skip
        defaults.update(values)
        return self.tpl.render(
            "wizard", title="Set up Pillarbox", token=token, err=err,
            csrf=self.auth.login_token(), **defaults,
        )  # fmt: skip

    def setup(self) -> str:
        self.auth.check_login_token()
        if not self._setup_allowed(form("token")):
            bottle.abort(403, "setup link expired or wrong; see the server log")
        inp = SetupInput(
            form("hostname"), form("address"), form("admin_password", strip=False),
            form("tls"), form("cert"), form("key"),
        )  # fmt: skip
        try:
            result = wizard.run(self.ctx, inp)
        except SetupError as e:
            bottle.response.status = 400
            return self.setup_form(
                str(e), hostname=inp.hostname, address=inp.address, tls=inp.tls,
                cert=inp.cert, key=inp.key,
            )  # fmt: skip
        self.setup_token = ""
        bottle.response.set_header("Cache-Control", "no-store")
        return self.tpl.render("wizard_done", title="Pillarbox is set up", r=result)

    # Overview.

    def overview(self) -> str:
        s = self.auth.current()
        if s is None:
            return self.login_page()
        svc = self.ctx.services
        cfg = svc.config
        listeners = [
            (
                name,
                ", ".join(lst.ips),
                ", ".join(f"{x} {lst.port(x)}" for x in STANDARD_PORTS if getattr(lst, x).enabled),
            )
            for name, lst in cfg.listeners.items()
        ]
        du = shutil.disk_usage(svc.data_dir)
        disk = (
            f"{human_bytes(du.used)} used of {human_bytes(du.total)}, {human_bytes(du.free)} free"
        )
        names = sorted(svc.dynamic.accounts)

        async def usage() -> list[tuple[str, int, str, str]]:
            rows = []
            for n in names:
                q = (await svc.accounts.get(n)).quota_usage()
                rows.append((n, q.messages, human_bytes(q.usage), human_bytes(q.limit)))
            return rows

        return self.page(
            "admin_overview",
            "Overview",
            s.csrf,
            version=app.__version__,
            hostname=cfg.hostname,
            data_dir=str(svc.data_dir),
            disk=disk,
            listeners=listeners,
            accounts=self.ctx.run(usage()),
        )

    # Domains.

    def domains(self, err: str = "") -> str:
        s = self.auth.require()
        doms = sorted(self.ctx.services.dynamic.domains.values(), key=lambda d: d.name.ascii)
        return self.page("admin_domains", "Domains", s.csrf, domains=doms, err=err)

    def domains_post(self) -> str:
        self.auth.require()
        action = form("action")
        if action == "add":
            args = {
                "domain": form("domain"),
                "client_settings_domain": form("client_settings_domain"),
                "description": form("description"),
            }
            return self.change("domain.add", args, "domain-add", self.domains)
        if action == "rm":
            return self.change("domain.rm", {"domain": form("domain")}, "domain-rm", self.domains)
        bottle.abort(400, "unknown action")
        return ""  # pragma: no cover

    def domain(self, name: str, err: str = "", checks: list[Check] | None = None) -> str:
        s = self.auth.require()
        svc = self.ctx.services
        dyn = svc.dynamic
        d = dyn.domains.get(name)
        if d is None:
            bottle.abort(404, "no such domain")
        assert d is not None
        policy = self.ctx.admin(lambda db: mtasts_policy(db, svc.config, d.name.ascii))
        suffix = "@" + d.name.ascii
        addresses = [(a, acc) for a, acc in sorted(dyn.addresses.items()) if a.endswith(suffix)]
        addresses += [
            (a, "alias: " + ", ".join(al.members))
            for a, al in sorted(dyn.aliases.items())
            if a.endswith(suffix)
        ]
        recs = self.records(d, policy)
        return self.page(
            "admin_domain",
            d.name.unicode,
            s.csrf,
            d=d,
            err=err,
            catchall=dyn.addresses.get(suffix, ""),
            mtasts_mode=policy.mode,
            addresses=addresses,
            accounts=sorted(dyn.accounts),
            records_text=zone_text(recs),
            checks=checks or [],
        )

    def domain_post(self, name: str) -> str:
        self.auth.require()
        d = self.ctx.services.dynamic.domains.get(name)
        if d is None:
            bottle.abort(404, "no such domain")
        assert d is not None
        action = form("action")
        retry: Callable[[str], str] = lambda e: self.domain(name, e)  # noqa: E731
        if action == "catchall":
            return self.set_catchall(name, form("account"), retry)
        if action == "mtasts":
            try:
                self.ctx.admin(lambda db: set_mtasts_mode(db, d.name.ascii, form("mode")))
            except ValueError as e:
                return retry(str(e))
            bottle.redirect(f"{bottle.request.path}?done=saved", 303)
        if action == "check":
            return self.domain(name, checks=self.dns_check(name))
        bottle.abort(400, "unknown action")
        return ""  # pragma: no cover

    def set_catchall(self, domain: str, account: str, retry: Callable[[str], str]) -> str:
        key = "@" + domain
        current = self.ctx.services.dynamic.addresses.get(key)
        try:
            if current:
                self.ctx.command("address.rm", {"address": key})
            if account:
                self.ctx.command("address.add", {"address": key, "account": account})
        except admincmds.CommandError as e:
            bottle.response.status = 400
            return retry(str(e))
        bottle.redirect(f"{bottle.request.path}?done=saved", 303)
        return ""  # pragma: no cover

    def records(self, d: DomainSettings, policy: MTASTSPolicy) -> list[Record]:
        """Suggested records, with TLSA for the certificates of SMTP listeners."""
        svc = self.ctx.services
        paths = [
            info.cert_path
            for name, lst in svc.config.listeners.items()
            if lst.smtp.enabled and name in svc.certs
            for info in svc.certs[name].infos
        ]
        return records(
            svc.config.hostname,
            d,
            mtasts=policy,
            tlsa_sha256=tlsa_digests(paths),
            dkim=svc.dkim.dns(d.name.ascii),
        )

    def dns_check(self, name: str) -> list[Check]:
        svc = self.ctx.services
        d = svc.dynamic.domains[name]
        policy = self.ctx.admin(lambda db: mtasts_policy(db, svc.config, d.name.ascii))
        recs = self.records(d, policy)

        async def run() -> list[Check]:
            r = Resolver(svc.config.dns.servers, timeout=svc.config.dns.timeout)
            return await check(r, recs)

        return self.ctx.run(run(), timeout=svc.config.dns.timeout * len(recs) + 5)

    # Accounts.

    def accounts(self, err: str = "") -> str:
        s = self.auth.require()
        accs = sorted(self.ctx.services.dynamic.accounts.values(), key=lambda a: a.name)
        return self.page("admin_accounts", "Accounts", s.csrf, accounts=accs, err=err)

    def accounts_post(self) -> str:
        self.auth.require()
        action = form("action")
        if action == "add":
            try:
                quota = int(form("quota") or "0")
            except ValueError:
                return self.accounts("quota must be a number of bytes")
            args = {
                "account": form("account"),
                "address": form("address"),
                "password": form("password", strip=False),
                "quota": quota,
            }
            return self.change("account.add", args, "account-add", self.accounts)
        if action == "rm":
            args = {"account": form("account")}
            return self.change("account.rm", args, "account-rm", self.accounts)
        bottle.abort(400, "unknown action")
        return ""  # pragma: no cover

    def _account(self, name: str) -> AccountSettings:
        a = self.ctx.services.dynamic.accounts.get(name)
        if a is None:
            bottle.abort(404, "no such account")
        assert a is not None
        return a

    def account(self, name: str, err: str = "") -> str:
        s = self.auth.require()
        a = self._account(name)
        svc = self.ctx.services

        async def usage() -> str:
            q = (await svc.accounts.get(name)).quota_usage()
            return f"{human_bytes(q.usage)} of {human_bytes(q.limit)}, {q.messages} messages"

        return self.page("admin_account", a.name, s.csrf, a=a, usage=self.ctx.run(usage()), err=err)

    def account_post(self, name: str) -> str:
        self.auth.require()
        self._account(name)
        action = form("action")
        retry: Callable[[str], str] = lambda e: self.account(name, e)  # noqa: E731
        if action == "password":
            args = {"account": name, "password": form("password", strip=False)}
            return self.change("setaccountpassword", args, "password", retry)
        if action == "quota":
            try:
                quota = int(form("quota"))
            except ValueError:
                return retry("quota must be a number of bytes")
            return self.change("account.quota", {"account": name, "quota": quota}, "saved", retry)
        if action == "address-add":
            args = {"address": form("address"), "account": name}
            return self.change("address.add", args, "saved", retry)
        if action == "address-rm":
            return self.change("address.rm", {"address": form("address")}, "saved", retry)
        bottle.abort(400, "unknown action")
        return ""  # pragma: no cover

    # Aliases.

    def aliases(self, err: str = "") -> str:
        s = self.auth.require()
        als = sorted(self.ctx.services.dynamic.aliases.values(), key=lambda a: a.address)
        return self.page("admin_aliases", "Aliases and lists", s.csrf, aliases=als, err=err)

    def aliases_post(self) -> str:
        self.auth.require()
        action = form("action")
        alias = form("alias")
        if action == "add":
            members = [m.strip() for m in form("members").split(",") if m.strip()]
            args: dict[str, Any] = {
                "alias": alias,
                "members": members,
                "post_public": bool(form("post_public")),
                "list_members": bool(form("list_members")),
            }
            return self.change("alias.add", args, "saved", self.aliases)
        if action == "rm":
            return self.change("alias.rm", {"alias": alias}, "saved", self.aliases)
        if action in ("addmember", "rmmember"):
            args = {"alias": alias, "members": [form("member")]}
            return self.change(f"alias.{action}", args, "saved", self.aliases)
        bottle.abort(400, "unknown action")
        return ""  # pragma: no cover


class QueuePages:
    """The outgoing queue: list, hold, release, retry now, drop (as `pillarbox queue`)."""

    ACTIONS: ClassVar[Mapping[str, tuple[str, Mapping[str, Any]]]] = {
        "hold": ("queue.hold", {}),
        "unhold": ("queue.unhold", {}),
        "retry": ("queue.schedule", {"now": True, "duration": 0}),
        "drop": ("queue.drop", {}),
    }

    def __init__(self, pages: AdminPages) -> None:
        self.p = pages

    def _ctl(self, cmd: str, args: dict[str, Any]) -> Any:
        queue = self.p.ctx.services.queue
        if queue is None:
            raise QueueError("the outgoing queue is not running")
        return self.p.ctx.run(queue.ctl(cmd, args))

    def show(self, err: str = "") -> str:
        s = self.p.auth.require()
        try:
            entries = self._ctl("queue.list", {})
        except QueueError as e:
            entries, err = [], err or str(e)
        return self.p.page("admin_queue", "Outgoing queue", s.csrf, entries=entries, err=err)

    def post(self) -> str:
        self.p.auth.require()
        action = self.ACTIONS.get(form("action"))
        if action is None:
            bottle.abort(400, "unknown action")
            return ""  # pragma: no cover
        try:
            ids = [int(form("id"))]
        except ValueError:
            return self.show("invalid queue id")
        cmd, extra = action
        try:
            self._ctl(cmd, {"ids": ids, **extra})
        except QueueError as e:
            bottle.response.status = 400
            return self.show(str(e))
        bottle.redirect(f"{bottle.request.path}?done=queue", 303)
        return ""  # pragma: no cover


class LoggingPages:
    """Log levels per package, changed at once on the running server."""

    def __init__(self, pages: AdminPages) -> None:
        self.p = pages

    def show(self, err: str = "") -> str:
        s = self.p.auth.require()
        rows = self.p.ctx.admin(lambda db: admincmds.loglevel_list(db, {}))
        return self.p.page(
            "admin_logging", "Logging", s.csrf, rows=rows, levels=admincmds.LEVELS, err=err
        )

    def post(self) -> str:
        self.p.auth.require()
        pkg = form("package")
        args = {"package": "" if pkg == "(all)" else pkg, "level": form("level")}
        return self.p.change("loglevel.set", args, "loglevel", self.show)


def build(ctx: WebContext, setup_token: str = "") -> Any:
    """The admin bottle app for one server; ``setup_token`` enables the setup wizard."""
    web = new_app()
    p = AdminPages(ctx, setup_token)
    web.get(BASE + "setup", callback=lambda: p.setup_form())
    web.post(BASE + "setup", callback=p.setup)
    add_static_route(web, BASE + "static/")
    web.get(BASE, callback=p.overview)
    web.post(BASE + "login", callback=p.login)
    web.post(BASE + "logout", callback=p.logout)
    web.get(BASE + "domains", callback=lambda: p.domains())
    web.post(BASE + "domains", callback=p.domains_post)
    web.get(BASE + "domains/<name>", callback=lambda name: p.domain(name))
    web.post(BASE + "domains/<name>", callback=p.domain_post)
    web.get(BASE + "accounts", callback=lambda: p.accounts())
    web.post(BASE + "accounts", callback=p.accounts_post)
    web.get(BASE + "accounts/<name>", callback=lambda name: p.account(name))
    web.post(BASE + "accounts/<name>", callback=p.account_post)
    web.get(BASE + "aliases", callback=lambda: p.aliases())
    web.post(BASE + "aliases", callback=p.aliases_post)
    qp = QueuePages(p)
    web.get(BASE + "queue", callback=lambda: qp.show())
    web.post(BASE + "queue", callback=qp.post)
    lp = LoggingPages(p)
    web.get(BASE + "logging", callback=lambda: lp.show())
    web.post(BASE + "logging", callback=lp.post)
    return web
