"""SMTP services for the server: delivery (25), submission (587), submissions (465)."""

import asyncio
import logging
import socket

from app.auth.channelbinding import tls_exporter_available
from app.config.static import Listener
from app.delivery.checks import Checker
from app.services import Services
from app.smtp.server import Endpoint, SMTPConnection

log = logging.getLogger(__name__)


async def _start(
    svc: Services, name: str, lst: Listener, kind: str
) -> list[asyncio.AbstractServer]:
    certs = svc.certs.get(name)
    tls = certs.context if certs is not None else None
    implicit = kind == "submissions"
    if implicit and tls is None:
        raise OSError(f"listener {name}: submissions needs TLS certificates")
    # The channel-binding self-test does a TLS handshake: run it once, off the loop.
    await asyncio.to_thread(tls_exporter_available)
    (svc.data_dir / "tmp").mkdir(exist_ok=True)
    hostname = lst.hostname or svc.config.hostname
    checks = svc.config.checks
    checker = Checker(
        svc.resolver,
        hostname,
        list(checks.dnsbl_zones),
        str(checks.dmarc_method),
        checks.dkim_max_verify_size,
        svc.cpu_executor,
    )
    endpoint = Endpoint(
        name,
        lst,
        hostname,
        submission=kind != "smtp",
        implicit_tls=implicit,
        tls=tls,
        checker=checker if kind == "smtp" else None,
    )
    loop = asyncio.get_running_loop()
    servers: list[asyncio.AbstractServer] = []
    for ip in lst.ips:
        server = await loop.create_server(
            lambda: SMTPConnection(svc, endpoint),
            host=ip,
            port=lst.port(kind),
            ssl=tls if implicit else None,
            reuse_address=True,
            backlog=512,
            family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
        )
        for s in server.sockets:
            host, port = s.getsockname()[:2]
            log.info(
                "listening", extra={"service": kind, "listener": name, "address": f"{host}:{port}"}
            )
        servers.append(server)
    return servers


async def start_smtp(svc: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    return await _start(svc, name, lst, "smtp")


async def start_submission(svc: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    return await _start(svc, name, lst, "submission")


async def start_submissions(
    svc: Services, name: str, lst: Listener
) -> list[asyncio.AbstractServer]:
    return await _start(svc, name, lst, "submissions")


STARTERS = {"smtp": start_smtp, "submission": start_submission, "submissions": start_submissions}
