"""Routes of the account interface; :func:`build` makes one bottle app per server.

The session subject is the account name; the address used to log in is kept only
to fill in client settings. A password change goes through the same admin command
as ``pillarbox setaccountpassword``, so IMAP and SMTP see only the new password.
"""

import logging
from typing import Any

import bottle

from app.config.dynamic import split_address
from app.store import admincmds
from app.store import sessions as session_store
from app.web.admin.app import human_bytes
from app.web.clientconfig import client_settings, mobileconfig
from app.web.context import WebContext
from app.web.pages import Templates, add_static_route, form, new_app
from app.web.sessions import SessionAuth, remote_ip

log = logging.getLogger(__name__)

BASE = "/account/"
NAV = [(BASE, "Account"), (BASE + "settings", "Client settings")]


class AccountPages:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx
        self.auth = SessionAuth(ctx, "account", BASE)
        self.tpl = Templates(BASE)

    def resolve(self, email: str) -> str | None:
        """The account that owns exactly the configured address ``email``."""
        return self.ctx.services.dynamic.account_of_address(email)

    def login_page(self, message: str = "", username: str = "") -> str:
        return self.tpl.render(
            "login",
            title="Log in to your account",
            action=BASE + "login",
            token=self.auth.login_token(),
            message=message,
            ask_user=True,
            username=username,
        )

    def login(self) -> str:
        self.auth.check_login_token()
        email = form("username")
        account = self.resolve(email)
        stored = self.ctx.admin(lambda db: db.credentials(account)) if account else None
        result = self.ctx.check_login(remote_ip(), stored, form("password", strip=False))
        if not result.ok or account is None:
            bottle.response.status = 429 if result.limited else 403
            msg = (
                "Too many failed attempts; try later."
                if result.limited
                else "Wrong address or password."
            )
            return self.login_page(msg, email)
        self.auth.start(account)
        log.info("account login", extra={"remote_ip": remote_ip(), "account": account})
        bottle.redirect(BASE, 303)
        return ""  # pragma: no cover

    def logout(self) -> None:
        self.auth.require()
        self.auth.end()
        bottle.redirect(BASE, 303)

    def _email(self, account: str) -> str:
        addrs = [a for a in self.ctx.services.dynamic.accounts[account].addresses if a[:1] != "@"]
        return addrs[0] if addrs else ""

    def home(self, ok: str = "", err: str = "") -> str:
        s = self.auth.current()
        if s is None or s.subject not in self.ctx.services.dynamic.accounts:
            return self.login_page()
        svc = self.ctx.services
        acc = svc.dynamic.accounts[s.subject]
        mine = set(acc.addresses)
        aliases = [a.address for a in svc.dynamic.aliases.values() if mine & set(a.members)]

        async def usage() -> str:
            q = (await svc.accounts.get(acc.name)).quota_usage()
            return f"{human_bytes(q.usage)} of {human_bytes(q.limit)}, {q.messages} messages"

        if bottle.request.query.get("done") == "password" and not ok:
            ok = "Password changed."
        return self.tpl.render(
            "account_home",
            title="Your account",
            nav=NAV,
            csrf=s.csrf,
            logout=BASE + "logout",
            account=acc.name,
            usage=self.ctx.run(usage()),
            addresses=list(acc.addresses),
            aliases=sorted(aliases),
            ok=ok,
            err=err,
        )

    def change_password(self) -> str:
        s = self.auth.require()
        new = form("new", strip=False)
        if new != form("new2", strip=False):
            return self.home(err="The new passwords differ.")
        if len(new) < 8:
            return self.home(err="Use at least 8 characters.")
        stored = self.ctx.admin(lambda db: db.credentials(s.subject))
        if not self.ctx.check_login(remote_ip(), stored, form("current", strip=False)).ok:
            bottle.response.status = 403
            return self.home(err="The current password is wrong.")
        try:
            self.ctx.command("setaccountpassword", {"account": s.subject, "password": new})
        except admincmds.CommandError as e:
            return self.home(err=str(e))
        # Other sessions of this account end; this one goes on with a new id.
        self.ctx.admin(lambda db: session_store.delete_subject(db, "account", s.subject))
        self.auth.start(s.subject)
        log.info("account password changed", extra={"account": s.subject})
        bottle.redirect(BASE + "?done=password", 303)
        return ""  # pragma: no cover

    def _client(self) -> tuple[str, Any]:
        s = self.auth.require()
        svc = self.ctx.services
        email = self._email(s.subject)
        _, d = split_address(email)
        cs = client_settings(svc.config, svc.dynamic.domains[d.ascii])
        return email, cs

    def settings(self) -> str:
        s = self.auth.require()
        email, cs = self._client()
        return self.tpl.render(
            "account_settings",
            title="Mail client settings",
            nav=NAV,
            csrf=s.csrf,
            logout=BASE + "logout",
            email=email,
            cs=cs,
        )

    def profile(self) -> bytes:
        email, cs = self._client()
        acc = self.ctx.services.dynamic.accounts[self.auth.require().subject]
        bottle.response.content_type = "application/x-apple-aspen-config"
        name = email.replace("@", "-at-").replace('"', "")
        bottle.response.set_header(
            "Content-Disposition", f'attachment; filename="{name}.mobileconfig"'
        )
        return mobileconfig(cs, email, acc.full_name)


def build(ctx: WebContext) -> Any:
    """The account bottle app for one server."""
    web = new_app()
    p = AccountPages(ctx)
    add_static_route(web, BASE + "static/")
    web.get(BASE, callback=lambda: p.home())
    web.post(BASE + "login", callback=p.login)
    web.post(BASE + "logout", callback=p.logout)
    web.post(BASE + "password", callback=p.change_password)
    web.get(BASE + "settings", callback=p.settings)
    web.get(BASE + "profile.mobileconfig", callback=p.profile)
    return web
