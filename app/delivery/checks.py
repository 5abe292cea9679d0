"""Message authentication of incoming mail: who sent it, and may they?

For a message received on port 25 this runs iprev, SPF (MAIL FROM, or HELO for the
null sender), DKIM, ARC, DMARC and the configured DNS block lists, concurrently
where they do not depend on each other, and produces the Authentication-Results
header (one result per line, RFC 8601), the Received-SPF header, and the DMARC
verdict. DNS lookups go through the shared caching resolver; RSA verification stays
on the event loop (microseconds); reading and hashing a large spooled message runs
in a thread.
"""

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from app.dns.resolver import Resolver
from app.mailauth import arc, authres, dkim, dmarc, dnsbl, iprev, spf
from app.mailauth.arc import ARCResult
from app.mailauth.authres import MethodResult, Property
from app.mailauth.dkim import DKIMResult
from app.mailauth.dmarc import DMARCResult
from app.mailauth.dnsbl import DNSBLResult
from app.mailauth.iprev import IPRevResult
from app.mailauth.spf import SPFResult
from app.message.address import Address
from app.message.addrlist import mailboxes, parse_address_list
from app.message.headers import parse_header

log = logging.getLogger(__name__)

DNSBL_HEALTH_TTL = 3600.0
ARC_MAX_SIZE = 8 * 1024 * 1024  # ARC verification needs the message in memory


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of the checks for one message."""

    headers: bytes  # Authentication-Results and Received-SPF, each ending in CRLF
    spf: SPFResult
    dkim: tuple[DKIMResult, ...]
    dmarc: DMARCResult | None
    arc: ARCResult
    iprev: IPRevResult
    dnsbl: tuple[DNSBLResult, ...] = ()
    reject: bool = False  # DMARC p=reject failed
    junk: bool = False  # DMARC p=quarantine failed


@dataclass
class Checker:
    """The checks for one SMTP service; keeps the DNSBL zones' health between messages."""

    resolver: Resolver
    hostname: str
    dnsbl_zones: list[str] = field(default_factory=list)
    dmarc_method: str = "rfc9989"
    max_dkim_size: int = 64 * 1024 * 1024
    executor: Executor | None = None
    _health: dict[str, tuple[bool, float]] = field(default_factory=dict)

    async def check(
        self,
        *,
        remote_ip: str,
        helo: str,
        mail_from: Address | None,
        content: bytes | Path,
        head: bytes,
    ) -> Verdict:
        """Run every check for a received message (``head``: its start, for headers)."""
        sender = mail_from.pack(True) if mail_from else ""
        spf_task = spf.verify(self.resolver, remote_ip, sender, helo, receiver_host=self.hostname)
        small = await self._small(content)
        (verified, iprev_res, dkim_res, arc_res, dnsbl_res) = await asyncio.gather(
            spf_task,
            iprev.check(self.resolver, remote_ip),
            self._dkim(content),
            self._arc(small),
            self._dnsbl(remote_ip),
        )
        listed = any(r.status == dnsbl.Status.FAIL for r in dnsbl_res)
        if listed:
            log.info(
                "sender ip listed in dnsbl",
                extra={
                    "ip": remote_ip,
                    "zones": ",".join(r.zone for r in dnsbl_res if r.status == dnsbl.Status.FAIL),
                },
            )
        from_domain = _from_domain(head)
        dmarc_res = None
        if from_domain:
            passing = [r.domain for r in dkim_res if r.trusted]
            dmarc_res = await dmarc.verify(
                self.resolver,
                from_domain,
                spf_status=str(verified.result.status),
                spf_domain=verified.domain or None,
                dkim_pass_domains=passing,
                dkim_temperror=any(r.status == dkim.Status.TEMPERROR for r in dkim_res),
                method="rfc7489" if self.dmarc_method == "rfc7489" else "rfc9989",
            )
        results = _results(
            verified, iprev_res, dkim_res, arc_res, dmarc_res, remote_ip, helo, sender
        )
        headers = authres.header(self.hostname, results) + spf.received_spf(
            verified.result,
            ip=remote_ip,
            mail_from=sender,
            helo=helo,
            identity=verified.identity,
            receiver=self.hostname,
        )
        return Verdict(
            headers.encode(),
            verified.result,
            tuple(dkim_res),
            dmarc_res,
            arc_res,
            iprev_res,
            tuple(dnsbl_res),
            reject=bool(dmarc_res and dmarc_res.reject),
            # A sender on a (healthy) block list goes to Junk, as does DMARC quarantine.
            junk=bool(dmarc_res and dmarc_res.quarantine) or listed,
        )

    async def _small(self, content: bytes | Path) -> bytes | None:
        """The message as bytes when it is small enough to hold (for ARC), else None."""
        if isinstance(content, bytes):
            return content
        if content.stat().st_size > ARC_MAX_SIZE:
            return None
        return await asyncio.get_running_loop().run_in_executor(self.executor, content.read_bytes)

    async def _dkim(self, content: bytes | Path) -> list[dkim.DKIMResult]:
        size = len(content) if isinstance(content, bytes) else content.stat().st_size
        if size > self.max_dkim_size:
            return [dkim.DKIMResult(dkim.Status.NONE, reason="message too large to verify")]
        # A spool file is hashed from disk in chunks: never held whole in memory.
        return await dkim.verify(self.resolver, content, executor=self.executor)

    async def _arc(self, data: bytes | None) -> arc.ARCResult:
        if data is None:
            return arc.ARCResult(arc.ARCStatus.NONE, reason="message too large to verify")
        return await arc.verify_arc(self.resolver, data)

    async def _dnsbl(self, ip: str) -> list[dnsbl.DNSBLResult]:
        zones = [z for z in self.dnsbl_zones if await self._healthy(z)]
        return list(await asyncio.gather(*(dnsbl.lookup(self.resolver, z, ip) for z in zones)))

    async def _healthy(self, zone: str) -> bool:
        """RFC 5782 5: only trust a zone that lists 127.0.0.2 and not 127.0.0.1."""
        now = time.monotonic()
        known = self._health.get(zone)
        if known is None or now - known[1] > DNSBL_HEALTH_TTL:
            ok = await dnsbl.health_check(self.resolver, zone)
            if not ok:
                log.warning("dnsbl zone failed its health check, ignored", extra={"zone": zone})
            known = (ok, now)
            self._health[zone] = known
        return known[0]


def _from_domain(head: bytes) -> str:
    found = mailboxes(parse_address_list(parse_header(head).get("from") or ""))
    if not found:
        return ""
    addr = found[0].address()
    return addr.domain.ascii if addr is not None and addr.ip is None else ""


def _results(
    verified: spf.Verified,
    ipr: iprev.IPRevResult,
    dk: list[dkim.DKIMResult],
    ar: arc.ARCResult,
    dm: dmarc.DMARCResult | None,
    ip: str,
    helo: str,
    sender: str,
) -> list[MethodResult]:
    """The Authentication-Results entries, in mox's order (RFC 8601 2.7)."""
    out = [
        MethodResult(
            "iprev",
            str(ipr.status),
            (Property("policy", "iprev", ip),),
            comment=ipr.names[0] if ipr.names else "",
        )
    ]
    prop = (
        Property("smtp", "mailfrom", sender)
        if verified.identity == "mailfrom"
        else Property("smtp", "helo", helo)
    )
    out.append(MethodResult("spf", str(verified.result.status), (prop,)))
    for r in dk:
        if r.status == dkim.Status.NONE and not r.domain:
            out.append(MethodResult("dkim", "none"))
            continue
        props = [
            Property("header", "d", r.domain),
            Property("header", "s", r.selector),
            Property("header", "a", r.algorithm),
        ]
        if r.header_b:
            props.append(Property("header", "b", r.header_b[:12]))
        out.append(
            MethodResult(
                "dkim", str(r.status), tuple(props), reason=r.reason if not r.trusted else ""
            )
        )
    if not dk:
        out.append(MethodResult("dkim", "none"))
    if dm is not None:
        out.append(
            MethodResult("dmarc", str(dm.status), (Property("header", "from", dm.from_domain),))
        )
    out.append(
        MethodResult(
            "arc", str(ar.status), (Property("smtp", "remote-ip", ip),) if ar.instances else ()
        )
    )
    return out


def strip_forged_results(content: bytes | Path, hostname: str) -> bytes | Path:
    """Remove incoming Authentication-Results fields that claim to be ours (RFC 8601 5).

    A spooled file is rewritten only when it has such a field (rare): its header is
    in the first part of the file, the rest is copied unchanged.
    """
    if isinstance(content, bytes):
        head_end = _header_end(content)
        fixed, n = authres.remove_ours(content[:head_end], hostname)
        return fixed + content[head_end:] if n else content
    with open(content, "rb") as f:
        start = f.read(HEAD_SCAN)
        head_end = _header_end(start)
        fixed, n = authres.remove_ours(start[:head_end], hostname)
        if not n:
            return content
        tmp = content.with_name(content.name + ".fixed")
        with open(tmp, "wb") as out:
            out.write(fixed + start[head_end:])
            while chunk := f.read(1024 * 1024):
                out.write(chunk)
    tmp.replace(content)
    return content


HEAD_SCAN = 256 * 1024


def _header_end(data: bytes) -> int:
    """Offset just past the blank line ending the header (or the whole scan)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return i + len(sep)
    return len(data)
