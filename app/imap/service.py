"""IMAP service registration: ``imap`` (143, STARTTLS) and ``imaps`` (993, implicit TLS).

``app.serve`` calls the starters for every listener that enables the service.
The first start of a server also runs the TLS 1.3 channel-binding self-test in a
thread (so ``-PLUS`` mechanisms can be offered without blocking the loop later)
and removes APPEND spool files a crash may have left behind.
"""

import asyncio
import logging

from app.auth.channelbinding import tls_exporter_available
from app.config.static import Listener
from app.imap import cmd_append
from app.imap.server import shared_state, start_listener
from app.services import Services

log = logging.getLogger(__name__)


async def prepare(services: Services) -> None:
    """Once per server: channel-binding self-test, stale spool removal."""
    shared = shared_state(services)
    if shared.prepared:
        return
    shared.prepared = True
    shared.channel_binding = await asyncio.to_thread(tls_exporter_available)
    removed = await asyncio.to_thread(cmd_append.remove_stale_spools, services.data_dir / "tmp")
    if removed:
        log.info("removed stale imap spool files", extra={"count": removed})


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
