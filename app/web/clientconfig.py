"""Mail client settings: Thunderbird autoconfig, Microsoft autodiscover, Apple profiles.

All name the domain's client host (``DomainSettings.client_host``, ``mail.DOMAIN``
by default) with implicit TLS first (IMAPS 993, submissions 465; RFC 8314) and the
STARTTLS ports (143, 587) as alternatives. Ports come from the first listener that
enables each service, else the standard port. The login name is the address.
"""

import plistlib
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from app.config.dynamic import DomainSettings
from app.config.static import STANDARD_PORTS, Config

AUTODISCOVER_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
AUTODISCOVER_OUTLOOK_NS = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
_EMAIL_IN_REQUEST = re.compile(r"<EMailAddress>\s*([^<\s]{3,320})\s*</EMailAddress>", re.I)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    domain: str  # ASCII
    host: str
    imaps_port: int = 993
    imap_port: int = 143
    submissions_port: int = 465
    submission_port: int = 587


def _port(config: Config, service: str) -> int:
    for lst in config.listeners.values():
        if getattr(lst, service).enabled:
            return lst.port(service)
    return STANDARD_PORTS[service]


def client_settings(config: Config, domain: DomainSettings) -> ClientSettings:
    return ClientSettings(
        domain.name.ascii,
        domain.client_host,
        _port(config, "imaps"),
        _port(config, "imap"),
        _port(config, "submissions"),
        _port(config, "submission"),
    )


def _sub(parent: ET.Element, tag: str, text: str | int = "", **attrs: str) -> ET.Element:
    e = ET.SubElement(parent, tag, attrs)
    if text != "":
        e.text = str(text)
    return e


def thunderbird_xml(cs: ClientSettings) -> bytes:
    """Thunderbird's config-v1.1.xml (https://wiki.mozilla.org/Thunderbird:Autoconfiguration)."""
    root = ET.Element("clientConfig", version="1.1")
    prov = _sub(root, "emailProvider", id=cs.domain)
    _sub(prov, "domain", cs.domain)
    _sub(prov, "displayName", cs.domain)
    _sub(prov, "displayShortName", cs.domain)
    servers = [
        ("incomingServer", "imap", cs.imaps_port, "SSL"),
        ("incomingServer", "imap", cs.imap_port, "STARTTLS"),
        ("outgoingServer", "smtp", cs.submissions_port, "SSL"),
        ("outgoingServer", "smtp", cs.submission_port, "STARTTLS"),
    ]
    for tag, kind, port, socket_type in servers:
        s = _sub(prov, tag, type=kind)
        _sub(s, "hostname", cs.host)
        _sub(s, "port", port)
        _sub(s, "socketType", socket_type)
        _sub(s, "username", "%EMAILADDRESS%")
        _sub(s, "authentication", "password-cleartext")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(ET.tostring(root, encoding="utf-8"))


def autodiscover_email(body: bytes) -> str | None:
    """The address in an Outlook autodiscover request; a regex, not an XML parser, so
    entity tricks in hostile input do nothing."""
    m = _EMAIL_IN_REQUEST.search(body.decode("utf-8", "replace"))
    return m.group(1) if m else None


def autodiscover_xml(cs: ClientSettings, email: str) -> bytes:
    """An Outlook autodiscover (POX) response with IMAP and SMTP over implicit TLS."""
    root = ET.Element("Autodiscover", xmlns=AUTODISCOVER_RESPONSE_NS)
    resp = _sub(root, "Response", xmlns=AUTODISCOVER_OUTLOOK_NS)
    acc = _sub(resp, "Account")
    _sub(acc, "AccountType", "email")
    _sub(acc, "Action", "settings")
    for kind, port in (("IMAP", cs.imaps_port), ("SMTP", cs.submissions_port)):
        p = _sub(acc, "Protocol")
        _sub(p, "Type", kind)
        _sub(p, "Server", cs.host)
        _sub(p, "Port", port)
        _sub(p, "LoginName", email)
        _sub(p, "SPA", "off")
        _sub(p, "SSL", "on")
        _sub(p, "AuthRequired", "on")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + bytes(ET.tostring(root, encoding="utf-8"))


def mobileconfig(cs: ClientSettings, email: str, full_name: str = "") -> bytes:
    """An Apple configuration profile (unsigned) with one IMAP/SMTP mail account.

    The password is not included; the device asks for it.
    """
    ident = ".".join(reversed(cs.domain.split("."))) + ".pillarbox.email"
    ns = uuid.NAMESPACE_DNS
    mail = {
        "EmailAccountDescription": email,
        "EmailAccountName": full_name or email,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": email,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": cs.host,
        "IncomingMailServerPortNumber": cs.imaps_port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": email,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": cs.host,
        "OutgoingMailServerPortNumber": cs.submissions_port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": email,
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PayloadDisplayName": email,
        "PayloadIdentifier": ident + ".mail",
        "PayloadType": "com.apple.mail.managed",
        "PayloadUUID": str(uuid.uuid5(ns, ident + ".mail." + email)).upper(),
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [mail],
        "PayloadDisplayName": f"{email} email account",
        "PayloadIdentifier": ident,
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(ns, ident + "." + email)).upper(),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile)


def manual_text(cs: ClientSettings, email: str) -> str:
    """Settings to type into a mail client by hand."""
    return (
        f"Email address / user name: {email}\n"
        f"Incoming (IMAP): {cs.host} port {cs.imaps_port}, TLS (SSL/TLS)\n"
        f"  or port {cs.imap_port} with STARTTLS\n"
        f"Outgoing (SMTP submission): {cs.host} port {cs.submissions_port}, TLS (SSL/TLS)\n"
        f"  or port {cs.submission_port} with STARTTLS\n"
        "Authentication: normal password, on both\n"
    )
