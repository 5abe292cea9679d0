"""The asyncio shell of the SMTP server: sockets, TLS, flow control, timeouts.

One :class:`SMTPConnection` (an ``asyncio.BufferedProtocol`` with a reused receive
buffer) per client. Received bytes go straight into the sans-I/O core; a session
task pulls events, asks :class:`app.smtp.session.Session` for the replies and
writes them, batched until the core needs more input (RFC 2920 pipelining).
Reading pauses while unprocessed input piles up, writing waits when the client
does not read. Nothing here decides protocol replies.
"""

import asyncio
import logging
import ssl
from dataclasses import dataclass

from app.auth.channelbinding import channel_binding_for
from app.config.static import Listener
from app.delivery.checks import Checker
from app.log import ConnLogger
from app.services import Services
from app.smtp import codes as c
from app.smtp import events as ev
from app.smtp.codes import Reply
from app.smtp.protocol import Limits, ServerProtocol
from app.smtp.session import ConnInfo, Session, new_cid
from app.tls.certs import CertStore

log = logging.getLogger(__name__)

READ_BUFFER = 64 * 1024
PAUSE_ABOVE = 256 * 1024  # unprocessed input before we stop reading
TLS_HANDSHAKE_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What kind of SMTP service a listening socket offers."""

    listener_name: str
    listener: Listener
    hostname: str
    submission: bool
    implicit_tls: bool
    certs: CertStore | None  # for STARTTLS and implicit TLS; contexts built on first use
    checker: Checker | None = None  # message authentication, for delivery (port 25)


@dataclass(frozen=True, slots=True)
class Stack:
    """The connections of one SMTP service on one listener
    (an :class:`app.listening.ConnectionStack`)."""

    services: Services
    endpoint: Endpoint

    def protocol(self) -> "SMTPConnection":
        return SMTPConnection(self.services, self.endpoint)

    def close(self) -> None:
        """Nothing to end: open sessions finish within the server's shutdown grace."""


def mechanisms(tls: bool, binding: bool, without_tls: bool = False) -> list[str]:
    """SASL mechanisms to offer; PLAIN and LOGIN need TLS unless the listener allows
    password logins without it."""
    from app.auth.sasl import mechanisms_for

    return mechanisms_for(tls or without_tls, binding, plain_allowed=tls or without_tls)


class SMTPConnection(asyncio.BufferedProtocol):
    """One client connection."""

    def __init__(self, svc: Services, endpoint: Endpoint) -> None:
        self.svc = svc
        self.endpoint = endpoint
        self._buf = bytearray(READ_BUFFER)
        self._view = memoryview(self._buf)
        self._wake = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._lost = False
        self._paused = False
        self._admitted = False
        self._tls_early: bytearray | None = None
        self.transport: asyncio.Transport | None = None
        self.core: ServerProtocol | None = None
        self.remote_ip = ""

    # --- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.remote_ip = str(peer[0]) if peer else "0.0.0.0"
        refusal = self.svc.connections.acquire(self.remote_ip)
        if refusal is not None:
            log.info("connection refused", extra={"remote": self.remote_ip, "reason": refusal})
            transport.write(
                Reply(
                    c.C421_SERVICE_UNAVAILABLE, c.SE_POL7_OTHER_0, f"{refusal}, try again later"
                ).encode()
            )
            transport.close()
            return
        self._admitted = True
        ep = self.endpoint
        kind = "submissions" if ep.implicit_tls else "submission" if ep.submission else "smtp"
        self.svc.metrics.connections.inc(service=kind)
        self.svc.spawn(self._run())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self.core is None:
            return
        if self._tls_early is not None:
            # Decrypted data that arrived before start_tls() returned (a client may
            # send EHLO right behind its handshake): the core gets it after
            # start_tls_done(), which drops the plaintext sent after STARTTLS.
            self._tls_early += self._view[:nbytes]
            return
        self.core.receive_data(bytes(self._view[:nbytes]))
        self._wake.set()
        if self.core.pending_input > PAUSE_ABOVE and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        if self.core is not None:
            self.core.receive_data(b"")
        self._wake.set()
        if self.transport is not None and self.transport.get_extra_info("ssl_object"):
            return None  # TLS transports close on EOF regardless
        return True  # we close the transport ourselves when the session ends

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake.set()
        self._can_write.set()
        if self._admitted:
            self._admitted = False
            self.svc.connections.release(self.remote_ip)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # --- the session loop ------------------------------------------------------------

    async def _run(self) -> None:
        ep, cfg = self.endpoint, self.svc.config
        cid = new_cid()
        tls_on = ep.implicit_tls
        self.core = ServerProtocol(
            _limits(self.svc),
            submission=ep.submission,
            tls_active=tls_on,
            starttls=ep.certs is not None and not ep.implicit_tls,
            auth_mechanisms=mechanisms(tls_on, False, ep.listener.auth_without_tls),
            auth_requires_tls=not ep.listener.auth_without_tls,
        )
        logger = ConnLogger(
            log, {"cid": cid, "remote": self.remote_ip, "listener": ep.listener_name}
        )
        info = ConnInfo(ep.listener_name, ep.hostname, self.remote_ip, ep.submission, cid)
        session = Session(self.svc, info, self.core, logger, ep.checker)
        if tls_on:
            self._tls_up(info)
        logger.info("smtp connection", extra={"submission": ep.submission, "tls": tls_on})
        out: list[bytes] = [self.core.greeting(ep.hostname)]
        try:
            await self._loop(session, out, cfg.limits.idle_timeout_s)
        except Exception:
            logger.exception("smtp session failed")
            self._write(
                [
                    Reply(
                        c.C421_SERVICE_UNAVAILABLE, c.SE_SYS3_OTHER_0, f"internal error (id {cid})"
                    ).encode()
                ]
            )
        finally:
            session.close()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

    async def _loop(self, session: Session, out: list[bytes], idle: float) -> None:
        core = self.core
        assert core is not None
        while True:
            event = core.next_event()
            if event is ev.NEED_DATA:
                if not await self._flush(out) or self._lost:
                    return
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                try:
                    await asyncio.wait_for(self._wake.wait(), idle)
                except TimeoutError:
                    self._write(
                        [
                            Reply(
                                c.C421_SERVICE_UNAVAILABLE, c.SE_OTHER0_0, "timeout, closing"
                            ).encode()
                        ]
                    )
                    return
                self._wake.clear()
                continue
            assert isinstance(event, ev.Event)
            if isinstance(event, ev.ConnectionClosed):
                return
            reply = await session.handle(event)
            if not isinstance(event, ev.NO_REPLY):
                assert reply is not None
                out.append(core.send(reply))
            if isinstance(event, ev.TERMINAL):
                await self._flush(out)
                return
            tls_go = isinstance(event, ev.StartTLS) and reply is not None and reply.code == 220
            if tls_go and (not await self._flush(out) or not await self._starttls(session)):
                return

    def _write(self, out: list[bytes]) -> None:
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))
        out.clear()

    async def _flush(self, out: list[bytes]) -> bool:
        """Write pending replies; wait while the client does not read. False: gone."""
        self._write(out)
        if not self._can_write.is_set():
            try:
                await asyncio.wait_for(
                    self._can_write.wait(), self.svc.config.limits.idle_timeout_s
                )
            except TimeoutError:
                return False
        return not self._lost

    async def _starttls(self, session: Session) -> bool:
        assert self.transport is not None and self.core is not None
        assert self.endpoint.certs is not None
        ctx = self.endpoint.certs.context
        loop = asyncio.get_running_loop()
        self._tls_early = bytearray()
        try:
            transport = await loop.start_tls(
                self.transport,
                self,
                ctx,
                server_side=True,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            session.log.info("tls handshake failed", extra={"err": str(e)})
            return False
        finally:
            early, self._tls_early = bytes(self._tls_early or b""), None
        if transport is None:
            return False
        self.transport = transport
        self.core.start_tls_done()
        self._tls_up(session.info)
        if early:
            self.core.receive_data(early)
        return True

    def _tls_up(self, info: ConnInfo) -> None:
        assert self.transport is not None and self.core is not None
        sslobj = self.transport.get_extra_info("ssl_object")
        if sslobj is not None:
            cipher = sslobj.cipher()
            info.tls = f"{sslobj.version()} {cipher[0] if cipher else ''}".strip()
            info.channel_binding = channel_binding_for(sslobj)
        self.core.auth_mechanisms = tuple(mechanisms(True, info.channel_binding is not None))


def _limits(svc: Services) -> Limits:
    lim = svc.config.limits
    return Limits(
        max_line_length=max(lim.max_line_length, 512),
        max_auth_line_length=max(12288 + 2, lim.max_line_length),
        max_recipients=lim.max_recipients,
        max_message_size=lim.max_message_size,
        max_bad_commands=lim.max_bad_commands,
    )
