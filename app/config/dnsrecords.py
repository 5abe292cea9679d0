"""DNS records a domain needs for this server, and a live check of them.

:func:`records` is a pure function of the host name, a domain's settings, its DKIM
selectors (``(selector, TXT value)`` pairs, so it works before DKIM keys are
stored), the MTA-STS policy, TLSA digests and the ACME account. :func:`check` looks
each record up with a :class:`~app.dns.resolver.Resolver` and says in plain words
what is missing or different. Used by ``pillarbox config dnsrecords|dnscheck``,
quickstart, the setup wizard and the admin domain page.

References: MX (RFC 5321 5.1), SPF (RFC 7208), DKIM (RFC 6376 3.6.2), DMARC
(RFC 7489 6.1), MTA-STS (RFC 8461 3.1, 3.2), TLS-RPT (RFC 8460 3), SRV for mail
clients (RFC 6186, RFC 8314 5.1: "." target = not offered), TLSA for SMTP (RFC 7672
3.1.1: 3 1 1), CAA (RFC 8659) with account binding (RFC 8657).
"""

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from app.config.dynamic import DomainSettings
from app.dns.domain import Domain
from app.dns.resolver import DNSError, NotFound, Resolver

DEFAULT_TTL = 300
MTASTS_MODES = ("testing", "enforce", "none")


@dataclass(frozen=True, slots=True)
class MTASTSPolicy:
    """An MTA-STS policy (RFC 8461 3.2)."""

    mode: str = "testing"
    mx: tuple[str, ...] = ()
    max_age: int = 86400

    def text(self) -> str:
        lines = ["version: STSv1", f"mode: {self.mode}"]
        lines += [f"mx: {m}" for m in self.mx]
        lines.append(f"max_age: {self.max_age}")
        return "\r\n".join(lines) + "\r\n"

    @property
    def id(self) -> str:
        """Policy id for the TXT record: changes whenever the policy text does."""
        return hashlib.sha256(self.text().encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Record:
    """One record in presentation format; ``value`` of a TXT record is unquoted."""

    name: str  # absolute, trailing dot
    type: str
    value: str
    purpose: str

    def zone_line(self, ttl: int = DEFAULT_TTL) -> str:
        value = self.value
        if self.type == "TXT":
            chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
            value = " ".join(
                '"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks
            )
        return f"{self.name} {ttl} IN {self.type} {value}"


def zone_text(recs: Sequence[Record]) -> str:
    """Records as zone-file lines, each preceded by a comment saying what it is for."""
    out: list[str] = []
    for r in recs:
        out += [f"; {r.purpose}", r.zone_line()]
    return "\n".join(out) + "\n"


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def records(
    hostname: str,
    domain: DomainSettings,
    *,
    dkim: Sequence[tuple[str, str]] = (),
    mtasts: MTASTSPolicy | None = None,
    tlsa_sha256: Sequence[str] = (),
    acme_account_uri: str = "",
    ca_domain: str = "letsencrypt.org",
) -> list[Record]:
    """Everything to publish for ``domain`` served by ``hostname``."""
    host = _fqdn(Domain.parse(hostname).ascii)
    d = _fqdn(domain.name.ascii)
    bare = d.rstrip(".")
    client = _fqdn(domain.client_host)
    policy = mtasts or MTASTSPolicy(mx=(host.rstrip("."),))
    recs = [
        Record(d, "MX", f"10 {host}", "deliver mail for the domain to this server"),
        Record(d, "TXT", "v=spf1 mx ~all", "SPF: only the domain's MX may send its mail"),
        Record(host, "TXT", "v=spf1 a -all", "SPF for the host name itself (bounces, HELO)"),
    ]
    for selector, txt in dkim:
        recs.append(Record(f"{selector}._domainkey.{d}", "TXT", txt, f"DKIM key {selector}"))
    recs += [
        Record(
            f"_dmarc.{d}",
            "TXT",
            f"v=DMARC1; p=reject; rua=mailto:dmarc-reports@{bare}!10m",
            "DMARC: reject mail that fails SPF and DKIM alignment; send reports",
        ),
        Record(f"_mta-sts.{d}", "TXT", f"v=STSv1; id={policy.id}", "MTA-STS policy version"),
        Record(f"mta-sts.{d}", "CNAME", host, "MTA-STS policy host, served by this server"),
        Record(
            f"_smtp._tls.{d}",
            "TXT",
            f"v=TLSRPTv1; rua=mailto:tls-reports@{bare}",
            "TLS reporting address",
        ),
    ]
    recs += _client_records(d, host, client)
    for digest in tlsa_sha256:
        recs.append(Record(f"_25._tcp.{host}", "TLSA", f"3 1 1 {digest.lower()}", "DANE for SMTP"))
    recs += _caa(d, ca_domain, acme_account_uri)
    return recs


def _client_records(d: str, host: str, client: str) -> list[Record]:
    recs: list[Record] = []
    if client != host and client.endswith("." + d):
        recs.append(Record(client, "CNAME", host, "host name mail clients are configured with"))
    recs += [
        Record(f"_submissions._tcp.{d}", "SRV", f"0 1 465 {client}", "submission, implicit TLS"),
        Record(f"_submission._tcp.{d}", "SRV", f"0 1 587 {client}", "submission with STARTTLS"),
        Record(f"_imaps._tcp.{d}", "SRV", f"0 1 993 {client}", "IMAP, implicit TLS"),
        Record(f"_imap._tcp.{d}", "SRV", f"0 1 143 {client}", "IMAP with STARTTLS"),
        Record(f"_pop3._tcp.{d}", "SRV", "0 0 0 .", "POP3 is not offered"),
        Record(f"_pop3s._tcp.{d}", "SRV", "0 0 0 .", "POP3 is not offered"),
        Record(f"autoconfig.{d}", "CNAME", host, "Thunderbird autoconfig"),
        Record(f"_autodiscover._tcp.{d}", "SRV", f"0 1 443 {host}", "Outlook autodiscover"),
    ]
    return recs


def _caa(d: str, ca: str, account: str) -> list[Record]:
    if account:
        value = f'0 issue "{ca}; accounturi={account}; validationmethods=tls-alpn-01,http-01"'
        why = "only our ACME account may get certificates (RFC 8657)"
    else:
        value = f'0 issue "{ca}"'
        why = "only this certificate authority may issue certificates"
    return [Record(d, "CAA", value, why)]


# Checking.


class Status(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    DIFFERS = "differs"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Check:
    record: Record
    status: Status
    found: tuple[str, ...]
    message: str


def _norm(value: str) -> str:
    return " ".join(value.replace('"', "").lower().split())


def _tag(txt: str) -> str:
    return txt.split(";", 1)[0].split(" ", 1)[0].strip().lower()


async def _found(resolver: Resolver, r: Record) -> tuple[str, ...]:
    if r.type == "TXT":
        ans = await resolver.lookup_txt(r.name)
        return ans.records
    raw = await resolver.query(r.name, r.type)
    return tuple(rd.to_text() for rd in raw.records)


async def check_one(resolver: Resolver, r: Record) -> Check:
    """Look up one record and compare it with what we suggest."""
    try:
        found = await _found(resolver, r)
    except NotFound:
        return Check(r, Status.MISSING, (), f"no {r.type} record at {r.name}; add: {r.value}")
    except DNSError as e:
        return Check(r, Status.ERROR, (), f"lookup failed ({e.reason}); try again later")
    want = _norm(r.value)
    if any(_norm(f) == want for f in found):
        return Check(r, Status.OK, found, "as suggested")
    if r.type == "TXT":
        same_kind = [f for f in found if _tag(f) == _tag(r.value)]
        if not same_kind:
            return Check(r, Status.MISSING, found, f"no {_tag(r.value)} record; add: {r.value}")
        if r.value.startswith("v=DKIM1"):
            return Check(r, Status.DIFFERS, found, "the published key is not our current key")
        return Check(r, Status.DIFFERS, found, f"found {same_kind[0]!r}; suggested {r.value!r}")
    return Check(r, Status.DIFFERS, found, f"found {', '.join(found)}; suggested {r.value}")


async def check(resolver: Resolver, recs: Sequence[Record]) -> list[Check]:
    """Check every record, in order."""
    return [await check_one(resolver, r) for r in recs]
