"""IMAP service registration: ``imap`` (143, STARTTLS) and ``imaps`` (993, implicit TLS).

``app.serve`` calls the starters for every listener that enables the service. The
ports open at start-up; the IMAP session code loads with the first connection (see
:mod:`app.listening`). The first start of a server also removes APPEND spool files
a crash may have left behind.
"""

import asyncio
import logging
from typing import Any

from app.config.static import Listener
from app.imap.spool import remove_stale_spools
from app.listening import ConnectionStack, LazyListener
from app.services import Services

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT_S = 30.0  # implicit TLS and STARTTLS


async def prepare(services: Services) -> None:
    """Once per server: stale spool removal (never again while sessions spool)."""
    if services.protocol_state.get("imap.prepared"):
        return
    services.protocol_state["imap.prepared"] = True
    removed = await asyncio.to_thread(remove_stale_spools, services.data_dir / "tmp")
    if removed:
        log.info("removed stale imap spool files", extra={"count": removed})


async def start_listener(
    services: Services, name: str, listener: Listener, service: str, *, port: int | None = None
) -> list[asyncio.AbstractServer]:
    """Listen for ``service`` (``imap`` or ``imaps``) on every IP of ``listener``.

    ``port`` overrides the configured port (tests pass 0 for an ephemeral one).
    """
    implicit = service == "imaps"
    tls: dict[str, Any] = {}
    if implicit:
        certs = services.certs.get(name)
        if certs is None:
            raise OSError(0, f"listener {name}: imaps needs TLS certificates")
        tls = {"tls": certs.on_demand(), "ssl_handshake_timeout": TLS_HANDSHAKE_TIMEOUT_S}
    if port is None:
        port = listener.port(service)

    def build() -> ConnectionStack:
        from app.imap.server import Listening

        return Listening(services, name, listener, implicit, TLS_HANDSHAKE_TIMEOUT_S)

    listening = LazyListener(service, name, build)
    for ip in listener.ips:
        await listening.listen(ip, port, **tls)
    return [listening]


async def start_imap(
    services: Services, listener_name: str, listener: Listener
) -> list[asyncio.AbstractServer]:
    """IMAP with STARTTLS (RFC 9051 6.2.1) on ``listener``."""
    await prepare(services)
    return await start_listener(services, listener_name, listener, "imap")


async def start_imaps(
    services: Services, listener_name: str, listener: Listener
) -> list[asyncio.AbstractServer]:
    """IMAP over implicit TLS (RFC 8314) on ``listener``."""
    await prepare(services)
    return await start_listener(services, listener_name, listener, "imaps")


STARTERS = {"imap": start_imap, "imaps": start_imaps}
