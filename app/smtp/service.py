"""SMTP services for the server: delivery (25), submission (587), submissions (465).

The ports open at start-up; the SMTP session code and the message checks of port
25 load with the first connection (see :mod:`app.listening`).
"""

import asyncio

from app.config.static import Listener
from app.listening import ConnectionStack, LazyListener
from app.services import Services


async def _start(
    svc: Services, name: str, lst: Listener, kind: str
) -> list[asyncio.AbstractServer]:
    certs = svc.certs.get(name)
    implicit = kind == "submissions"
    if implicit and certs is None:
        raise OSError(f"listener {name}: submissions needs TLS certificates")
    (svc.data_dir / "tmp").mkdir(exist_ok=True)
    hostname = lst.hostname or svc.config.hostname

    def build() -> ConnectionStack:
        from app.delivery.checks import Checker
        from app.smtp.server import Endpoint, Stack

        checker = None
        if kind == "smtp":
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
            certs=certs,
            checker=checker,
        )
        return Stack(svc, endpoint)

    listening = LazyListener(kind, name, build)
    for ip in lst.ips:
        await listening.listen(
            ip,
            lst.port(kind),
            tls=certs.on_demand() if implicit and certs is not None else None,
            reuse_address=True,
            backlog=512,
        )
    return [listening]


async def start_smtp(svc: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    return await _start(svc, name, lst, "smtp")


async def start_submission(svc: Services, name: str, lst: Listener) -> list[asyncio.AbstractServer]:
    return await _start(svc, name, lst, "submission")


async def start_submissions(
    svc: Services, name: str, lst: Listener
) -> list[asyncio.AbstractServer]:
    return await _start(svc, name, lst, "submissions")


STARTERS = {"smtp": start_smtp, "submission": start_submission, "submissions": start_submissions}
