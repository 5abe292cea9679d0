"""The asyncio shell of the IMAP server: sockets in, parser events, handlers, bytes out.

One :class:`IMAPProtocol` (an ``asyncio.BufferedProtocol`` whose receive buffer is
shared by every connection of a listener: data is copied into the parser at once)
and one :class:`Connection` task per client. The task pulls events from the
sans-I/O :class:`~app.imap.parser.CommandParser`, dispatches commands through the
per-state tables of :mod:`app.imap.dispatch`, and writes the replies of each
command in one write.

Flow control, both ways: while a command runs, reading pauses once more than
:data:`PAUSE_READING_AT` bytes wait in the parser; when the transport's write
buffer is full (``pause_writing``), no further command is taken until it drains,
so a client that sends thousands of commands without reading holds a bounded
amount of our memory. A client silent longer than ``limits.idle_timeout_s`` (30
minutes in IDLE, RFC 2177 3) gets ``* BYE`` and is disconnected.

Closing a listener (shutdown, new configuration) tells every session of it to
say ``* BYE`` and close once its current command finished.
"""

import asyncio
import base64
import contextlib
import enum
import logging
import ssl
from collections.abc import Awaitable
from typing import Any

from app.auth.channelbinding import channel_binding_for
from app.config.static import Listener
from app.imap import dispatch
from app.imap import protocol as p
from app.imap.commands import Command, Fetch, Search, StartTLS, Store
from app.imap.errors import IMAPBad, IMAPNo, ParseError
from app.imap.parser import (
    NEED_DATA,
    AppendBegin,
    AppendData,
    AuthLine,
    CommandParser,
    Event,
    IdleDone,
    LineTooLong,
    LiteralTooLarge,
    NeedContinuation,
)
from app.imap.session import FLUSH_AT, Session, SessionOverflow, SharedState, State
from app.log import ConnLogger
from app.services import Services
from app.store import (
    InvalidFlag,
    InvalidMailboxName,
    MailboxNotFound,
    QuotaExceeded,
    StoreClosed,
)

log = logging.getLogger(__name__)

RECV_BUFFER = 64 * 1024
PAUSE_READING_AT = 256 * 1024
IDLE_TIMEOUT_S = 30 * 60.0  # RFC 2177 3: at least 29 minutes
MAX_LINE = 64 * 1024  # UID sets from real clients exceed a few KiB


class Hangup(Exception):
    """End the connection, after ``* BYE text`` when ``text`` is set."""

    def __init__(self, text: str | None, code: p.Code | None = None) -> None:
        super().__init__(text or "hangup")
        self.text = text
        self.code = code


class Wake(enum.Enum):
    DATA = "data"
    EOF = "eof"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    OTHER = "other"


def shared_state(services: Services) -> SharedState:
    """The IMAP state shared by every listener of this server, kept on ``services``.

    ``Services`` has no field for it (yet), so it lives in the instance's ``__dict__``
    under ``protocol_state["imap"]``: per server, never module-level.
    """
    state: SharedState = services.protocol_state.setdefault("imap", SharedState())
    return state


class Listening:
    """The connections of one IMAP service on one listener: the sessions it accepted,
    which ``close`` ends (an :class:`app.listening.ConnectionStack`)."""

    def __init__(
        self,
        services: Services,
        name: str,
        listener: Listener,
        implicit_tls: bool,
        tls_handshake_timeout: float,
    ) -> None:
        self.services = services
        self.tls_handshake_timeout = tls_handshake_timeout  # for STARTTLS
        self.name = name
        self.listener = listener
        self.implicit_tls = implicit_tls
        self.shared = shared_state(services)
        self.sessions: set[Connection] = set()
        self.recv = memoryview(bytearray(RECV_BUFFER))

    def protocol(self) -> "IMAPProtocol":
        return IMAPProtocol(self)

    def close(self) -> None:
        for conn in list(self.sessions):
            conn.shutdown("server shutting down")


class IMAPProtocol(asyncio.BufferedProtocol):
    """Transport callbacks of one connection, forwarded to its :class:`Connection`."""

    def __init__(self, listening: Listening) -> None:
        self.listening = listening
        self.conn: Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        lst = self.listening
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) else "unknown"
        svc = lst.services
        refused = svc.connections.acquire(ip)
        if refused is not None:
            log.info("imap connection refused", extra={"remote": ip, "reason": refused})
            transport.write(p.untagged(p.Status.BYE, refused, p.UNAVAILABLE))
            transport.close()
            return
        if not svc.auth_limiter.allowed(ip):
            svc.connections.release(ip)
            log.info("imap connection refused, too many failed logins", extra={"remote": ip})
            transport.write(p.untagged(p.Status.BYE, "too many authentication failures"))
            transport.close()
            return
        svc.metrics.connections.inc(service="imaps" if lst.implicit_tls else "imap")
        self.conn = Connection(lst, self, transport, ip)
        lst.sessions.add(self.conn)
        lst.services.spawn(self.conn.run())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.listening.recv

    def buffer_updated(self, nbytes: int) -> None:
        if self.conn is not None:
            self.conn.feed(bytes(self.listening.recv[:nbytes]))

    def eof_received(self) -> bool | None:
        if self.conn is not None:
            self.conn.lost()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.conn.lost()

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.writable.clear()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.writable.set()


class Connection:
    """One client connection: the command loop and what handlers need of the socket."""

    def __init__(
        self,
        listening: Listening,
        protocol: IMAPProtocol,
        transport: asyncio.Transport,
        ip: str,
    ) -> None:
        self.listening = listening
        self.services = listening.services
        self.protocol = protocol
        self.transport = transport
        self.ip = ip
        self.limits = self.services.config.limits
        shared = listening.shared
        cid = shared.new_cid()
        self.log = ConnLogger(log, {"cid": cid, "remote": ip})
        tls_available = listening.name in self.services.certs
        self.session = Session(
            self.services,
            shared,
            self,
            cid=cid,
            remote_ip=ip,
            listener=listening.name,
            tls=listening.implicit_tls,
            tls_available=tls_available,
            logger=self.log,
        )
        self.parser = self._new_parser()
        self.writable = asyncio.Event()
        self.writable.set()
        self._evloop = asyncio.get_running_loop()
        # The command loop waits on one plain future that feed/lost/shutdown resolve,
        # and a single lazily re-armed timer enforces the idle timeout: no task, no
        # asyncio.wait and no timer handle per command.
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._timed_out = False
        self._waiting = False
        self._paused = False
        self._unread = 0
        self._lost = False
        self._shutdown: str | None = None
        self._bad = 0

    def _new_parser(self) -> CommandParser:
        return CommandParser(
            max_literal=self.limits.max_message_size,
            max_line=max(MAX_LINE, self.limits.max_line_length),
            line_too_long_fatal=True,
            utf8_enabled=self.session.utf8,
        )

    # --- transport side ---------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.parser.receive_data(data)
        self._wake()
        if not self._waiting:
            self._unread += len(data)
            if self._unread > PAUSE_READING_AT and not self._paused:
                self._paused = True
                self.transport.pause_reading()

    def lost(self) -> None:
        self._lost = True
        self._wake()
        self.writable.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def shutdown(self, text: str) -> None:
        """Ask the session to say BYE and close after its current command."""
        self._shutdown = text
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _arm_timer(self, timeout: float) -> None:
        """Make the idle timer fire no later than ``timeout`` seconds from now."""
        self._deadline = self._evloop.time() + timeout
        if self._timer is None or self._timer_at > self._deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = self._deadline
            self._timer = self._evloop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._waiting or self._lost:
            return  # the next wait arms it again
        if self._deadline <= self._timer_at:
            self._timed_out = True
            self._wake()
        else:  # input came meanwhile: the current wait started later
            self._timer_at = self._deadline
            self._timer = self._evloop.call_at(self._deadline, self._on_timer)

    def flush(self) -> None:
        out = self.session.out
        if out:
            if not self._lost and not self.transport.is_closing():
                self.transport.write(bytes(out))
            out.clear()

    async def drain(self) -> None:
        self.flush()
        if not self.writable.is_set():
            try:
                await asyncio.wait_for(self.writable.wait(), self.limits.idle_timeout_s)
            except TimeoutError:
                raise Hangup(None) from None
        if self._lost:
            raise Hangup(None)

    async def wait_input(self, timeout: float, also: Awaitable[Any] | None = None) -> Wake:
        """Flush, then wait for client data (or ``also``); says what woke us."""
        self.flush()
        if self._lost:
            return Wake.EOF
        if self._shutdown is not None:
            return Wake.SHUTDOWN
        self._unread = 0
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        waiter: asyncio.Future[None] = self._evloop.create_future()
        self._waiter = waiter
        self._timed_out = False
        self._waiting = True
        self._arm_timer(timeout)
        try:
            if also is None:
                await waiter
            elif await self._wait_either(waiter, also):
                return Wake.OTHER
        finally:
            self._waiting = False
            self._waiter = None
        if self._lost:
            return Wake.EOF
        if self._shutdown is not None:
            return Wake.SHUTDOWN
        return Wake.TIMEOUT if self._timed_out else Wake.DATA

    async def _wait_either(self, waiter: "asyncio.Future[None]", also: Awaitable[Any]) -> bool:
        """Wait for ``waiter`` or ``also``; True when ``also`` finished first."""
        other = asyncio.ensure_future(also)
        try:
            done, _ = await asyncio.wait({waiter, other}, return_when="FIRST_COMPLETED")
        finally:
            if not other.done():
                other.cancel()
        if other in done:
            other.result()  # raises SessionOverflow when the store gave up on us
            return True
        return False

    async def _next(self, timeout: float) -> Event:
        """The next parser event, waiting for data as needed; Hangup when none comes."""
        while True:
            ev = self.parser.next_event()
            if ev is not NEED_DATA:
                return ev
            if self.parser.closed:
                raise Hangup(None)
            wake = await self.wait_input(timeout)
            if wake == Wake.TIMEOUT:
                raise Hangup("autologout: idle for too long")
            if wake == Wake.SHUTDOWN:
                raise Hangup(self._shutdown)
            if wake == Wake.EOF:
                raise Hangup(None)

    # --- the command loop ------------------------------------------------------------

    async def run(self) -> None:
        s = self.session
        try:
            if s.tls:
                self._tls_established()
            self.log.info("imap connection", extra={"listener": s.listener, "tls": s.tls})
            greeting = p.status_line(
                None, p.Status.OK, "pillarbox imap ready", p.capability_code(s.capabilities())
            )
            s.write(greeting)
            await self._loop()
        except Hangup as e:
            if e.text:
                s.write(p.untagged(p.Status.BYE, e.text, e.code))
        except SessionOverflow:
            s.write(p.untagged(p.Status.BYE, "too many changes to report, please reconnect"))
        except asyncio.CancelledError:
            s.write(p.untagged(p.Status.BYE, "server shutting down"))
            raise
        except Exception:
            self.log.exception("imap session failed")
            s.write(p.untagged(p.Status.BYE, "internal error", p.SERVERBUG))
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        from app.imap import cmd_append

        with contextlib.suppress(Exception):
            self.flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport.close()
        cmd_append.abort(self.session)
        self.session.close()
        self.services.connections.release(self.ip)
        self.listening.sessions.discard(self)
        self.log.info("imap connection closed")

    async def _loop(self) -> None:
        s = self.session
        while s.state != State.LOGOUT:
            if self._shutdown is not None:
                raise Hangup(self._shutdown)
            if not self.writable.is_set() or len(s.out) > FLUSH_AT:
                await self.drain()
            ev = await self._next(float(self.limits.idle_timeout_s))
            await self._event(ev)
        self.flush()

    async def _event(self, ev: Event) -> None:
        from app.imap import cmd_append

        s = self.session
        if isinstance(ev, Command):
            await self.command(ev)
        elif isinstance(ev, NeedContinuation):
            s.write(p.continuation("Ready"))
            self.flush()
        elif isinstance(ev, AppendBegin):
            refused = cmd_append.begin(s, ev)
            if refused is not None:
                self.parser.reject_literal()
                s.write(refused)
        elif isinstance(ev, AppendData):
            cmd_append.data(s, ev.data)
        elif isinstance(ev, ParseError):
            cmd_append.abort(s)
            self._bad_reply(ev.tag, ev.message, ev.code)
        elif isinstance(ev, LiteralTooLarge):
            cmd_append.abort(s)
            if ev.fatal:
                raise Hangup("literal too large", p.TOOBIG)
            s.write(p.tagged(ev.tag or "*", p.Status.NO, "literal too large", p.TOOBIG))
        elif isinstance(ev, LineTooLong):
            cmd_append.abort(s)
            if ev.fatal:
                raise Hangup("command line too long", p.TOOBIG)
            self._bad_reply(ev.tag, "command line too long", "TOOBIG")
        elif isinstance(ev, AuthLine | IdleDone):
            self._bad_reply(None, "unexpected line")

    def _bad_reply(self, tag: str | None, text: str, code: str | p.Code | None = None) -> None:
        self.session.write(p.status_line(tag, p.Status.BAD, text, code))
        self._bad += 1
        if self._bad > self.limits.max_bad_commands:
            raise Hangup("too many bad commands")

    async def command(self, cmd: Command) -> None:
        """Run one command through the dispatch table and write its tagged reply."""
        s = self.session
        tag = cmd.tag
        if isinstance(cmd, StartTLS):
            await self._starttls(cmd)
            return
        handler = dispatch.handler_for(s.state, cmd)
        if isinstance(handler, str):
            self._bad_reply(tag, handler)
            return
        try:
            reply = await handler(s, cmd)
        except IMAPNo as e:
            self._sync_quietly(cmd)
            s.write(p.tagged(tag, p.Status.NO, e.message, e.code))
            return
        except IMAPBad as e:
            self._sync_quietly(cmd)
            self._bad_reply(tag, e.message, e.code)
            return
        except (Hangup, SessionOverflow, asyncio.CancelledError):
            raise
        except Exception as e:  # mapped to a reply; unexpected ones logged once
            self._sync_quietly(cmd)
            s.write(self._error_reply(tag, dispatch.command_name(cmd), e))
            return
        self._sync(cmd)
        self.parser.utf8_enabled = s.utf8
        if reply is None:
            # The same bytes as p.tagged(tag, OK, f"{name} done"): tag and name are
            # ASCII without CR/LF, so nothing needs cleaning.
            name = dispatch.command_name(cmd)
            s.write(b"%s OK %s done\r\n" % (tag.encode("ascii"), name.encode("ascii")))
        else:
            s.write(p.tagged(tag, p.Status.OK, reply.text, reply.code))

    def _sync(self, cmd: Command) -> None:
        # RFC 9051 7.5.1: no EXPUNGE during FETCH, STORE or SEARCH by sequence number.
        seqcmd = isinstance(cmd, Fetch | Store | Search) and not cmd.uid
        self.session.sync(expunges=not seqcmd)

    def _sync_quietly(self, cmd: Command) -> None:
        with contextlib.suppress(IMAPBad):
            self._sync(cmd)

    def _error_reply(self, tag: str, name: str, e: Exception) -> bytes:
        if isinstance(e, QuotaExceeded):
            return p.tagged(tag, p.Status.NO, "over quota", p.OVERQUOTA)
        if isinstance(e, MailboxNotFound):
            return p.tagged(tag, p.Status.NO, "no such mailbox", p.NONEXISTENT)
        if isinstance(e, InvalidMailboxName):
            return p.tagged(tag, p.Status.NO, f"invalid mailbox name: {e.reason}", p.CANNOT)
        if isinstance(e, InvalidFlag):
            return p.tagged(tag, p.Status.BAD, "invalid flag or keyword")
        if isinstance(e, StoreClosed):
            return p.tagged(tag, p.Status.NO, "account unavailable, try again", p.UNAVAILABLE)
        self.log.exception("imap command failed", extra={"command": name})
        return p.tagged(tag, p.Status.NO, "internal error, try again later", p.SERVERBUG)

    # --- connection-level operations for handlers ------------------------------------

    async def sasl_exchange(self, challenge: bytes) -> AuthLine:
        self.session.write(b"+ " + base64.b64encode(challenge) + p.CRLF)
        self.parser.expect_auth_line()
        ev = await self._next(float(self.limits.idle_timeout_s))
        if isinstance(ev, AuthLine):
            return ev
        if isinstance(ev, LineTooLong):
            raise Hangup("authentication line too long", p.TOOBIG)
        raise Hangup("protocol error during authentication")

    async def idle(self, tag: str) -> None:
        s = self.session
        s.write(p.continuation("idling"))
        self.parser.expect_idle_done(tag)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + IDLE_TIMEOUT_S
        while True:
            ev = self.parser.next_event()
            if isinstance(ev, IdleDone):
                return
            if isinstance(ev, ParseError):
                raise IMAPBad(ev.message)
            if ev is not NEED_DATA:
                raise Hangup("protocol error during idle")
            if self.parser.closed:
                raise Hangup(None)
            s.sync()
            wake = await self.wait_input(deadline - loop.time(), s.wait_change())
            if wake == Wake.TIMEOUT:
                raise Hangup("autologout: idle for too long")
            if wake == Wake.SHUTDOWN:
                raise Hangup(self._shutdown)
            if wake == Wake.EOF:
                raise Hangup(None)

    async def start_tls(self) -> None:
        """Upgrade to TLS (STARTTLS); the parser restarts, dropping anything pipelined."""
        store = self.services.certs[self.listening.name]
        self.flush()
        # RFC 9051 6.2.1: plaintext pipelined after STARTTLS must not be read as
        # commands, so the parser restarts here, before the handshake: from now on
        # only decrypted data arrives, and a TLS 1.3 client may send its first command
        # right behind the handshake, before start_tls() returns.
        self.parser = self._new_parser()
        self._unread = 0
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                self.transport,
                self.protocol,
                store.context,
                server_side=True,
                ssl_handshake_timeout=self.listening.tls_handshake_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            self.log.info("starttls handshake failed", extra={"err": str(e)})
            raise Hangup(None) from None
        if transport is None:
            raise Hangup(None)
        self.transport = transport
        self._paused = False
        self.session.tls = True
        self._tls_established()

    def _tls_established(self) -> None:
        sslobj = self.transport.get_extra_info("ssl_object")
        if isinstance(sslobj, ssl.SSLObject | ssl.SSLSocket):
            try:
                self.session.channel_binding = channel_binding_for(sslobj)
            except Exception:  # channel binding is optional; never fail the connection
                self.log.exception("channel binding failed")

    async def _starttls(self, cmd: StartTLS) -> None:
        s = self.session
        if s.tls:
            self._bad_reply(cmd.tag, "already using TLS")
            return
        if s.state != State.NOT_AUTHENTICATED:
            self._bad_reply(cmd.tag, "STARTTLS only before authentication")
            return
        if not s.tls_available:
            s.write(p.tagged(cmd.tag, p.Status.NO, "TLS not configured", p.CANNOT))
            return
        s.write(p.tagged(cmd.tag, p.Status.OK, "begin TLS now"))
        await self.start_tls()
