"""Public well-known endpoints, answered on the event loop without threads.

* ``/mail/config-v1.1.xml`` and ``/.well-known/autoconfig/mail/config-v1.1.xml``
  (``?emailaddress=``): Thunderbird autoconfig.
* ``POST /autodiscover/autodiscover.xml`` (any case): Outlook autodiscover.
* ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt``: the MTA-STS policy (RFC 8461
  3.2), only for configured domains.
"""

from app.config.dynamic import DomainSettings, DynamicError, split_address
from app.services import Services
from app.web.http import Request, Response, text_response
from app.web.settings import mtasts_policy

AUTOCONFIG_PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")
AUTODISCOVER_PATH = "/autodiscover/autodiscover.xml"
XML = (("Content-Type", "application/xml; charset=utf-8"), ("Cache-Control", "no-store"))


def _domain_of(services: Services, email: str) -> DomainSettings | None:
    try:
        _, d = split_address(email)
    except DynamicError:
        return None
    return services.dynamic.domains.get(d.ascii)


def _query_param(req: Request, name: str) -> str:
    from urllib.parse import parse_qs

    values = parse_qs(req.query).get(name) or [""]
    return values[0]


async def handle(services: Services, req: Request) -> Response | None:
    """The response for a well-known path, or None when ``req`` is not one."""
    path = req.path
    # The XML builders (xml.etree, plistlib, uuid) load on the first such request.
    if path in AUTOCONFIG_PATHS and req.method in ("GET", "HEAD"):
        from app.web.clientconfig import client_settings, thunderbird_xml

        email = _query_param(req, "emailaddress")
        ds = _domain_of(services, email) if email else None
        if ds is None and req.host.startswith("autoconfig."):
            ds = services.dynamic.domains.get(req.host.removeprefix("autoconfig."))
        if ds is None:
            return text_response(404, "unknown email domain")
        return Response(200, XML, thunderbird_xml(client_settings(services.config, ds)))
    if path.lower() == AUTODISCOVER_PATH:
        from app.web.clientconfig import autodiscover_email, autodiscover_xml, client_settings

        if req.method != "POST":
            return text_response(405, "use POST", (("Allow", "POST"),))
        found = autodiscover_email(req.body)
        ds = _domain_of(services, found) if found else None
        if ds is None or found is None:
            return text_response(404, "unknown email domain")
        cs = client_settings(services.config, ds)
        return Response(200, XML, autodiscover_xml(cs, found))
    if path == "/.well-known/mta-sts.txt":
        host = req.host
        domain = host.removeprefix("mta-sts.") if host.startswith("mta-sts.") else ""
        if domain not in services.dynamic.domains:
            return text_response(404, "no MTA-STS policy for this host")
        cfg = services.config
        policy = await services.admin_call(lambda db: mtasts_policy(db, cfg, domain))
        if policy.mode == "none" and not policy.mx:  # pragma: no cover - mx always set
            return text_response(404, "no policy")
        return Response(
            200,
            (("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "max-age=300")),
            policy.text().encode(),
        )
    return None
