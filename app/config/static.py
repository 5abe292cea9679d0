"""The static configuration file (TOML), loaded into frozen dataclasses.

Static settings change rarely and need a restart: host name, data directory,
listeners, TLS files, limits, logging, DNS servers, the resource profile. Domains,
accounts and addresses are dynamic settings kept in the admin database instead.
"""

import enum
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config.profiles import ProfileName, Tuning, effective
from app.config.schema import ConfigError, Problem, describe, load_into, setting
from app.dns.domain import Domain, DomainError

DEFAULT_CONFIG_PATH = "/etc/pillarbox/pillarbox.toml"


class LogFormat(enum.StrEnum):
    LOGFMT = "logfmt"
    JSON = "json"


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Log:
    level: LogLevel = setting("Least severe level written to the log.", LogLevel.INFO)
    format: LogFormat = setting("Log line format: logfmt (key=value) or json.", LogFormat.LOGFMT)
    trace_credentials: bool = setting(
        "Write credentials in protocol traces (debug only; normally redacted).", False
    )
    trace_data: bool = setting(
        "Write message data in protocol traces (debug only; normally left out).", False
    )


@dataclass(frozen=True, slots=True)
class DNS:
    servers: list[str] = setting(
        'Name servers as "host" or "host:port" (IPv6 "[::1]:53"); empty uses /etc/resolv.conf. '
        "Use a DNSSEC-validating resolver on this machine for DANE.",
        factory=list,
    )
    timeout: float = setting("Seconds to wait for one DNS answer.", 5.0)

    def validate(self) -> list[tuple[str, str]]:
        out = []
        for i, s in enumerate(self.servers):
            if not _valid_hostport(s):
                out.append((f"servers[{i}]", f"not a host or host:port: {s!r}"))
        if self.timeout <= 0:
            out.append(("timeout", "must be positive"))
        return out


@dataclass(frozen=True, slots=True)
class CertKey:
    cert: str = setting("PEM file with the certificate chain, leaf first.")
    key: str = setting("PEM file with the private key.")


@dataclass(frozen=True, slots=True)
class TLS:
    certificates: list[CertKey] = setting(
        "Certificate/key pairs; the one matching the name a client asks for (SNI) is used, "
        "else the first.",
        factory=list,
    )
    self_signed: bool = setting(
        "Generate and use a self-signed certificate for the host name (for testing only).", False
    )
    min_version: str = setting('Oldest TLS version accepted: "1.2" or "1.3".', "1.2")

    def validate(self) -> list[tuple[str, str]]:
        if self.min_version not in ("1.2", "1.3"):
            return [("min_version", 'must be "1.2" or "1.3"')]
        return []


@dataclass(frozen=True, slots=True)
class Service:
    enabled: bool = setting("Whether this service listens.", False)
    port: int = setting("TCP port; 0 uses the standard port of the service.", 0)

    def validate(self) -> list[tuple[str, str]]:
        return [] if 0 <= self.port <= 65535 else [("port", "must be 0..65535")]


STANDARD_PORTS = {
    "smtp": 25,
    "submission": 587,
    "submissions": 465,
    "imap": 143,
    "imaps": 993,
    "http": 80,
    "https": 443,
    "admin_http": 8080,
}


@dataclass(frozen=True, slots=True)
class Listener:
    ips: list[str] = setting("IP addresses to listen on.", factory=lambda: ["0.0.0.0", "::"])
    hostname: str = setting(
        "Host name for this listener's greetings; empty uses the global one.",
        "",
        check=lambda v: v and _domain_problem(v),
    )
    tls: TLS = setting("TLS for this listener.", factory=TLS)
    auth_without_tls: bool = setting(
        "Allow password logins (AUTH on submission, IMAP LOGIN/PLAIN) without TLS. Only for "
        "testing on a trusted network: passwords then cross the network readable.",
        False,
    )
    forwarded: bool = setting(
        "HTTP only: trust X-Forwarded-For/-Proto from a reverse proxy in front.", False
    )
    smtp: Service = setting(
        "Incoming mail from other servers (25, STARTTLS offered).", factory=Service
    )
    submission: Service = setting(
        "Mail from your users' clients (587, STARTTLS required).", factory=Service
    )
    submissions: Service = setting(
        "Mail from your users' clients over implicit TLS (465).", factory=Service
    )
    imap: Service = setting("IMAP (143, STARTTLS required before login).", factory=Service)
    imaps: Service = setting("IMAP over implicit TLS (993).", factory=Service)
    http: Service = setting(
        "Public HTTP: autoconfig, MTA-STS, ACME, redirects (80).", factory=Service
    )
    https: Service = setting(
        "Public HTTPS: account pages, autoconfig, MTA-STS (443).", factory=Service
    )
    admin_http: Service = setting(
        "Admin pages and /metrics; keep on loopback or your LAN.", factory=Service
    )

    def validate(self) -> list[tuple[str, str]]:
        out = []
        for i, ip in enumerate(self.ips):
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                out.append((f"ips[{i}]", f"not an IP address: {ip!r}"))
        return out

    def port(self, service: str) -> int:
        svc: Service = getattr(self, service)
        return svc.port or STANDARD_PORTS[service]


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_size: int = setting("Largest message accepted, in bytes.", 100 * 1024 * 1024)
    max_recipients: int = setting("Recipients in one SMTP transaction.", 1000)
    max_line_length: int = setting("Longest protocol command line, in bytes.", 8 * 1024)
    max_bad_commands: int = setting("Bad commands before a session is closed.", 20)
    idle_timeout_s: int = setting("Seconds a client may stay silent in a command phase.", 300)
    max_auth_failures: int = setting(
        "Failed logins from one IP class before further attempts are refused for a while.", 10
    )
    unknown_recipient_delay_s: float = setting(
        "Seconds to wait before refusing an unknown recipient (slows address guessing).", 1.0
    )

    def validate(self) -> list[tuple[str, str]]:
        return [
            (f, "must be positive")
            for f in (
                "max_message_size",
                "max_recipients",
                "max_line_length",
                "max_bad_commands",
                "idle_timeout_s",
                "max_auth_failures",
            )
            if getattr(self, f) <= 0
        ]


class DMARCMethod(enum.StrEnum):
    RFC9989 = "rfc9989"
    RFC7489 = "rfc7489"


@dataclass(frozen=True, slots=True)
class Checks:
    dnsbl_zones: list[str] = setting(
        "DNS block lists checked for senders on port 25; a zone is used only while its "
        "health check passes (127.0.0.2 listed, 127.0.0.1 not).",
        factory=list,
    )
    dmarc_method: DMARCMethod = setting(
        "How DMARC finds the organizational domain: rfc9989 (DNS tree walk) or rfc7489 "
        "(public suffix list).",
        DMARCMethod.RFC9989,
    )
    dkim_max_verify_size: int = setting(
        "Largest message whose DKIM signatures are verified, in bytes; larger ones get dkim=none.",
        64 * 1024 * 1024,
    )

    def validate(self) -> list[tuple[str, str]]:
        return [
            (f"dnsbl_zones[{i}]", p)
            for i, z in enumerate(self.dnsbl_zones)
            if (p := _domain_problem(z) or "")
        ]


@dataclass(frozen=True, slots=True)
class Quota:
    default: int = setting(
        "Disk quota in bytes for accounts without their own; 0 means unlimited.", 0
    )


class TransportKind(enum.StrEnum):
    DIRECT = "direct"
    SMARTHOST = "smarthost"
    FAIL = "fail"


class TransportTLS(enum.StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class QueueTransport:
    kind: TransportKind = setting(
        "direct: to the MX hosts of the recipient domain; smarthost: to one relay host "
        "(with AUTH when username is set); fail: fail delivery with fail_code/fail_text.",
        TransportKind.DIRECT,
    )
    host: str = setting("smarthost: host name or IP address of the relay.", "")
    port: int = setting(
        "smarthost: TCP port; 0 means 465 for implicit TLS, 25 for none, else 587.", 0
    )
    tls: TransportTLS = setting(
        "smarthost: starttls (required), implicit (TLS from the start, usually port 465) or "
        "none (plain text; only for a relay on loopback).",
        TransportTLS.STARTTLS,
    )
    username: str = setting("smarthost: AUTH user name; empty for no AUTH.", "")
    password: str = setting("smarthost: AUTH password.", "")
    auth_plain_allowed: bool = setting(
        "smarthost: also allow AUTH PLAIN (default: only SCRAM-*-PLUS, SCRAM-*, CRAM-MD5).",
        False,
    )
    ipv4: bool = setting("direct/smarthost: connect over IPv4.", True)
    ipv6: bool = setting("direct/smarthost: connect over IPv6.", True)
    port_override: int = setting(
        "direct: connect to this port instead of 25 (for testing setups); 0 = 25.", 0
    )
    fail_code: int = setting("fail: SMTP reply code to fail with (4xx retries, 5xx bounces).", 554)
    fail_text: str = setting("fail: reply text.", "delivery refused by transport configuration")

    def validate(self) -> list[tuple[str, str]]:
        out = []
        if self.kind is TransportKind.SMARTHOST and not self.host:
            out.append(("host", "required for a smarthost transport"))
        for f in ("port", "port_override"):
            if not 0 <= getattr(self, f) <= 65535:
                out.append((f, "must be 0..65535"))
        if not 400 <= self.fail_code <= 599:
            out.append(("fail_code", "must be 400..599"))
        if not (self.ipv4 or self.ipv6):
            out.append(("ipv6", "at least one of ipv4 and ipv6 must be enabled"))
        return out


@dataclass(frozen=True, slots=True)
class QueueRoute:
    transport: str = setting(
        'Name of a transport in [queue.transports], or "direct".', example="relay"
    )
    from_domains: list[str] = setting(
        "Sender domains this route applies to (a leading dot matches subdomains); "
        "empty matches all.",
        factory=list,
    )
    to_domains: list[str] = setting(
        "Recipient domains this route applies to (a leading dot matches subdomains); "
        "empty matches all.",
        factory=list,
    )
    min_attempts: int = setting(
        "The route applies only after this many failed delivery attempts.", 0
    )
    account: str = setting(
        "Only for messages submitted by this account (account routes are tried first).", ""
    )
    domain: str = setting(
        "Only for messages from this domain of ours (tried after account routes, before "
        "global routes).",
        "",
    )

    def validate(self) -> list[tuple[str, str]]:
        return [] if self.min_attempts >= 0 else [("min_attempts", "must not be negative")]


@dataclass(frozen=True, slots=True)
class Queue:
    workers: int = setting("Deliveries attempted at the same time.", 10)
    per_domain: int = setting("Deliveries attempted at the same time to one recipient domain.", 1)
    max_attempts: int = setting(
        "Delivery attempts before a message fails (retries at ~7.5 min, then doubling).", 8
    )
    transports: dict[str, QueueTransport] = field(
        default_factory=dict,
        metadata={
            "doc": 'Named transports for routes and `pillarbox queue transport`; "direct" is '
            "built in.",
            "example_key": "relay",
        },
    )
    routes: dict[str, QueueRoute] = field(
        default_factory=dict,
        metadata={
            "doc": "Routes, tried in file order (account routes, then domain routes, then the "
            "others); the first that matches picks the transport, else direct delivery.",
            "example_key": "viarelay",
        },
    )

    def validate(self) -> list[tuple[str, str]]:
        out = [
            (f, "must be positive")
            for f in ("workers", "per_domain", "max_attempts")
            if getattr(self, f) <= 0
        ]
        for name, r in self.routes.items():
            if r.transport != "direct" and r.transport not in self.transports:
                out.append((f"routes.{name}.transport", f"no transport named {r.transport!r}"))
        return out


@dataclass(frozen=True, slots=True)
class Config:
    """The whole static configuration."""

    hostname: str = setting(
        "Fully qualified host name of this mail server (the MX target).",
        example="mail.example.com",
        check=lambda v: _domain_problem(v),
    )
    data_dir: str = setting(
        "Directory for databases and messages; relative to the config file's directory.",
        example="/var/lib/pillarbox",
    )
    profile: ProfileName = setting(
        "Resource profile: default, or lowmem for 512 MiB machines.", ProfileName.DEFAULT
    )
    localserve: bool = setting(
        "Local test instance (written by `pillarbox localserve`): mail for unknown addresses "
        "goes to postmaster_account and special local parts simulate failures.",
        False,
    )
    postmaster_account: str = setting(
        "Account that receives mail for postmaster@ of every domain and DSNs.", ""
    )
    log: Log = setting("Logging.", factory=Log)
    dns: DNS = setting("DNS resolution.", factory=DNS)
    limits: Limits = setting("Protocol limits.", factory=Limits)
    quota: Quota = setting("Default per-account disk quota.", factory=Quota)
    queue: Queue = setting(
        "Outgoing queue: concurrency, retries, transports, routes.", factory=Queue
    )
    checks: Checks = setting("Message authentication checks on incoming mail.", factory=Checks)
    tuning: Tuning = setting(
        "Overrides of the profile's knobs (0 = profile's value).", factory=Tuning
    )
    listeners: dict[str, Listener] = field(
        default_factory=dict,
        metadata={
            "doc": "Named listeners: addresses and the services on them.",
            "example_key": "public",
        },
    )
    path: str = field(default="", metadata={"doc": "", "internal": True})

    def validate(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not self.data_dir:
            out.append(("data_dir", "must not be empty"))
        seen: dict[tuple[str, int], str] = {}
        for name, lst in self.listeners.items():
            for svc in STANDARD_PORTS:
                if not getattr(lst, svc).enabled:
                    continue
                for ip in lst.ips:
                    key = (ip, lst.port(svc))
                    if key in seen:
                        out.append(
                            (
                                f"listeners.{name}.{svc}",
                                f"{ip} port {key[1]} also used by {seen[key]}",
                            )
                        )
                    seen[key] = f"listeners.{name}.{svc}"
        return out

    @property
    def data_path(self) -> Path:
        base = Path(self.path).parent if self.path else Path.cwd()
        return (base / self.data_dir).resolve()

    @property
    def tuned(self) -> Tuning:
        return effective(self.profile, self.tuning)

    @property
    def domain(self) -> Domain:
        return Domain.parse(self.hostname)


def _domain_problem(text: str) -> str | None:
    try:
        Domain.parse(text)
    except DomainError as e:
        return e.reason
    return None


def _valid_hostport(s: str) -> bool:
    host, port = s, "53"
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                return False
            port = rest[1:]
    elif s.count(":") == 1:
        host, port = s.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return port.isdigit() and 0 < int(port) < 65536


def parse(text: str, path: str = "") -> Config:
    """Parse configuration text; raises :class:`ConfigError` listing every problem."""
    try:
        table: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([Problem("", f"not valid TOML: {e}")], path) from None
    table = {k: v for k, v in table.items() if k != "path"}
    cfg = load_into(Config, table, path)
    return _with_path(cfg, path)


def _with_path(cfg: Config, path: str) -> Config:
    from dataclasses import replace

    return replace(cfg, path=str(Path(path).resolve()) if path else "")


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse a configuration file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([Problem("", f"cannot read: {e.strerror}")], str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem("", "not UTF-8 text")], str(p)) from None
    return parse(text, str(p))


def example() -> str:
    """An annotated example configuration file, generated from the definitions above."""
    header = (
        "Pillarbox configuration (TOML).\n"
        "Lines starting with # describe a setting; a commented-out setting shows its default.\n"
        "Domains, accounts and addresses are not set here: use `pillarbox config ...`\n"
        "or the admin web pages."
    )
    return describe(Config, header)
