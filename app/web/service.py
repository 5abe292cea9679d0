"""The web services a listener can enable: ``http``, ``https`` and ``admin_http``.

* ``admin_http`` (8080; keep it on loopback or a LAN): ``/admin/``, ``/metrics``,
  plus everything ``http`` serves, so one port is enough for a local instance
  (``localserve`` enables only admin_http on 1080 and https on 1443, as mox serves
  its admin pages on its plain-HTTP port).
* ``http`` (80): autoconfig, MTA-STS, and redirects to HTTPS for the account pages.
* ``https`` (443): ``/account/``, autoconfig/autodiscover, MTA-STS.

The ports open at start-up; the HTTP server and the routes (:mod:`app.web.routes`)
load with the first connection (see :mod:`app.listening`).
"""

import asyncio
import errno
import logging
from typing import Any

from app.config.static import Listener
from app.listening import ConnectionStack, LazyListener
from app.services import Services
from app.web.limits import Limits

log = logging.getLogger(__name__)


async def _setup_token(services: Services, name: str, lst: Listener) -> str:
    """A one-time setup link token, logged, when the server has no admin password and
    no domain yet; "" otherwise."""
    from app.store.admincmds import ADMIN_PASSWORD_KEY

    has_password = await services.admin_call(lambda db: db.setting(ADMIN_PASSWORD_KEY))
    if has_password or services.dynamic.domains:
        return ""
    import secrets

    token = secrets.token_urlsafe(24)
    host = lst.ips[0] if lst.ips else "localhost"
    host = f"[{host}]" if ":" in host else host
    log.warning(
        "setup wizard waiting",
        extra={"url": f"http://{host}:{lst.port('admin_http')}/admin/setup?token={token}"},
    )
    return token


async def _listen(
    services: Services, name: str, lst: Listener, service: str, tls: bool, token: str = ""
) -> list[asyncio.AbstractServer]:
    ssl_args: dict[str, Any] = {}
    if tls:
        store = services.certs.get(name)
        if store is None:
            raise OSError(
                errno.EINVAL, "https needs certificates (tls.certificates or tls.self_signed)"
            )
        ssl_args = {
            "tls": store.on_demand(),
            "ssl_handshake_timeout": Limits().tls_handshake_timeout,
        }

    def build() -> ConnectionStack:
        from app.web.routes import server

        return server(services, name, lst, service, token)

    listening = LazyListener(service, name, build)
    for ip in lst.ips:
        await listening.listen(ip, lst.port(service), reuse_address=True, **ssl_args)
    return [listening]


async def start_http(services: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    return await _listen(services, name, lst, "http", tls=False)


async def start_https(services: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    return await _listen(services, name, lst, "https", tls=True)


async def start_admin(services: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    token = await _setup_token(services, name, lst)
    return await _listen(services, name, lst, "admin_http", tls=False, token=token)


STARTERS = {"http": start_http, "https": start_https, "admin_http": start_admin}
