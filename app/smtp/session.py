"""One SMTP session's decisions: what to answer to each protocol event.

The shell (``app.smtp.server``) owns the socket and the sans-I/O core; it hands
every event to :meth:`Session.handle` and sends the returned reply. Handlers are
picked from an explicit table by event type. Replies come from the named codes in
``app.smtp.codes``; exception text never reaches the client.
"""

import asyncio
import base64
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.auth import sasl
from app.auth.base import ChannelBinding
from app.auth.ratelimit import delay_for, log_auth_failure
from app.delivery import local
from app.delivery.checks import Checker, Verdict, strip_forged_results
from app.delivery.localserve import Stage, simulated
from app.delivery.received import ReceivedInfo, received
from app.delivery.recipients import LocalRecipient, alias_allows_sender, resolve
from app.mailauth import dkim
from app.message.address import Address, is_postmaster_path, parse_smtp_path
from app.message.addrlist import mailboxes, parse_address_list
from app.message.errors import AddressError, AddressProblem
from app.message.headers import parse_header
from app.queue.service import tls_required_no
from app.queue.store import NewMessage
from app.services import Services
from app.smtp import codes as c
from app.smtp import events as ev
from app.smtp.codes import Reply
from app.smtp.protocol import ServerProtocol
from app.smtp.spool import Spool
from app.store.reports import Evaluation

log = logging.getLogger(__name__)


def _r(code: int, secode: str, text: str) -> Reply:
    return Reply(code, secode, text)


R_OK = _r(c.C250_COMPLETED, c.SE_OTHER0_0, "ok")
R_SENDER_OK = _r(c.C250_COMPLETED, c.SE_ADDR1_OTHER_0, "sender ok")
R_RCPT_OK = _r(c.C250_COMPLETED, c.SE_ADDR1_DEST_VALID_5, "recipient ok")
R_GO = _r(c.C354_START_DATA, "", "go ahead, end with <crlf>.<crlf>")
R_BYE = _r(c.C221_CLOSING, c.SE_OTHER0_0, "bye")
R_VRFY = _r(c.C252_CANNOT_VRFY, c.SE_OTHER0_0, "cannot verify, but will attempt delivery")
R_HELP = _r(c.C214_HELP, c.SE_OTHER0_0, "see RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)")
R_TLS_GO = _r(c.C220_SERVICE_READY, c.SE_OTHER0_0, "go ahead with tls")
R_AUTH_OK = _r(c.C235_AUTH_SUCCESS, c.SE_POL7_OTHER_0, "authenticated")
R_AUTH_FAIL = _r(
    c.C535_AUTH_BAD_CREDENTIALS, c.SE_POL7_AUTH_BAD_CREDENTIALS_8, "authentication failed"
)
R_AUTH_LIMIT = _r(
    c.C454_TEMP_AUTH_FAILURE, c.SE_POL7_OTHER_0, "too many authentication failures, try again later"
)
R_AUTH_TEMP = _r(c.C454_TEMP_AUTH_FAILURE, c.SE_SYS3_OTHER_0, "temporary authentication failure")
R_NO_USER = _r(c.C550_MAILBOX_UNAVAILABLE, c.SE_ADDR1_UNKNOWN_MAILBOX_1, "no such user")
R_NO_RELAY = _r(
    c.C550_MAILBOX_UNAVAILABLE, c.SE_POL7_DELIVERY_UNAUTH_1, "not accepting mail for this domain"
)
R_NO_OUTGOING = _r(c.C451_LOCAL_ERROR, c.SE_SYS3_OTHER_0, "outgoing delivery not configured")
R_NOT_YOURS = _r(
    c.C550_MAILBOX_UNAVAILABLE, c.SE_POL7_DELIVERY_UNAUTH_1, "must be an address of your account"
)
R_ALIAS_CLOSED = _r(
    c.C550_MAILBOX_UNAVAILABLE, c.SE_POL7_DELIVERY_UNAUTH_1, "only members may send to this list"
)
R_QUOTA = _r(c.C452_STORAGE_FULL, c.SE_MAILBOX2_FULL_2, "account storage full")
# RFC 7489 7.2 / RFC 7372: 5.7.1 is common; mox uses 5.7.26 (multiple checks failed).
R_DMARC_REJECT = _r(
    c.C550_MAILBOX_UNAVAILABLE,
    c.SE_POL7_MULTIPLE_AUTH_FAILS_26,
    "dmarc policy of the sender domain rejects this message",
)
R_TEMP = _r(c.C451_LOCAL_ERROR, c.SE_SYS3_OTHER_0, "error storing message, try again later")


@dataclass
class Transaction:
    mail_from: Address | None = None
    smtputf8: bool = False
    requiretls: bool = False
    recipients: list[LocalRecipient] = field(default_factory=list)
    # Submission: recipients in other domains, for the outgoing queue.
    remote: list[Address] = field(default_factory=list)
    spool: Spool | None = None


@dataclass
class ConnInfo:
    listener: str
    hostname: str
    remote_ip: str
    submission: bool
    cid: str
    tls: str = ""  # protocol and cipher once TLS is up
    channel_binding: ChannelBinding | None = None


class Session:
    """Per-connection state and the event handlers."""

    def __init__(
        self,
        svc: Services,
        info: ConnInfo,
        core: ServerProtocol,
        logger: logging.LoggerAdapter[logging.Logger],
        checker: Checker | None = None,
    ) -> None:
        self.svc = svc
        self.checker = checker
        self.info = info
        self.core = core
        self.log = logger
        self.tx = Transaction()
        self.account = ""  # authenticated account
        self.username = ""
        self.auth_failures = 0
        self.messages = 0
        self._mech: sasl.ServerMechanism | None = None
        self._final_ok: sasl.Success | None = None  # SCRAM success awaiting the client's ack
        self._mech_name = ""
        self._table: dict[type[ev.Event], Callable[[Any], Awaitable[Reply | None]]] = {
            ev.Helo: self.on_helo,
            ev.Ehlo: self.on_ehlo,
            ev.StartTLS: self.on_starttls,
            ev.Auth: self.on_auth,
            ev.AuthResponse: self.on_auth_response,
            ev.AuthCancelled: self.on_auth_end,
            ev.AuthBadResponse: self.on_auth_end,
            ev.Mail: self.on_mail,
            ev.Rcpt: self.on_rcpt,
            ev.DataStart: self.on_data,
            ev.DataChunk: self.on_chunk,
            ev.DataEnd: self.on_data_end,
            ev.Bdat: self.on_bdat,
            ev.BdatEnd: self.on_bdat_end,
            ev.Rset: self.on_rset,
            ev.Noop: self.on_noop,
            ev.Quit: self.on_quit,
            ev.Vrfy: self.on_vrfy,
            ev.Expn: self.on_vrfy,
            ev.Help: self.on_help,
        }

    async def handle(self, event: ev.Event) -> Reply | None:
        """The reply to ``event`` (None for events without one)."""
        fn = self._table.get(type(event))
        if fn is None:
            reply = getattr(event, "reply", None)
            return reply if isinstance(reply, Reply) else None
        return await fn(event)

    def close(self) -> None:
        self._reset()

    def _reset(self) -> None:
        if self.tx.spool is not None:
            self.tx.spool.discard()
        self.tx = Transaction()

    # --- greeting and session commands -------------------------------------------

    async def on_helo(self, e: ev.Helo) -> Reply:
        self._reset()
        return _r(c.C250_COMPLETED, "", self.info.hostname)

    async def on_ehlo(self, e: ev.Ehlo) -> Reply:
        self._reset()
        return self.core.ehlo_reply(self.info.hostname)

    async def on_starttls(self, e: ev.StartTLS) -> Reply:
        return R_TLS_GO

    async def on_rset(self, e: ev.Rset) -> Reply:
        self._reset()
        return R_OK

    async def on_noop(self, e: ev.Noop) -> Reply:
        return R_OK

    async def on_quit(self, e: ev.Quit) -> Reply:
        return R_BYE

    async def on_vrfy(self, e: ev.Vrfy | ev.Expn) -> Reply:
        return R_VRFY  # RFC 5321 3.5.3: 252 when not verifying

    async def on_help(self, e: ev.Help) -> Reply:
        return R_HELP

    # --- authentication -------------------------------------------------------------

    async def on_auth(self, e: ev.Auth) -> Reply:
        if not self.svc.auth_limiter.allowed(self.info.remote_ip):
            self.svc.metrics.auth_attempts.inc(protocol="smtp", result="ratelimited")
            return R_AUTH_LIMIT
        try:
            self._mech = sasl.new_server_mechanism(
                e.mechanism, channel_binding=self.info.channel_binding, hostname=self.info.hostname
            )
        except Exception:
            self._mech = None
            return _r(
                c.C504_PARAM_NOT_IMPLEMENTED, c.SE_PROTO5_BAD_PARAMS_4, "mechanism not supported"
            )
        self._mech_name = e.mechanism.upper()
        initial = None if e.initial_response is None else _b64(e.initial_response)
        return await self._auth_step(self._mech.start(initial))

    async def on_auth_response(self, e: ev.AuthResponse) -> Reply:
        if self._final_ok is not None:
            ok, self._final_ok = self._final_ok, None
            if e.data:
                return await self._auth_failed(sasl.Failure("data after server-final", True))
            return self._auth_ok(ok)
        assert self._mech is not None
        return await self._auth_step(self._mech.step(_b64(e.data)))

    def _auth_ok(self, out: sasl.Success) -> Reply:
        self.account, self.username = self._account_of(out.username), out.username
        self.svc.auth_limiter.reset(self.info.remote_ip)
        self.svc.metrics.auth_attempts.inc(protocol="smtp", result="ok")
        self.log.info("authenticated", extra={"user": out.username, "mechanism": self._mech_name})
        return R_AUTH_OK

    async def on_auth_end(self, e: ev.AuthCancelled | ev.AuthBadResponse) -> Reply:
        self._mech = None
        self._final_ok = None
        return e.reply

    async def _auth_step(self, out: sasl.Event) -> Reply:
        assert self._mech is not None
        if isinstance(out, sasl.NeedCredentials):
            out = await self._credentials(out.username)
        if isinstance(out, sasl.Challenge):
            return _r(c.C334_CONTINUE_AUTH, "", sasl.encode_challenge(out.data).decode())
        self._mech = None
        if isinstance(out, sasl.Success):
            if out.final:
                # RFC 4954 4: 235 carries no data, so SCRAM's server-final message
                # goes in one more 334; the client answers with an empty line.
                self._final_ok = out
                return _r(c.C334_CONTINUE_AUTH, "", sasl.encode_challenge(out.final).decode())
            return self._auth_ok(out)
        assert isinstance(out, sasl.Failure)
        return await self._auth_failed(out)

    async def _auth_failed(self, out: sasl.Failure) -> Reply:
        self.core.auth_done(False)
        if not out.user_error:
            self.log.error("authentication error", extra={"reason": out.reason})
            return R_AUTH_TEMP
        self.auth_failures += 1
        self.svc.auth_limiter.record_failure(self.info.remote_ip)
        self.svc.metrics.auth_attempts.inc(protocol="smtp", result="badcreds")
        log_auth_failure(
            self.log.logger,
            protocol="smtp",
            mechanism=self._mech_name,
            username=out.username,
            remote_ip=self.info.remote_ip,
            reason=out.reason,
        )
        delay = (
            delay_for(self.auth_failures) if self.svc.config.limits.unknown_recipient_delay_s else 0
        )
        if delay:
            await asyncio.sleep(delay)  # growing delay: slows password guessing
        return R_AUTH_FAIL

    async def _credentials(self, username: str) -> sasl.Event:
        assert self._mech is not None
        mech = self._mech
        creds = await self.svc.credentials(self._account_of(username) or None)
        if mech.expensive_verify:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.svc.cpu_executor, mech.credentials, creds)
        return mech.credentials(creds)

    def _account_of(self, username: str) -> str:
        """The account a login name means: an address of it, or the account name."""
        return self.svc.dynamic.account_for_login(username) or ""

    # --- the mail transaction ---------------------------------------------------------

    async def on_mail(self, e: ev.Mail) -> Reply:
        self._reset()
        try:
            sender = parse_smtp_path(f"<{e.path}>", utf8=e.smtputf8)
        except AddressError as err:
            return _address_reply(err, sender=True)
        if self.svc.config.localserve and sender is not None:
            sim = simulated(sender.localpart, Stage.MAIL)
            if sim is not None:
                return await self._simulate(sim)
        if self.info.submission and not self._owns(sender):
            return R_NOT_YOURS
        self.tx = Transaction(sender, e.smtputf8, e.requiretls)
        return R_SENDER_OK

    def _owns(self, addr: Address | None) -> bool:
        """Whether ``addr`` is an address of the authenticated account."""
        d = self.svc.dynamic
        if addr is None or addr.domain.ascii not in d.domains:
            return False
        return d.addresses.get(d.canonical(addr.localpart, addr.domain)) == self.account

    async def on_rcpt(self, e: ev.Rcpt) -> Reply:
        cfg = self.svc.config
        if is_postmaster_path(f"<{e.path}>") and cfg.postmaster_account:
            # RFC 5321 4.1.1.3: "Postmaster" without a domain must be accepted.
            pm = parse_smtp_path(f"<postmaster@{cfg.hostname}>", utf8=True)
            assert pm is not None
            self.tx.recipients.append(LocalRecipient(pm, cfg.postmaster_account, "postmaster"))
            return R_RCPT_OK
        try:
            rcpt = parse_smtp_path(f"<{e.path}>", utf8=self.tx.smtputf8)
        except AddressError as err:
            return _address_reply(err, sender=False)
        if rcpt is None:  # RCPT TO:<> is no recipient
            return _r(c.C501_PARAM_SYNTAX_ERROR, c.SE_ADDR1_MAILBOX_SYNTAX_3, "empty recipient")
        if cfg.localserve:
            sim = simulated(rcpt.localpart, Stage.RCPT)
            if sim is not None:
                return await self._simulate(sim)
        res = resolve(self.svc.dynamic, rcpt, cfg.postmaster_account)
        remote = not res.local_domain and self.info.submission
        if not res.recipients and cfg.localserve and cfg.postmaster_account and not remote:
            # localserve: everything to the local account (as mox); submitted mail
            # for other domains goes through the queue, which delivers it back here.
            self.tx.recipients.append(LocalRecipient(rcpt, cfg.postmaster_account, str(rcpt)))
            return R_RCPT_OK
        if remote:
            if self.svc.queue is None:
                return R_NO_OUTGOING
            if rcpt not in self.tx.remote:
                self.tx.remote.append(rcpt)
            return R_RCPT_OK
        if not res.local_domain:
            return R_NO_RELAY
        if not res.recipients:
            await asyncio.sleep(cfg.limits.unknown_recipient_delay_s)
            self.log.info("unknown recipient", extra={"rcpt": str(rcpt)})
            return R_NO_USER
        if res.alias is not None and not alias_allows_sender(
            res.alias, self.svc.dynamic, self.tx.mail_from
        ):
            return R_ALIAS_CLOSED
        self.tx.recipients += res.recipients
        return R_RCPT_OK

    async def on_data(self, e: ev.DataStart) -> Reply:
        self.tx.spool = Spool(self.svc.data_dir / "tmp")
        return R_GO

    async def on_chunk(self, e: ev.DataChunk) -> None:
        if self.tx.spool is None:  # BDAT content: the first chunk opens the spool
            self.tx.spool = Spool(self.svc.data_dir / "tmp")
        self.tx.spool.write(e.data)

    async def on_bdat(self, e: ev.Bdat) -> None:
        return None

    async def on_data_end(self, e: ev.DataEnd) -> Reply:
        if e.error is not None:
            self._reset()
            self.log.info("message refused", extra={"reason": e.error.text})
            return _with_id(e.error, self.info.cid)
        return await self._finish()

    async def on_bdat_end(self, e: ev.BdatEnd) -> Reply:
        if e.error is not None:
            self._reset()
            return e.error
        if not e.last:
            size = self.tx.spool.size if self.tx.spool else 0
            return _r(c.C250_COMPLETED, c.SE_OTHER0_0, f"{size} octets received")
        return await self._finish()

    async def _simulate(self, sim: Any) -> Reply:
        if sim.code == 0:  # "timeout": say nothing until the client gives up
            await asyncio.sleep(self.svc.config.limits.idle_timeout_s)
            return _r(c.C421_SERVICE_UNAVAILABLE, c.SE_OTHER0_0, "simulated timeout")
        return _r(sim.code, sim.secode, sim.text)

    async def _finish(self) -> Reply:
        """The message is complete: check it, store it, answer for all recipients."""
        tx = self.tx
        assert tx.spool is not None
        try:
            refusal = self._check_message(tx.spool.head())
            if refusal is not None:
                return refusal
            if self.svc.config.localserve:
                for r in tx.recipients:
                    sim = simulated(r.rcpt.localpart, Stage.DATA)
                    if sim is not None:
                        return await self._simulate(sim)
            signature = await self._sign(tx) if self.info.submission else b""
            verdict = await self._check(tx) if self.checker is not None else None
            if verdict is not None and verdict.dmarc is not None:
                # Recorded before the reply (well under a millisecond on the admin
                # thread), so a report never misses a message the sender saw handled.
                await self.svc.record_evaluation(self._evaluation(tx, verdict))
            if verdict is not None and verdict.reject:
                self.log.info(
                    "message rejected by dmarc policy",
                    extra={"from_domain": verdict.dmarc.from_domain if verdict.dmarc else ""},
                )
                self.svc.metrics.deliveries.inc(result="rejected")
                return R_DMARC_REJECT
            return await self._store(tx, verdict, signature)
        finally:
            self._reset()

    async def _sign(self, tx: Transaction) -> bytes:
        """DKIM-Signature fields for a submitted message, with the keys of its From
        domain (or the closest parent domain with keys); b"" when it has none."""
        assert tx.spool is not None
        froms = mailboxes(parse_address_list(parse_header(tx.spool.head()).get("from") or ""))
        addr = froms[0].address() if froms else None
        if addr is None:
            return b""
        selectors = dkim.selectors_for_domain(addr.domain.ascii, self.svc.dkim.selectors)
        if not selectors:
            return b""
        loop = asyncio.get_running_loop()
        sign = functools.partial(dkim.sign, tx.spool.content(), selectors=selectors)
        try:
            return await loop.run_in_executor(self.svc.cpu_executor, sign)
        except dkim.SignError as e:
            self.log.warning("dkim signing failed", extra={"err": str(e)})
            return b""

    def _evaluation(self, tx: Transaction, v: Verdict) -> Evaluation:
        """What a DMARC aggregate report needs to know about this message."""
        dm = v.dmarc
        assert dm is not None
        disposition = "reject" if v.reject else "quarantine" if dm.quarantine else "none"
        return Evaluation(
            policy_domain=dm.domain,
            from_domain=dm.from_domain,
            source_ip=self.info.remote_ip,
            envelope_from=tx.mail_from.domain.ascii if tx.mail_from else "",
            envelope_to=tx.recipients[0].rcpt.domain.ascii if tx.recipients else "",
            disposition=disposition,
            dmarc=str(dm.status),
            aligned_spf=dm.aligned_spf,
            aligned_dkim=dm.aligned_dkim,
            spf={"domain": v.spf.domain, "result": str(v.spf.status)},
            dkim=[
                {"domain": r.domain, "selector": r.selector, "result": str(r.status)}
                for r in v.dkim
                if r.domain
            ],
        )

    async def _check(self, tx: Transaction) -> Verdict:
        assert self.checker is not None and tx.spool is not None
        return await self.checker.check(
            remote_ip=self.info.remote_ip,
            helo=self.core.hello or "",
            mail_from=tx.mail_from,
            content=tx.spool.content(),
            head=tx.spool.head(),
        )

    def _check_message(self, head: bytes) -> Reply | None:
        if not self.info.submission:
            return None
        # RFC 6409 8.1: the message's From must be the authenticated user's.
        header = parse_header(head)
        froms = mailboxes(parse_address_list(header.get("from") or ""))
        if len(froms) != 1:
            return _r(
                c.C550_MAILBOX_UNAVAILABLE,
                c.SE_MSG6_OTHER_0,
                "message must have exactly one From address",
            )
        if not self._owns(froms[0].address()):
            return _r(
                c.C550_MAILBOX_UNAVAILABLE,
                c.SE_POL7_DELIVERY_UNAUTH_1,
                "From address must be an address of your account",
            )
        return None

    async def _store(
        self, tx: Transaction, verdict: Verdict | None = None, signature: bytes = b""
    ) -> Reply:
        assert tx.spool is not None
        self.messages += 1
        msgid = f"{self.info.cid}-{self.messages}"
        now = datetime.now(UTC)
        one = len({r.rcpt for r in tx.recipients} | set(tx.remote)) == 1
        common = verdict.headers if verdict is not None else self._auth_results()
        mailbox = "Junk" if verdict is not None and verdict.junk else local.INBOX

        def trace(rcpt: Address) -> bytes:
            info = ReceivedInfo(
                helo=self.core.hello or "",
                remote_ip=self.info.remote_ip,
                remote_name="",
                hostname=self.info.hostname,
                esmtp=self.core.ehlo,
                tls=self.info.tls,
                authenticated=bool(self.account),
                smtputf8=tx.smtputf8,
                msgid=msgid,
                recipient=rcpt.pack(True) if one else "",
            )
            return received(info, now)

        def prefix(r: LocalRecipient) -> bytes:
            rp = f"<{tx.mail_from.pack(True)}>" if tx.mail_from else "<>"
            return f"Return-Path: {rp}\r\n".encode() + trace(r.rcpt) + common + signature

        content = strip_forged_results(tx.spool.content(), self.info.hostname)
        queued: list[int] = []
        if tx.remote:
            # Queued durably before anything is delivered locally: if queueing fails
            # the client retries the whole message and nobody gets it twice.
            try:
                queued = await self._enqueue(tx, content, trace(tx.remote[0]) + signature)
            except Exception:
                self.log.exception("queueing message failed", extra={"msgid": msgid})
                return _with_id(R_TEMP, msgid)
        results = []
        if tx.recipients:
            results = await local.deliver(
                self.svc.accounts, tx.recipients, content, prefix, mailbox=mailbox
            )
        outcomes = {r.outcome for r in results}
        for r in results:  # delivered / quota / error per account; Junk counted apart
            junk = r.outcome is local.Outcome.DELIVERED and mailbox == "Junk"
            self.svc.metrics.deliveries.inc(result="junk" if junk else str(r.outcome))
        self.log.info(
            "message received",
            extra={
                "msgid": msgid,
                "size": tx.spool.size,
                "recipients": len(tx.recipients) + len(tx.remote),
                "queued": ",".join(map(str, queued)),
                "outcomes": ",".join(sorted(outcomes)),
            },
        )
        if queued:
            if outcomes - {local.Outcome.DELIVERED}:
                # The queued copy is acknowledged with this reply, so the local failure
                # cannot be reported with it.
                self.log.error(
                    "local delivery failed for a message also queued",
                    extra={"msgid": msgid, "outcomes": ",".join(sorted(outcomes))},
                )
            return _r(c.C250_COMPLETED, c.SE_OTHER0_0, f"queued, id {msgid}")
        if local.Outcome.DELIVERED in outcomes:
            return _r(c.C250_COMPLETED, c.SE_OTHER0_0, f"delivered, id {msgid}")
        if outcomes == {local.Outcome.QUOTA}:
            return R_QUOTA
        return _with_id(R_TEMP, msgid)

    async def _enqueue(self, tx: Transaction, content: bytes | Path, prefix: bytes) -> list[int]:
        """Put the message in the outgoing queue for the remote recipients; returns
        after the queue committed it."""
        assert tx.spool is not None and self.svc.queue is not None
        head = tx.spool.head()
        header = parse_header(head)
        msg = NewMessage(
            account=self.account,
            sender=tx.mail_from.pack(tx.smtputf8) if tx.mail_from else "",
            recipients=tuple(a.pack(tx.smtputf8) for a in tx.remote),
            content=content,
            prefix=prefix,
            smtputf8=tx.smtputf8,
            requiretls=tx.requiretls,
            tls_required_no=not tx.requiretls and tls_required_no(head),
            message_id=(header.get("message-id") or "").strip()[:500],
            subject=(header.get("subject") or "").strip()[:500],
        )
        return await self.svc.queue.enqueue(msg)

    def _auth_results(self) -> bytes:
        if not self.account:
            return b""
        # RFC 8601 2.7.4: smtp.auth is the authenticated identity.
        return (
            f"Authentication-Results: {self.info.hostname};\r\n"
            f"\tauth=pass smtp.auth={self.username}\r\n"
        ).encode()


def _b64(data: bytes) -> bytes:
    """The SASL mechanisms take the client's base64 line; the core decoded it."""
    return base64.b64encode(data) if data else b"="


def _with_id(reply: Reply, ident: str) -> Reply:
    return Reply(reply.code, reply.secode, f"{reply.text} (id {ident})")


def _address_reply(err: AddressError, *, sender: bool) -> Reply:
    if err.problem is AddressProblem.NEEDS_SMTPUTF8:  # RFC 6531 3.5
        return _r(
            c.C553_BAD_MAILBOX_NAME,
            c.SE_MSG6_NON_ASCII_ADDR_7,
            "non-ascii address requires SMTPUTF8",
        )
    secode = c.SE_ADDR1_SENDER_SYNTAX_7 if sender else c.SE_ADDR1_MAILBOX_SYNTAX_3
    return _r(c.C501_PARAM_SYNTAX_ERROR, secode, f"invalid address: {err.reason}")


def new_cid() -> str:
    """A short random connection id for logs and Received headers."""
    return secrets.token_hex(6)
