"""Login sessions and CSRF protection for the bottle apps.

* The session cookie holds a random id, ``HttpOnly``, ``SameSite=Strict``, ``Secure``
  when the request came over HTTPS, scoped to the app's path; the server keeps its
  hash, kind, subject, CSRF token and expiry (:mod:`app.store.sessions`).
* Every state-changing request (any method but GET/HEAD) must carry the session's
  CSRF token in the form field ``csrf``; otherwise 403.
* The login form is protected by a double-submit token: a short-lived cookie and
  the same value in the form.
* Logout deletes the session server-side, so an old cookie is useless afterwards.
"""

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import bottle

from app.store import sessions as store
from app.store.sessions import Session
from app.web.context import WebContext
from app.web.pages import form

SAFE_METHODS = frozenset({"GET", "HEAD"})


def is_https() -> bool:
    return bool(bottle.request.environ.get("wsgi.url_scheme") == "https")


def remote_ip() -> str:
    return str(bottle.request.environ.get("REMOTE_ADDR", ""))


@dataclass(frozen=True, slots=True)
class SessionAuth:
    """Sessions of one kind (``admin`` or ``account``) under one URL path."""

    ctx: WebContext
    kind: str
    path: str  # cookie path, e.g. "/admin/"

    @property
    def cookie(self) -> str:
        return f"pb_{self.kind}"

    @property
    def login_cookie(self) -> str:
        return f"pb_{self.kind}_login"

    def _set(self, name: str, value: str, max_age: int | None = None) -> None:
        opts: dict[str, Any] = {
            "path": self.path,
            "httponly": True,
            "samesite": "strict",
            "secure": is_https(),
        }
        if max_age is not None:
            opts["max_age"] = max_age
        bottle.response.set_cookie(name, value, **opts)

    def current(self) -> Session | None:
        """The session of this request, if its cookie names a live one."""
        sid = bottle.request.get_cookie(self.cookie)
        if not sid:
            return None
        return self.ctx.admin(lambda db: store.lookup(db, sid, self.kind))

    def require(self) -> Session:
        """The session, or a redirect to the login page; checks CSRF on changes."""
        s = self.current()
        if s is None:
            if bottle.request.method in SAFE_METHODS:
                bottle.redirect(self.path)
            bottle.abort(403, "not logged in")
        assert s is not None
        self.check_csrf(s.csrf)
        return s

    def check_csrf(self, expected: str) -> None:
        if bottle.request.method in SAFE_METHODS:
            return
        got = form("csrf")
        if not got or not expected or not hmac.compare_digest(got.encode(), expected.encode()):
            bottle.abort(403, "missing or wrong CSRF token; reload the page and try again")

    def login_token(self) -> str:
        """A fresh token for the login form, also set as a cookie (double submit)."""
        token = secrets.token_urlsafe(24)
        self._set(self.login_cookie, token, max_age=3600)
        return token

    def check_login_token(self) -> None:
        cookie = bottle.request.get_cookie(self.login_cookie) or ""
        self.check_csrf(cookie)

    def start(self, subject: str) -> Session:
        """Create a session after a successful login and set its cookie."""
        sid, s = self.ctx.admin(lambda db: store.create(db, self.kind, subject))
        self._set(self.cookie, sid)
        bottle.response.delete_cookie(self.login_cookie, path=self.path)
        return s

    def end(self) -> None:
        """Logout: delete the session server-side and the cookie."""
        sid = bottle.request.get_cookie(self.cookie)
        if sid:
            self.ctx.admin(lambda db: store.delete(db, sid))
        bottle.response.delete_cookie(self.cookie, path=self.path)
