"""One delivery attempt of one message to the recipients of one domain.

:func:`attempt` is the entry point the queue calls. It never raises for delivery
problems: every recipient gets a :class:`RecipientResult` (delivered, temporary
or permanent failure, with the remote reply or our own), and the attempt reports
the TLS outcome per host for TLS reporting and the IPs dialed.

Direct delivery (behaviour after mox ``queue/direct.go``):

1. MX gathering (:mod:`app.queue.mx`): CNAMEs, implicit MX, null MX is a
   permanent 5.1.10.
2. MTA-STS (:mod:`app.queue.mtasts`) for the recipient domain: in mode enforce
   only matching MX hosts are used, with STARTTLS and a PKIX-valid certificate
   for the MX name; mode testing only reports.
3. Per MX host, in preference order: addresses (allowed families, ordered for the
   attempt), DANE (:mod:`app.queue.dane`) when everything was DNSSEC-authentic,
   then each address until one connects.
4. TLS: DANE (required STARTTLS, TLSA-verified; unusable records: TLS without
   verification) takes precedence over MTA-STS enforce (required STARTTLS, PKIX);
   otherwise opportunistic STARTTLS without verification, retried on the same
   host without TLS after a TLS failure (RFC 7435). DANE and MTA-STS failures
   are never downgraded.
5. REQUIRETLS (RFC 8689): only to hosts with MTA-STS enforce or DANE with usable
   records, and only if the server announces REQUIRETLS; otherwise 5.7.30,
   permanent once every host failed that way. ``TLS-Required: No``
   (``tls_required_no``) makes recipient-domain policies (MTA-STS, DANE) not block
   delivery (RFC 8689 5): opportunistic TLS with fallback is used everywhere.
6. One transaction per connection with up to LIMITS RCPTMAX recipients (RFC 9422);
   the rest get a temporary result so the queue retries them. RCPT refusals are
   per recipient; the data reply applies to all accepted recipients.
7. Dual-stack rule (as mox): on attempt 1, a permanent refusal with a 5.7.x code
   of the whole transaction from a host reachable over both IPv4 and IPv6 becomes
   temporary; the next attempt tries the other family first (see
   :func:`app.queue.mx.gather_ips`).

A smarthost transport connects to the configured host with STARTTLS or immediate
TLS, PKIX-verified for the configured name (or plain with ``tls = "none"``), and
authenticates when a username is set. The ``fail`` transport fails everything.

Codes: ``secode`` in results follows :mod:`app.smtp.codes` (no class digit,
``"7.30"``); :attr:`RecipientResult.enhanced` gives the full ``"5.7.30"``.
"""

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.dns.resolver import TLSA, Resolver
from app.queue import dane
from app.queue.mtasts import Lookup, MTASTSCache, Policy
from app.queue.mx import Destinations, GatherError, HostAddresses, gather_destinations, gather_ips
from app.queue.tlsrpt import FailureDetail, PolicyType, ResultType, TLSResult
from app.smtp import codes as c
from app.smtp.codes import Reply
from app.smtp.dial import (
    Delivery,
    ErrorKind,
    SMTPClientError,
    SMTPConnection,
    Timeouts,
    tls_failure,
)

__all__ = [
    "AttemptResult",
    "Recipient",
    "RecipientResult",
    "TLSResult",
    "Timeouts",
    "Transport",
    "attempt",
]

_log = logging.getLogger(__name__)
DEFAULT_TIMEOUTS = Timeouts()
Logger = logging.Logger | logging.LoggerAdapter[Any]


@dataclass(frozen=True, slots=True)
class Transport:
    """How to send; ``"direct"`` by default.

    ``port`` 0 for a smarthost means 465 with ``tls="implicit"``, 25 with
    ``"none"``, else 587.
    """

    kind: str = "direct"  # "direct" | "smarthost" | "fail"
    host: str = ""  # smarthost host name or IP
    port: int = 0  # smarthost port (25/587/465)
    tls: str = "starttls"  # smarthost: "starttls" | "implicit" | "none"
    username: str = ""
    password: str = ""
    auth_plain_allowed: bool = False
    ipv4: bool = True
    ipv6: bool = True
    port_override: int = 0  # direct: connect to this port instead of 25

    def __repr__(self) -> str:
        return f"Transport(kind={self.kind!r}, host={self.host!r}, port={self.port!r})"


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str  # as it goes on the wire (A-labels unless SMTPUTF8)


@dataclass(frozen=True, slots=True)
class RecipientResult:
    address: str
    ok: bool  # delivered: the remote accepted the recipient and the data
    permanent: bool  # False: try again later
    code: int
    secode: str  # without class digit, see app.smtp.codes
    text: str
    remote_mta: str = ""  # host name we talked to

    @property
    def enhanced(self) -> str:
        """The full enhanced status code (``"5.7.30"``) or ``""``."""
        return f"{self.code // 100}.{self.secode}" if self.secode else ""


@dataclass(frozen=True, slots=True)
class AttemptResult:
    recipients: tuple[RecipientResult, ...]
    tls_reports: tuple[TLSResult, ...]  # one per host tried (+1 for a policy fetch error)
    dialed: tuple[str, ...]  # IPs tried, in order
    host: str  # last MX host tried


@dataclass(frozen=True, slots=True)
class _TLSPlan:
    mode: str  # "opportunistic" | "required" | "immediate" | "skip"
    pkix: bool = False
    name: str = ""  # SNI and PKIX name
    dane_records: tuple[TLSA, ...] = ()
    dane_names: tuple[str, ...] = ()
    fallback: bool = False  # a TLS failure may be retried without TLS


def _err(code: int, secode: str, text: str, permanent: bool = False) -> SMTPClientError:
    return SMTPClientError(ErrorKind.LOCAL, code, secode, text, permanent=permanent)


def _from_gather(e: GatherError) -> SMTPClientError:
    return _err(e.code, e.secode, e.text, e.permanent)


class _Attempt:
    """State of one attempt: what was dialed, TLS results, the recipients."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        sender: str,
        recipients: Sequence[Recipient],
        domain: str,
        message: bytes | Path,
        size: int,
        smtputf8: bool,
        eight_bit: bool,
        requiretls: bool,
        tls_required_no: bool,
        transport: Transport,
        ehlo_hostname: str,
        attempt_number: int,
        mtasts_cache: MTASTSCache | None,
        client_cert: ssl.SSLContext | None,
        pkix_context: ssl.SSLContext | None,
        timeouts: Timeouts,
        log: Logger,
    ) -> None:
        self.resolver = resolver
        self.sender = sender
        self.recipients = [r.address for r in recipients]
        self.domain = domain
        self.message = message
        self.size = size
        self.smtputf8 = smtputf8
        self.eight_bit = eight_bit
        self.requiretls = requiretls
        # RFC 8689 5: TLS-Required: No; REQUIRETLS wins if both are somehow set.
        self.relax = tls_required_no and not requiretls
        self.transport = transport
        self.ehlo = ehlo_hostname
        self.attempt_number = attempt_number
        self.mtasts_cache = mtasts_cache
        self.client_cert = client_cert
        self.pkix_context = pkix_context
        self.timeouts = timeouts
        self.log = log
        self.dialed: list[str] = []
        self.reports: list[TLSResult] = []
        self.host = ""
        self.dualstack = False

    # --- results -----------------------------------------------------------------------

    def _result(self, results: Sequence[RecipientResult]) -> AttemptResult:
        return AttemptResult(tuple(results), tuple(self.reports), tuple(self.dialed), self.host)

    def _all(self, e: SMTPClientError, host: str = "") -> AttemptResult:
        res = [
            RecipientResult(a, False, e.permanent, e.code, e.secode, e.text, host)
            for a in self.recipients
        ]
        return self._result(res)

    # --- contexts -----------------------------------------------------------------------

    def _unverified(self) -> ssl.SSLContext:
        if self.client_cert is not None:
            return self.client_cert
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _pkix(self) -> ssl.SSLContext:
        return self.pkix_context or ssl.create_default_context()

    # --- entry ---------------------------------------------------------------------------

    async def run(self) -> AttemptResult:
        try:
            return await self._run()
        except Exception:  # a bug must not lose the message: retry later
            self.log.exception("delivery attempt failed unexpectedly")
            return self._all(_err(c.C451_LOCAL_ERROR, c.SE_SYS3_OTHER_0, "internal error"))

    async def _run(self) -> AttemptResult:
        kind = self.transport.kind
        if kind == "fail":
            return self._all(
                _err(
                    c.C554_TRANSACTION_FAILED, c.SE_OTHER0_0, "delivery refused by transport", True
                )
            )
        if kind == "smarthost":
            return await self._smarthost()
        if kind != "direct":
            return self._all(
                _err(c.C451_LOCAL_ERROR, c.SE_SYS3_MISCONFIGURED_5, "unknown transport")
            )
        return await self._direct()

    # --- direct -------------------------------------------------------------------------

    async def _direct(self) -> AttemptResult:
        try:
            dest = await gather_destinations(self.resolver, self.domain)
        except GatherError as e:
            self.log.info("mx gathering failed", extra={"domain": self.domain, "err": e.text})
            return self._all(_from_gather(e))
        lookup = Lookup(None)
        if not dest.ip_literal:
            cache = self.mtasts_cache or MTASTSCache()
            # RFC 8461 4.1: at the recipient domain itself, never a CNAME target.
            lookup = await cache.get(self.resolver, dest.domain)
            if lookup.error and lookup.result_type is not None:
                detail = FailureDetail(lookup.result_type, failure_reason_code=lookup.error)
                self.reports.append(TLSResult(PolicyType.STS, dest.domain).failure(detail))
            if lookup.temporary and not self.relax:
                return self._all(
                    _err(c.C451_LOCAL_ERROR, c.SE_NET4_NAME_3, f"mta-sts: {lookup.error}")
                )
        policy = lookup.policy if lookup.policy and lookup.policy.mode != "none" else None
        last = _err(c.C451_LOCAL_ERROR, c.SE_NET4_ROUTING_4, "no mx host could be used")
        missing_requiretls = 0
        for host in dest.hosts:
            self.host = host
            try:
                return await self._direct_host(dest, host, policy, lookup)
            except SMTPClientError as e:
                self.log.info(
                    "delivery to host failed",
                    extra={"host": host, "err": str(e), "permanent": e.permanent},
                )
                last = e
                if e.secode == c.SE_POL7_REQUIRETLS_30:
                    missing_requiretls += 1
                if e.permanent:
                    break
        if dest.hosts and missing_requiretls == len(dest.hosts):
            last = _err(
                c.C554_TRANSACTION_FAILED,
                c.SE_POL7_REQUIRETLS_30,
                "no destination host supports REQUIRETLS with verified TLS",
                True,
            )
        return self._all(last, self.host)

    def _base_report(self, host: str, policy: Policy | None, lookup: Lookup) -> TLSResult:
        if policy is not None:
            return TLSResult(
                PolicyType.STS,
                self.domain,
                tuple(line for line in lookup.text.splitlines() if line.strip()),
                policy.mx,
                host,
            )
        return TLSResult(PolicyType.NO_POLICY_FOUND, host, host=host)

    async def _direct_host(
        self, dest: Destinations, host: str, policy: Policy | None, lookup: Lookup
    ) -> AttemptResult:
        report = self._base_report(host, policy, lookup)
        try:
            return await self._direct_host_report(dest, host, policy, report)
        except _Reported as r:
            self.reports.append(r.report)
            raise r.error from None

    async def _direct_host_report(
        self, dest: Destinations, host: str, policy: Policy | None, report: TLSResult
    ) -> AttemptResult:
        enforce = policy is not None and policy.mode == "enforce" and not self.relax
        if policy is not None and not policy.matches(host):
            detail = FailureDetail(
                ResultType.VALIDATION_FAILURE,
                receiving_mx_hostname=host,
                failure_reason_code="mtasts-policy-mx-mismatch",
            )
            if enforce:  # RFC 8461 4.1
                raise _Reported(
                    report.failure(detail),
                    _err(
                        c.C451_LOCAL_ERROR,
                        c.SE_POL7_OTHER_0,
                        f"mx host {host} not in mta-sts policy",
                    ),
                )
            report = report.note(detail)
        try:
            addrs = await gather_ips(
                self.resolver,
                host,
                ipv4=self.transport.ipv4,
                ipv6=self.transport.ipv6,
                attempt_number=self.attempt_number,
            )
        except GatherError as e:
            raise _Reported(report, _from_gather(e)) from None
        plan, report = await self._plan(dest, host, addrs, enforce, report)
        self.dualstack = addrs.dualstack
        port = self.transport.port_override or 25
        box = [report]
        try:
            results = await self._deliver(addrs, port, plan, box, host)
        except SMTPClientError as e:
            raise _Reported(box[0], self._dualstack(e)) from None
        self.reports.append(box[0])
        return self._result(results)

    async def _plan(
        self,
        dest: Destinations,
        host: str,
        addrs: HostAddresses,
        enforce: bool,
        report: TLSResult,
    ) -> tuple[_TLSPlan, TLSResult]:
        """The TLS mode for ``host``; DANE first (RFC 8461 2), then MTA-STS."""
        authentic = (
            not dest.ip_literal
            and addrs.authentic
            and dest.orig_authentic
            and (not dest.have_mx or dest.expanded_authentic)
        )
        tlsa: dane.TLSAResult | None = None
        if authentic and not self.relax:
            tlsa = await dane.gather_tlsa(
                self.resolver,
                host,
                addrs.expanded_host,
                dest.expanded_authentic and addrs.expanded_authentic,
            )
            if tlsa.error:  # RFC 7672 2.2.1: the host is unusable for now
                report = TLSResult(PolicyType.TLSA, tlsa.base_domain, host=host)
                detail = FailureDetail(
                    ResultType.TLSA_INVALID,
                    receiving_mx_hostname=host,
                    failure_reason_code=tlsa.error,
                )
                raise _Reported(
                    report.failure(detail),
                    _err(c.C451_LOCAL_ERROR, c.SE_NET4_NAME_3, f"dane: {tlsa.error}"),
                )
        dane_ok = tlsa is not None and tlsa.required
        if self.requiretls and not (dane_ok and tlsa is not None and tlsa.records) and not enforce:
            # RFC 8689 4.1: only with a verified TLS policy for the host.
            raise _Reported(
                report,
                _err(
                    c.C554_TRANSACTION_FAILED,
                    c.SE_POL7_REQUIRETLS_30,
                    f"REQUIRETLS: no mta-sts enforce or usable dane for {host}",
                ),
            )
        if tlsa is not None and tlsa.required:
            report = TLSResult(
                PolicyType.TLSA,
                tlsa.base_domain,
                tuple(dane.record_text(r) for r in tlsa.all_records),
                host=host,
            )
            if not tlsa.records:
                report = report.note(
                    FailureDetail(
                        ResultType.TLSA_INVALID,
                        receiving_mx_hostname=host,
                        failure_reason_code="all-unusable-records+ignored",
                    )
                )
            names = dane.allowed_names(
                have_mx=dest.have_mx,
                next_hop=dest.domain,
                expanded_next_hop=dest.expanded_domain,
                expanded_next_hop_authentic=dest.expanded_authentic,
                host=host,
                base_domain=tlsa.base_domain,
            )
            return _TLSPlan("required", False, host, tlsa.records, names), report
        if enforce:
            return _TLSPlan("required", True, host), report
        return _TLSPlan("opportunistic", False, host, fallback=True), report

    def _dualstack(self, e: SMTPClientError) -> SMTPClientError:
        """The dual-stack rule (module doc, point 7) for a transaction-level refusal."""
        if (
            e.kind is ErrorKind.REPLY
            and e.permanent
            and self._dualstack_applies(Reply(e.code, e.secode, e.text))
        ):
            e.permanent = False
        return e

    # --- smarthost ----------------------------------------------------------------------

    async def _smarthost(self) -> AttemptResult:
        t = self.transport
        self.host = t.host
        mode = {"implicit": "immediate", "none": "skip"}.get(t.tls, "required")
        port = t.port or {"immediate": 465, "skip": 25}.get(mode, 587)
        if self.requiretls and mode == "skip":
            return self._all(
                _err(
                    c.C554_TRANSACTION_FAILED,
                    c.SE_POL7_REQUIRETLS_30,
                    "REQUIRETLS: smarthost without tls",
                    True,
                ),
                t.host,
            )
        try:
            addrs = await gather_ips(
                self.resolver, t.host, ipv4=t.ipv4, ipv6=t.ipv6, attempt_number=self.attempt_number
            )
        except GatherError as e:
            return self._all(_from_gather(e), t.host)
        plan = _TLSPlan(mode, mode != "skip", t.host)
        box = [TLSResult(PolicyType.NO_POLICY_FOUND, t.host, host=t.host)]
        try:
            results = await self._deliver(addrs, port, plan, box, t.host)
        except SMTPClientError as e:
            return self._all(e, t.host)
        return self._result(results)

    # --- connecting and the session ------------------------------------------------------

    async def _deliver(
        self, addrs: HostAddresses, port: int, plan: _TLSPlan, box: list[TLSResult], host: str
    ) -> list[RecipientResult]:
        """Connect to the first reachable address and deliver; with ``plan.fallback``
        a TLS failure is retried on the same host without TLS."""
        try:
            return await self._connect_and_deliver(addrs, port, plan, box, host)
        except SMTPClientError as e:
            if e.kind is not ErrorKind.TLS or not plan.fallback or self.requiretls:
                raise
            self.log.info("tls failed, delivering without tls", extra={"host": host, "err": e.text})
            return await self._connect_and_deliver(
                addrs, port, replace(plan, mode="skip"), [box[0]], host
            )

    async def _connect(self, addrs: HostAddresses, port: int, plan: _TLSPlan) -> SMTPConnection:
        last: SMTPClientError | None = None
        for ip in addrs.ips:
            self.dialed.append(str(ip))
            tls = None
            if plan.mode == "immediate":
                tls = self._pkix() if plan.pkix else self._unverified()
            try:
                return await SMTPConnection.open(
                    str(ip),
                    port,
                    timeouts=self.timeouts,
                    tls=tls,
                    server_hostname=plan.name if tls else None,
                    logger=self.log,
                )
            except SMTPClientError as e:
                self.log.debug("connect failed", extra={"ip": str(ip), "err": e.text})
                last = e
                if e.kind is ErrorKind.TLS:
                    raise
        assert last is not None
        raise last

    async def _connect_and_deliver(
        self, addrs: HostAddresses, port: int, plan: _TLSPlan, box: list[TLSResult], host: str
    ) -> list[RecipientResult]:
        try:
            conn = await self._connect(addrs, port, plan)
        except SMTPClientError as e:
            if e.kind is ErrorKind.TLS:
                box[0] = box[0].failure(
                    FailureDetail(ResultType(e.tls_result), receiving_mx_hostname=host)
                )
            raise
        try:
            await conn.greeting()
            await conn.hello(self.ehlo)
            await self._tls(conn, plan, box, host)
            if self.transport.kind == "smarthost" and self.transport.username:
                await conn.authenticate(
                    self.transport.username,
                    self.transport.password,
                    plain_allowed=self.transport.auth_plain_allowed,
                )
            if self.requiretls and not conn.tls:
                raise _err(c.C554_TRANSACTION_FAILED, c.SE_POL7_REQUIRETLS_30, "REQUIRETLS: no tls")
            results = await self._transaction(conn, host)
            await conn.quit()
            return results
        finally:
            await conn.close()

    async def _tls(
        self, conn: SMTPConnection, plan: _TLSPlan, box: list[TLSResult], host: str
    ) -> None:
        if plan.mode == "immediate":
            box[0] = box[0].success()
            return
        if plan.mode == "skip":
            return
        if not conn.extensions.starttls:
            if plan.mode == "required":
                box[0] = box[0].failure(
                    FailureDetail(ResultType.STARTTLS_NOT_SUPPORTED, receiving_mx_hostname=host)
                )
                raise tls_failure("server does not offer STARTTLS", "starttls-not-supported")
            return  # opportunistic: plain text
        ctx = self._pkix() if plan.pkix else self._unverified()
        try:
            sslobj = await conn.starttls(ctx, plan.name)
        except SMTPClientError as e:
            rt = ResultType(e.tls_result) if e.tls_result else ResultType.VALIDATION_FAILURE
            box[0] = box[0].failure(FailureDetail(rt, receiving_mx_hostname=host))
            raise
        if plan.dane_records:
            v = dane.verify(plan.dane_records, dane.peer_chain(sslobj), plan.dane_names)
            if not v.ok:  # never downgraded: the caller does not fall back for DANE
                box[0] = box[0].failure(
                    FailureDetail(
                        ResultType.VALIDATION_FAILURE,
                        receiving_mx_hostname=host,
                        failure_reason_code=v.reason,
                    )
                )
                raise tls_failure(f"dane verification failed: {v.reason}", "validation-failure")
            record = dane.record_text(v.record) if v.record else ""
            self.log.debug("dane verified", extra={"host": host, "record": record})
        box[0] = box[0].success()
        await conn.hello(self.ehlo)

    async def _transaction(self, conn: SMTPConnection, host: str) -> list[RecipientResult]:
        rcptmax = conn.extensions.rcptmax
        now = self.recipients[:rcptmax] if rcptmax else list(self.recipients)
        later = self.recipients[len(now) :]
        d: Delivery = await conn.deliver(
            self.sender,
            now,
            self.message,
            size=self.size,
            eight_bit=self.eight_bit,
            smtputf8=self.smtputf8,
            requiretls=self.requiretls,
        )
        data_err = d.data if d.data is not None and not 200 <= d.data.code < 300 else None
        data_perm = data_err is not None and data_err.code >= 500
        if data_perm and self._dualstack_applies(data_err):
            data_perm = False
        out: list[RecipientResult] = []
        for addr, reply in d.rcpts:
            if not 200 <= reply.code < 300:
                out.append(_reply_result(addr, reply, host))
            elif data_err is not None:
                out.append(_reply_result(addr, data_err, host, permanent=data_perm))
            else:
                assert d.data is not None
                out.append(
                    RecipientResult(addr, True, True, d.data.code, d.data.secode, d.data.text, host)
                )
        for addr in later:  # RFC 9422: more than RCPTMAX, the queue tries again
            out.append(
                RecipientResult(
                    addr,
                    False,
                    False,
                    c.C452_STORAGE_FULL,
                    c.SE_PROTO5_TOO_MANY_RCPTS_3,
                    f"more than {rcptmax} recipients for one transaction, try again later",
                    host,
                )
            )
        return out

    def _dualstack_applies(self, reply: Reply | None) -> bool:
        """mox: a 5.7.x refusal on attempt 1 of a dual-stack host is temporary."""
        return (
            reply is not None
            and self.attempt_number == 1
            and self.dualstack
            and reply.secode.startswith("7.")
        )


def _reply_result(
    addr: str, reply: Reply, host: str, permanent: bool | None = None
) -> RecipientResult:
    perm = reply.code >= 500 if permanent is None else permanent
    return RecipientResult(addr, False, perm, reply.code, reply.secode, reply.text, host)


class _Reported(Exception):
    """An error with the host's TLS report to record."""

    def __init__(self, report: TLSResult, error: SMTPClientError) -> None:
        super().__init__(str(error))
        self.report = report
        self.error = error


async def attempt(
    resolver: Resolver,
    *,
    sender: str,
    recipients: Sequence[Recipient],
    domain: str,
    message: bytes | Path,
    size: int,
    smtputf8: bool,
    eight_bit: bool,
    requiretls: bool,
    tls_required_no: bool,
    transport: Transport,
    ehlo_hostname: str,
    attempt_number: int,
    mtasts_cache: MTASTSCache | None = None,
    client_cert: ssl.SSLContext | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    log: Logger | None = None,
    pkix_context: ssl.SSLContext | None = None,
) -> AttemptResult:
    """Try once to deliver ``message`` to ``recipients`` (all in ``domain``).

    ``sender`` is the reverse-path (``""`` for the null sender). ``client_cert``: a
    client-side context carrying our certificate, used for connections that are not
    PKIX-verified (it must not verify by itself). ``pkix_context``: the context
    for PKIX-verified connections (MTA-STS enforce, smarthost); the system trust
    store when None. ``mtasts_cache`` None: a fresh cache for this attempt only.
    Never raises for delivery problems; see the module documentation.
    """
    if not recipients:
        return AttemptResult((), (), (), "")
    a = _Attempt(
        resolver,
        sender=sender,
        recipients=recipients,
        domain=domain,
        message=message,
        size=size,
        smtputf8=smtputf8,
        eight_bit=eight_bit,
        requiretls=requiretls,
        tls_required_no=tls_required_no,
        transport=transport,
        ehlo_hostname=ehlo_hostname,
        attempt_number=attempt_number,
        mtasts_cache=mtasts_cache,
        client_cert=client_cert,
        pkix_context=pkix_context,
        timeouts=timeouts,
        log=log or _log,
    )
    return await a.run()
