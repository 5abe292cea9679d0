"""MTA-STS (RFC 8461): record and policy parsing, HTTPS policy fetch, cache, MX matching.

Discovery always uses the recipient domain itself, never the target of a CNAME at
that domain (a single forged CNAME would otherwise point us at any policy).

* :func:`parse_record` / :func:`parse_policy`: the ABNF of RFC 8461 3.1 and 3.2.
* :class:`PolicyFetcher`: GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt``
  with :mod:`http.client` in a worker thread: the host resolved with our resolver,
  PKIX-verified for ``mta-sts.<domain>``, no redirects (only 200 counts),
  ``text/plain`` only, a size limit and a timeout. ``port`` and ``context`` can be
  changed for tests.
* :class:`MTASTSCache`: policies by domain with their ``max_age`` (RFC 8461 5.1):
  a policy is refetched only when the TXT record's id changes; a cached,
  unexpired policy is used when the TXT record is missing or the fetch fails.
  ``on_update`` is a persistence hook; ``load`` restores persisted entries.
  :meth:`MTASTSCache.refresh` re-fetches every cached policy; the queue runs it
  daily (RFC 8461 10.2), so policies of domains we send to never expire unseen.
"""

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.dns.domain import Domain, DomainError
from app.dns.resolver import DNSError, NotFound, Resolver
from app.queue.tlsrpt import ResultType

if TYPE_CHECKING:
    import ssl

MAX_AGE_LIMIT = 31557600  # RFC 8461 3.2: one year
WELL_KNOWN = "/.well-known/mta-sts.txt"


class MTASTSError(Exception):
    """A record, policy or fetch problem; ``result_type`` for TLS reports."""

    def __init__(self, reason: str, result_type: ResultType = ResultType.STS_POLICY_INVALID):
        super().__init__(reason)
        self.reason = reason
        self.result_type = result_type


# --- the TXT record (RFC 8461 3.1) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """A ``_mta-sts`` TXT record."""

    id: str
    extensions: tuple[tuple[str, str], ...] = ()


_SEP = re.compile(r"[ \t]*;[ \t]*")
_FIELD = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]{0,31})=([\x21-\x3a\x3c\x3e-\x7e]+)")
_ID = re.compile(r"[A-Za-z0-9]{1,32}")


def parse_record(text: str) -> Record:
    """Parse ``v=STSv1; id=...``; raises :class:`MTASTSError`."""
    if not text.startswith("v=STSv1"):
        raise MTASTSError("record does not start with v=STSv1")
    i = len("v=STSv1")
    fields: list[tuple[str, str]] = []
    while i < len(text):
        sep = _SEP.match(text, i)
        if sep is None:
            raise MTASTSError("expected ';' in record")
        i = sep.end()
        if i == len(text) and fields:
            break  # one trailing separator is allowed
        m = _FIELD.match(text, i)
        if m is None:
            raise MTASTSError("malformed field in record")
        fields.append((m.group(1), m.group(2)))
        i = m.end()
    ids = [v for k, v in fields if k == "id"]
    if not ids:
        raise MTASTSError("record without id")
    if not _ID.fullmatch(ids[0]):
        raise MTASTSError("record id must be 1 to 32 letters or digits")
    return Record(ids[0], tuple((k, v) for k, v in fields if k != "id"))


# --- the policy (RFC 8461 3.2) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy; ``mx`` patterns are lower-case ASCII (``*.`` allowed)."""

    mode: str  # "enforce" | "testing" | "none"
    mx: tuple[str, ...]
    max_age: int
    extensions: tuple[tuple[str, str], ...] = ()

    def matches(self, host: str) -> bool:
        """Whether MX ``host`` is allowed (RFC 8461 4.1): exact, or a wildcard
        covering exactly one leftmost label."""
        h = host.lower().removesuffix(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                first, _, rest = h.partition(".")
                if first and rest == pattern[2:]:
                    return True
            elif h == pattern:
                return True
        return False


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?|[a-z0-9_][a-z0-9_-]{0,62}")
_VALUE = re.compile(r"[\x21-\x7e]([\x21-\x7e \t]*[\x21-\x7e])?")


def _mx_pattern(value: str) -> str:
    v = value.lower()
    name = v[2:] if v.startswith("*.") else v
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise MTASTSError(f"invalid mx pattern {value!r}")
    if any(label.startswith("-") or label.endswith("-") for label in labels):
        raise MTASTSError(f"invalid mx pattern {value!r}")
    return v


def parse_policy(text: str) -> Policy:
    """Parse a policy body (LF or CRLF lines); raises :class:`MTASTSError`."""
    seen: dict[str, str] = {}
    mx: list[str] = []
    ext: list[tuple[str, str]] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        if not line.strip(" \t"):
            continue
        key, colon, rest = line.partition(":")
        if not colon or not _NAME.fullmatch(key):
            raise MTASTSError(f"malformed policy line {line[:40]!r}")
        value = rest.strip(" \t")
        if not value or not _VALUE.fullmatch(value):
            raise MTASTSError(f"empty or invalid value for {key}")
        if key == "mx":
            mx.append(_mx_pattern(value))
        elif key in ("version", "mode", "max_age"):
            if key in seen:
                raise MTASTSError(f"duplicate {key}")
            seen[key] = value
        else:
            ext.append((key, value))
    if seen.get("version") != "STSv1":
        raise MTASTSError("missing or unsupported version")
    mode = seen.get("mode")
    if mode not in ("enforce", "testing", "none"):
        raise MTASTSError("missing or invalid mode")
    max_age = seen.get("max_age", "")
    if not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 10):
        raise MTASTSError("missing or invalid max_age")
    if int(max_age) > MAX_AGE_LIMIT:
        raise MTASTSError("max_age above one year")
    if mode != "none" and not mx:
        raise MTASTSError(f"mode {mode} without mx")
    return Policy(mode, tuple(mx), int(max_age), tuple(ext))


# --- fetching (RFC 8461 3.3) ------------------------------------------------------


def _content_type_ok(value: str | None) -> bool:
    if value is None:
        return False
    return value.split(";", 1)[0].strip(" \t").lower() == "text/plain"


@dataclass(frozen=True, slots=True)
class PolicyFetcher:
    """How policies are fetched. ``context`` None: the system's trust store."""

    port: int = 443
    context: "ssl.SSLContext | None" = None
    timeout: float = 60.0  # RFC 8461 3.3 suggests a timeout, we give a minute
    max_size: int = 64 * 1024  # RFC 8461 3.3: policies up to 64 KiB

    async def fetch(self, resolver: Resolver, domain: str) -> tuple[Policy, str]:
        """The policy and its text; raises :class:`MTASTSError`."""
        host = f"mta-sts.{domain}"
        try:
            ans = await resolver.lookup_ip(host)
        except DNSError as e:
            raise MTASTSError(
                f"resolving {host}: {e.reason or 'error'}", ResultType.STS_POLICY_FETCH_ERROR
            ) from None
        import ssl  # OpenSSL loads with the first fetch (see app.tls.lazyssl)

        ctx = self.context or ssl.create_default_context()
        last = MTASTSError("no address", ResultType.STS_POLICY_FETCH_ERROR)
        for ip in ans.records:
            try:
                body = await asyncio.wait_for(
                    asyncio.to_thread(self._get, host, str(ip), ctx), self.timeout + 1
                )
            except TimeoutError:
                last = MTASTSError("timeout", ResultType.STS_POLICY_FETCH_ERROR)
                continue
            except MTASTSError as e:
                last = e
                if e.result_type is not ResultType.STS_POLICY_FETCH_ERROR:
                    raise
                continue
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise MTASTSError("policy is not utf-8") from None
            return parse_policy(text), text
        raise last

    def _get(self, host: str, ip: str, ctx: "ssl.SSLContext") -> bytes:
        import http.client  # with its email parser: loaded by the first fetch only
        import ssl

        from app.queue.pinned_https import PinnedHTTPS

        conn = PinnedHTTPS(host, ip, self.port, ctx, self.timeout)
        try:
            conn.request("GET", WELL_KNOWN, headers={"User-Agent": "pillarbox"})
            resp = conn.getresponse()
            # RFC 8461 3.3: only 200; redirects must not be followed.
            if resp.status != 200:
                raise MTASTSError(f"http status {resp.status}", ResultType.STS_POLICY_FETCH_ERROR)
            if not _content_type_ok(resp.getheader("Content-Type")):
                raise MTASTSError("content type is not text/plain")
            body = resp.read(self.max_size + 1)
            if len(body) > self.max_size:
                raise MTASTSError("policy too large")
            return body
        except ssl.SSLCertVerificationError as e:
            raise MTASTSError(f"certificate: {e.verify_message}", ResultType.STS_WEBPKI_INVALID)
        except (OSError, http.client.HTTPException) as e:
            raise MTASTSError(f"fetch: {e}", ResultType.STS_POLICY_FETCH_ERROR) from None
        finally:
            conn.close()


# --- the cache (RFC 8461 5.1) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedPolicy:
    """A fetched policy with the record id it was fetched for."""

    domain: str
    record_id: str
    policy: Policy
    text: str
    fetched: float  # clock time
    expires: float  # fetched + max_age


@dataclass(frozen=True, slots=True)
class Lookup:
    """The policy to apply for one delivery attempt.

    ``policy`` None: none applies. ``error`` describes a problem worth a TLS report
    (``result_type``); ``temporary``: the TXT lookup failed with nothing cached,
    so the attempt should stop (unless TLS-Required: No).
    """

    policy: Policy | None
    text: str = ""
    record_id: str = ""
    error: str = ""
    result_type: ResultType | None = None
    temporary: bool = False


class MTASTSCache:
    """Policies by domain; one per process or per queue, shared by attempts."""

    def __init__(
        self,
        fetcher: PolicyFetcher | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_update: Callable[[CachedPolicy], None] | None = None,
        max_entries: int = 10000,
    ) -> None:
        self.fetcher = fetcher or PolicyFetcher()
        self.clock = clock
        self.on_update = on_update
        self.max_entries = max_entries
        self._entries: dict[str, CachedPolicy] = {}
        self._inflight: dict[str, asyncio.Task[Lookup]] = {}

    def load(self, entries: Iterable[CachedPolicy]) -> None:
        """Restore persisted entries (expired ones are dropped)."""
        now = self.clock()
        for e in entries:
            if e.expires > now:
                self._entries[e.domain] = e

    def cached(self, domain: str) -> CachedPolicy | None:
        """The unexpired cached policy for ``domain``."""
        e = self._entries.get(domain)
        if e is not None and e.expires <= self.clock():
            del self._entries[domain]
            return None
        return e

    def entries(self) -> list[CachedPolicy]:
        return list(self._entries.values())

    async def get(self, resolver: Resolver, domain: str) -> Lookup:
        """The policy for recipient ``domain`` (lookups for one domain coalesce)."""
        try:
            d = Domain.parse(domain).ascii
        except DomainError:
            return Lookup(None)
        task = self._inflight.get(d)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._get(resolver, d))
            self._inflight[d] = task
            task.add_done_callback(lambda t: self._inflight.pop(d, None))
        return await asyncio.shield(task)

    def _use(self, c: CachedPolicy | None, error: str = "", rt: ResultType | None = None) -> Lookup:
        if c is None:
            return Lookup(None, error=error, result_type=rt)
        return Lookup(c.policy, c.text, c.record_id, error, rt)

    async def refresh(self, resolver: Resolver) -> int:
        """Fetch every cached policy again, even with an unchanged id, so its max_age
        starts anew (RFC 8461 10.2: refresh periodically, before policies expire).
        Returns how many were renewed; failures keep the cached policy."""
        renewed = 0
        for domain in [e.domain for e in self.entries()]:
            before = self.cached(domain)
            await self._get(resolver, domain, force=True)
            after = self.cached(domain)
            if after is not None and after is not before:
                renewed += 1
        return renewed

    async def _get(self, resolver: Resolver, domain: str, force: bool = False) -> Lookup:
        cached = self.cached(domain)
        try:
            ans = await resolver.lookup_txt(f"_mta-sts.{domain}")
        except NotFound:
            return self._use(cached)  # RFC 8461 5.1: keep using a cached policy
        except DNSError as e:
            if cached is not None:
                return self._use(cached)
            return Lookup(None, error=f"txt lookup: {e.reason}", temporary=True)
        candidates = [t for t in ans.records if t.startswith("v=STSv1")]
        if len(candidates) != 1:
            # RFC 8461 3.1: not exactly one record means no policy.
            return self._use(cached, "not exactly one sts record", ResultType.STS_POLICY_INVALID)
        try:
            record = parse_record(candidates[0])
        except MTASTSError as e:
            return self._use(cached, e.reason, ResultType.STS_POLICY_INVALID)
        if cached is not None and cached.record_id == record.id and not force:
            return self._use(cached)
        try:
            policy, text = await self.fetcher.fetch(resolver, domain)
        except MTASTSError as e:
            # RFC 8461 5.1: on failure use the cached policy, or continue without.
            return self._use(cached, e.reason, e.result_type)
        now = self.clock()
        entry = CachedPolicy(domain, record.id, policy, text, now, now + policy.max_age)
        if len(self._entries) >= self.max_entries and domain not in self._entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[domain] = entry
        if self.on_update is not None:
            self.on_update(entry)
        return Lookup(policy, text, record.id)


__all__ = [
    "CachedPolicy",
    "Lookup",
    "MTASTSCache",
    "MTASTSError",
    "Policy",
    "PolicyFetcher",
    "Record",
    "parse_policy",
    "parse_record",
]
