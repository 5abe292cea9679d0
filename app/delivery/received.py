"""The Received header a receiving server adds (RFC 5321 4.4, RFC 6531 4.3)."""

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from app.message.dates import format_date


@dataclass(frozen=True, slots=True)
class ReceivedInfo:
    helo: str  # the EHLO/HELO argument
    remote_ip: str
    remote_name: str  # verified reverse DNS name, "" when unknown
    hostname: str  # ours
    esmtp: bool
    tls: str  # "" or e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"
    authenticated: bool
    smtputf8: bool
    msgid: str
    recipient: str  # "" when there are several


def _literal(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    return f"[IPv6:{addr.compressed}]" if addr.version == 6 else f"[{ip}]"


def protocol(info: ReceivedInfo) -> str:
    """The "with" keyword (RFC 3848, RFC 6531 4.3): ESMTP + S for TLS + A for auth."""
    if not info.esmtp:
        return "SMTP"
    base = "UTF8SMTP" if info.smtputf8 else "ESMTP"
    return base + ("S" if info.tls else "") + ("A" if info.authenticated else "")


def received(info: ReceivedInfo, when: datetime) -> bytes:
    """The complete header, folded, ending in CRLF."""
    tcp = _literal(info.remote_ip)
    if info.remote_name:
        tcp = f"{info.remote_name} {tcp}"
    helo = info.helo or "unknown"
    lines = [
        f"Received: from {helo} ({tcp})",
        f"\tby {info.hostname} (Pillarbox) with {protocol(info)} id {info.msgid}",
    ]
    if info.recipient:
        lines.append(f"\tfor <{info.recipient}>")
    if info.tls:
        lines.append(f"\t(using {info.tls})")
    lines[-1] += ";"
    lines.append(f"\t{format_date(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
