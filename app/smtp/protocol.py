"""Sans-I/O SMTP server protocol core (h11 style).

The asyncio shell feeds received bytes with :meth:`ServerProtocol.receive_data`
(``b""`` at EOF), pulls events with :meth:`ServerProtocol.next_event` until it
returns :data:`NEED_DATA`, and answers each event that needs a reply with
:meth:`ServerProtocol.send`, which returns the bytes to write. Replies of several
pipelined commands can be written together once ``NEED_DATA`` comes back (RFC 2920).

Invariants:

* No I/O, no asyncio, nothing from store/config/serve/web.
* Any byte sequence from the client yields events; none raises. Misuse by the
  shell (a missing or extra reply) raises :class:`LocalProtocolError`.
* The state transitions live in :data:`SEQUENCE` (preconditions per command) and
  :meth:`ServerProtocol._after_reply` (effects of the reply); the reply code the
  shell sends decides the effect (2xx to MAIL starts a transaction, 2xx to RCPT
  accepts a recipient, 354 to DATA starts the data, 334 to AUTH continues the
  exchange, 220 to STARTTLS waits for :meth:`ServerProtocol.start_tls_done`).
* Input is bounded: command lines by ``Limits.max_line_length``, message content
  is streamed in chunks of ``Limits.data_chunk_size``, unprocessed input by
  ``Limits.max_pending_input``. The shell should stop reading from the socket
  while it is busy with an event (and while ``pending_input`` is large), so an
  honest pipelining client is slowed down rather than cut off.
"""

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.smtp import codes as c
from app.smtp import syntax
from app.smtp.codes import Reply
from app.smtp.datastream import BdatReader, DataReader
from app.smtp.events import (
    NEED_DATA,
    NO_REPLY,
    TERMINAL,
    Auth,
    AuthBadResponse,
    AuthCancelled,
    AuthResponse,
    BadCommand,
    Bdat,
    BdatEnd,
    ConnectionClosed,
    DataChunk,
    DataEnd,
    DataStart,
    Ehlo,
    Event,
    Expn,
    FirstCommandNotSMTP,
    Helo,
    Help,
    InputOverflow,
    LineTooLong,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Refused,
    Rset,
    Sentinel,
    StartTLS,
    TooManyBadCommands,
    Vrfy,
)
from app.smtp.syntax import CommandError, ParamContext

__all__ = ["NEED_DATA", "Limits", "LocalProtocolError", "ServerProtocol", "ehlo_reply"]


class LocalProtocolError(Exception):
    """The shell used the protocol object wrongly (our bug, never the client's)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Explicit limits of one SMTP session."""

    # RFC 5321 4.5.3.1.4: at least 512 octets including CRLF; extensions add to it
    # (RFC 1870 +26, RFC 6531 +10, RFC 4954 +500 for AUTH=).
    max_line_length: int = 2048
    # RFC 4954 4: an AUTH command or response line may be up to 12288 octets.
    max_auth_line_length: int = 12288 + 2
    max_recipients: int = 1000  # RFC 5321 4.5.3.1.8 (>= 100), announced by LIMITS
    max_message_size: int = 100 * 1024 * 1024
    # Bad commands answered normally; the next one ends the session with 421.
    max_bad_commands: int = 20
    # Received but not yet processed input; more means the client does not wait
    # for our replies (RFC 2920 3.1 requires it to, at DATA/BDAT/STARTTLS/AUTH).
    max_pending_input: int = 1024 * 1024
    data_chunk_size: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.max_line_length < 512:
            raise ValueError("max_line_length below RFC 5321's 512")
        if self.max_auth_line_length < self.max_line_length:
            raise ValueError("max_auth_line_length below max_line_length")
        if min(self.max_recipients, self.data_chunk_size, self.max_message_size) < 1:
            raise ValueError("limits must be positive")
        if self.max_pending_input < 2 * self.max_auth_line_length:
            raise ValueError("max_pending_input must hold at least two command lines")


class Mode(enum.Enum):
    COMMAND = "command"
    AUTH = "auth"  # SASL exchange in progress: lines are base64 responses
    DISCARD = "discard"  # skipping the rest of an over-long line
    DATA = "data"
    BDAT = "bdat"
    BDAT_SKIP = "bdat-skip"  # reading and dropping the chunk of a refused BDAT
    TLS_HANDSHAKE = "tls-handshake"  # 220 to STARTTLS sent, shell runs TLS
    CLOSED = "closed"


# --- replies the core chooses ---------------------------------------------------


def _r(code: int, secode: str, text: str) -> Reply:
    return Reply(code, secode, text)


_SEQ = c.SE_PROTO5_BAD_CMD_OR_SEQ_1
R_NO_HELLO = _r(c.C503_BAD_SEQUENCE, _SEQ, "no ehlo/helo yet")
# RFC 4954 6: 530 5.7.0 authentication required
R_AUTH_REQUIRED = _r(c.C530_SECURITY_REQUIRED, c.SE_POL7_OTHER_0, "authentication required")
R_HAVE_MAIL = _r(c.C503_BAD_SEQUENCE, _SEQ, "already have MAIL")  # RFC 5321 4.1.4
R_NO_MAIL = _r(c.C503_BAD_SEQUENCE, _SEQ, "missing MAIL FROM")
R_NO_RCPT = _r(c.C503_BAD_SEQUENCE, _SEQ, "missing RCPT TO")
# RFC 2920 3.1: all recipients refused, DATA gets 554 "no valid recipients".
R_NO_VALID_RCPT = _r(c.C554_TRANSACTION_FAILED, _SEQ, "no valid recipients")
R_DATA_AFTER_BDAT = _r(c.C503_BAD_SEQUENCE, _SEQ, "DATA not allowed after BDAT")  # RFC 3030 3
R_TLS_ACTIVE = _r(c.C503_BAD_SEQUENCE, _SEQ, "already speaking tls")  # RFC 3207 4.2
R_TLS_AFTER_AUTH = _r(c.C503_BAD_SEQUENCE, _SEQ, "cannot starttls after authentication")
R_NO_STARTTLS = _r(c.C502_NOT_IMPLEMENTED, _SEQ, "STARTTLS not available")
R_AUTH_NOT_SUBMISSION = _r(
    c.C503_BAD_SEQUENCE, _SEQ, "authentication only allowed on submission ports"
)
R_AUTHENTICATED = _r(c.C503_BAD_SEQUENCE, _SEQ, "already authenticated")  # RFC 4954 4
R_AUTH_IN_TRANSACTION = _r(
    c.C503_BAD_SEQUENCE, _SEQ, "authentication not allowed during mail transaction"
)
R_AUTH_NEEDS_TLS = _r(
    c.C538_ENCRYPTION_REQUIRED_FOR_AUTH,
    c.SE_POL7_ENCRYPTION_REQUIRED_FOR_AUTH_11,
    "authentication requires tls",
)
R_AUTH_ABORTED = _r(c.C501_PARAM_SYNTAX_ERROR, c.SE_PROTO5_OTHER_0, "authentication aborted")
R_AUTH_LINE_TOO_LONG = _r(  # RFC 4954 4: 500 5.5.6
    c.C500_SYNTAX_ERROR, c.SE_PROTO5_AUTH_EXCHANGE_TOO_LONG_6, "authentication line too long"
)
R_UNKNOWN = _r(c.C500_SYNTAX_ERROR, _SEQ, "unknown command")  # RFC 5321 4.2.4
R_NOT_SMTP = _r(c.C500_SYNTAX_ERROR, c.SE_PROTO5_SYNTAX_2, "please try again speaking smtp")
R_BAD_UTF8 = _r(c.C500_SYNTAX_ERROR, c.SE_PROTO5_SYNTAX_2, "invalid utf-8 in command")
R_TOO_MANY_BAD = _r(c.C421_SERVICE_UNAVAILABLE, c.SE_POL7_OTHER_0, "too many bad commands, closing")
R_OVERFLOW = _r(
    c.C421_SERVICE_UNAVAILABLE, c.SE_POL7_OTHER_0, "too much input without reading replies, closing"
)


def _too_long(limit: int) -> Reply:
    # RFC 5321 4.5.3.1.4 / 4.2.3: 500 line too long.
    return _r(c.C500_SYNTAX_ERROR, c.SE_PROTO5_SYNTAX_2, f"line too long, max is {limit} octets")


def _too_many_rcpts(n: int) -> Reply:
    # RFC 5321 4.5.3.1.10: 452 too many recipients; RFC 3463 3.6: X.5.3.
    return _r(c.C452_STORAGE_FULL, c.SE_PROTO5_TOO_MANY_RCPTS_3, f"max of {n} recipients reached")


def _mech_unsupported(mech: str) -> Reply:
    return _r(
        c.C504_PARAM_NOT_IMPLEMENTED, c.SE_PROTO5_BAD_PARAMS_4, f"mechanism {mech} not supported"
    )


# --- EHLO -----------------------------------------------------------------------


def ehlo_reply(
    hostname: str,
    *,
    max_size: int,
    tls_active: bool,
    auth_mechanisms: Sequence[str],
    requiretls: bool,
    starttls: bool = True,
    chunking: bool = True,
    smtputf8: bool = True,
    dsn: bool = False,
    limits_rcptmax: int = 1000,
) -> Reply:
    """The 250 reply to EHLO with our extensions (RFC 5321 4.1.1.1).

    ``auth_mechanisms`` empty means no AUTH line (pass the mechanisms only where
    AUTH is allowed: submission, and after TLS when that is required).
    """
    lines = [hostname, "PIPELINING", f"SIZE {max_size}"]  # RFC 2920 2, RFC 1870 3
    if starttls and not tls_active:
        lines.append("STARTTLS")  # RFC 3207 4.2: not after TLS is active
    if requiretls and tls_active:
        lines.append("REQUIRETLS")  # RFC 8689 4: only over TLS
    if auth_mechanisms:
        lines.append("AUTH " + " ".join(auth_mechanisms))  # RFC 4954 3
    lines += ["ENHANCEDSTATUSCODES", "8BITMIME"]  # RFC 2034, RFC 6152
    if chunking:
        lines.append("CHUNKING")  # RFC 3030 2
    if dsn:
        lines.append("DSN")  # RFC 3461 4
    lines.append(f"LIMITS RCPTMAX={limits_rcptmax}")  # RFC 9422 4
    if smtputf8:
        lines.append("SMTPUTF8")  # RFC 6531 3.1
    return Reply(c.C250_COMPLETED, "", "\n".join(lines))


# --- the sequence table ----------------------------------------------------------

# Preconditions per command, checked in order before the arguments are parsed.
# Each names a ServerProtocol._pre_* check returning the refusal or None.
SEQUENCE: dict[str, tuple[str, ...]] = {
    "helo": (),
    "ehlo": (),
    # RFC 3207 4. No EHLO needed first: some clients (gsasl) start TLS straight
    # away, and after TLS the client must EHLO again anyway.
    "starttls": ("starttls_available", "not_tls", "tls_before_auth"),
    # RFC 4954 4: not when authenticated, not during a transaction
    "auth": ("hello", "submission", "not_authenticated", "auth_outside_mail", "auth_tls"),
    "mail": ("hello", "authenticated", "no_mail"),  # RFC 5321 4.1.4, RFC 4954 6
    "rcpt": ("hello", "authenticated", "mail", "rcpt_room"),  # RFC 5321 4.1.1.3
    "data": ("hello", "authenticated", "mail", "not_bdat", "rcpt"),  # RFC 5321 4.1.1.4
    "bdat": ("hello", "authenticated", "mail", "rcpt"),  # RFC 3030 2
    "rset": (),
    "noop": (),
    "quit": (),
    "vrfy": (),  # RFC 5321 4.1.4: VRFY, EXPN, HELP, NOOP, RSET need no EHLO
    "expn": (),
    "help": (),
}

# (reply, counts as a bad command)
_Refusal = tuple[Reply, bool]


class ServerProtocol:
    """The server side of one SMTP connection; see the module documentation."""

    def __init__(
        self,
        limits: Limits,
        *,
        submission: bool,
        tls_active: bool,
        starttls: bool = True,
        auth_mechanisms: Sequence[str] = (),
        auth_requires_tls: bool = True,
        requiretls: bool = True,
        chunking: bool = True,
        smtputf8: bool = True,
        dsn: bool = False,
    ) -> None:
        self.limits = limits
        self.submission = submission
        self.tls_active = tls_active
        self.starttls = starttls
        self.auth_mechanisms = tuple(m.upper() for m in auth_mechanisms)
        self.auth_requires_tls = auth_requires_tls
        self.requiretls = requiretls
        self.chunking = chunking
        self.smtputf8 = smtputf8
        self.dsn = dsn

        self._buf = bytearray()
        self._eof = False
        self._overflow = False
        self._mode = Mode.COMMAND
        self._after_discard = Mode.COMMAND
        self._awaiting: Event | None = None
        self._resolved = False  # rcpt_*/auth_done already decided the awaited event
        self._started = False  # any input seen
        self._ncmds = 0  # known commands seen; 0 makes an unknown one "not SMTP"
        self._nbad = 0

        # Session state (reset by STARTTLS, RFC 3207 4.2).
        self.hello: str | None = None
        self.ehlo = False
        self.authenticated = False
        # Transaction state (reset by RSET, EHLO/HELO and the end of a message).
        self._mail = False
        self._rcpt_given = 0
        self._rcpt_ok = 0
        self._rcpt_unresolved = False
        self._bdat: BdatReader | None = None
        self._bdat_last = False
        self._data: DataReader | None = None
        self._skip = 0
        self._skip_event: Event | None = None

    # --- public API --------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """True between an accepted MAIL and the end of the message (or RSET)."""
        return self._mail

    @property
    def accepted_recipients(self) -> int:
        return self._rcpt_ok

    @property
    def pending_input(self) -> int:
        """Octets received and not yet processed."""
        return len(self._buf)

    @property
    def trailing_data(self) -> bytes:
        """Bytes received after STARTTLS (for the TLS layer); never commands."""
        return bytes(self._buf) if self._mode is Mode.TLS_HANDSHAKE else b""

    def greeting(self, hostname: str) -> bytes:
        """The 220 greeting (RFC 5321 4.3.1; no enhanced code, RFC 2034 3)."""
        return Reply(c.C220_SERVICE_READY, "", f"{hostname} ESMTP Pillarbox").encode()

    def ehlo_reply(self, hostname: str) -> Reply:
        """:func:`ehlo_reply` for this session's configuration and state."""
        auth_ok = self.submission and (self.tls_active or not self.auth_requires_tls)
        return ehlo_reply(
            hostname,
            max_size=self.limits.max_message_size,
            tls_active=self.tls_active,
            auth_mechanisms=self.auth_mechanisms if auth_ok and not self.authenticated else (),
            requiretls=self.requiretls,
            starttls=self.starttls,
            chunking=self.chunking,
            smtputf8=self.smtputf8,
            dsn=self.dsn,
            limits_rcptmax=self.limits.max_recipients,
        )

    def receive_data(self, data: bytes) -> None:
        """Add received bytes; ``b""`` means the client closed its side."""
        if self._mode is Mode.CLOSED:
            return
        if not data:
            self._eof = True
            return
        self._buf += data
        if len(self._buf) > self.limits.max_pending_input:
            self._overflow = True

    def next_event(self) -> Event | Sentinel:
        """The next event, or :data:`NEED_DATA` when more input is needed."""
        if self._awaiting is not None:
            raise LocalProtocolError(f"reply to {type(self._awaiting).__name__} not sent")
        if self._mode is Mode.CLOSED:
            return ConnectionClosed()
        if self._overflow:
            self._buf.clear()
            return self._emit(InputOverflow(R_OVERFLOW))
        ev = self._step()
        if ev is NEED_DATA and self._eof:
            self._mode = Mode.CLOSED
            self._buf.clear()
            return ConnectionClosed()
        return ev

    def send(self, reply: Reply) -> bytes:
        """Record the reply to the awaited event and return its bytes."""
        ev = self._awaiting
        if ev is None:
            raise LocalProtocolError("no command awaits a reply")
        self._awaiting = None
        self._after_reply(ev, reply)
        return reply.encode()

    def rcpt_accepted(self) -> None:
        """The shell accepted the pending recipient (``send`` infers it otherwise)."""
        self._resolve_rcpt(True)

    def rcpt_rejected(self) -> None:
        """The shell refused the pending recipient."""
        self._resolve_rcpt(False)

    def auth_done(self, success: bool) -> None:
        """End the AUTH exchange (``send`` infers it from 235/5xx otherwise)."""
        if not isinstance(self._awaiting, (Auth, AuthResponse)) and self._mode is not Mode.AUTH:
            raise LocalProtocolError("no authentication in progress")
        self.authenticated = success
        self._resolved = True
        if self._mode is Mode.AUTH:
            self._mode = Mode.COMMAND

    def start_tls_done(self) -> None:
        """TLS is up after STARTTLS: forget everything, the client must EHLO again
        (RFC 3207 4.2). Plaintext received after STARTTLS is dropped, never read as
        commands (CVE-2011-0411)."""
        if self._mode is not Mode.TLS_HANDSHAKE:
            raise LocalProtocolError("start_tls_done without an accepted STARTTLS")
        self._buf.clear()
        self._overflow = False
        self.tls_active = True
        self.hello = None
        self.ehlo = False
        self.authenticated = False
        self._reset_transaction()
        self._mode = Mode.COMMAND

    # --- event production ---------------------------------------------------------

    def _emit(self, ev: Event) -> Event:
        if not isinstance(ev, NO_REPLY):
            self._awaiting = ev
            self._resolved = False
        return ev

    def _step(self) -> Event | Sentinel:
        mode = self._mode
        if mode is Mode.DATA:
            return self._step_data()
        if mode is Mode.BDAT:
            return self._step_bdat()
        if mode is Mode.BDAT_SKIP:
            return self._step_skip()
        if mode is Mode.TLS_HANDSHAKE:
            return NEED_DATA
        if mode is Mode.DISCARD:
            nl = self._buf.find(b"\n")
            if nl < 0:
                self._buf.clear()
                return NEED_DATA
            del self._buf[: nl + 1]
            self._mode = self._after_discard
            if self._mode is Mode.AUTH:
                self._mode = Mode.COMMAND
                return self._emit(AuthBadResponse(R_AUTH_LINE_TOO_LONG))
            return self._bad(LineTooLong(_too_long(self.limits.max_line_length)))
        return self._step_line()

    def _step_line(self) -> Event | Sentinel:
        buf = self._buf
        if not buf:
            return NEED_DATA
        if not self._started:
            self._started = True
            first = buf[0]
            # An SMTP command starts with a letter; a TLS ClientHello (0x16), an
            # SSLv2 hello or binary junk never will: do not wait for a line end.
            if not (0x41 <= first <= 0x5A or 0x61 <= first <= 0x7A):
                return self._not_smtp()
        limit = self.limits.max_line_length
        if self._mode is Mode.AUTH or buf[:5].upper() == b"AUTH ":
            limit = self.limits.max_auth_line_length
        nl = buf.find(b"\n", 0, limit)
        if nl < 0:
            if len(buf) < limit:
                return NEED_DATA
            if self._ncmds == 0 and self._mode is Mode.COMMAND:
                return self._not_smtp()
            self._after_discard = self._mode
            self._mode = Mode.DISCARD
            return self._step()
        raw = bytes(buf[:nl])
        del buf[: nl + 1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            if self._mode is Mode.AUTH:
                self._mode = Mode.COMMAND
                return self._emit(AuthBadResponse(syntax.syntax_error("invalid base64").reply))
            if self._ncmds == 0:
                return self._not_smtp()
            return self._bad(BadCommand(R_BAD_UTF8))
        if self._mode is Mode.AUTH:
            return self._auth_line(line)
        return self._command(line)

    def _not_smtp(self) -> Event:
        self._buf.clear()
        return self._emit(FirstCommandNotSMTP(R_NOT_SMTP))

    def _bad(self, ev: BadCommand | LineTooLong) -> Event:
        self._nbad += 1
        if self._nbad > self.limits.max_bad_commands:
            self._buf.clear()
            return self._emit(TooManyBadCommands(R_TOO_MANY_BAD))
        return self._emit(ev)

    def _refuse(self, err: CommandError) -> Event:
        if err.bad:
            return self._bad(BadCommand(err.reply))
        return self._emit(Refused(err.reply))

    def _auth_line(self, line: str) -> Event:
        if line == "*":  # RFC 4954 4: the client cancels the exchange
            self._mode = Mode.COMMAND
            return self._emit(AuthCancelled(R_AUTH_ABORTED))
        try:
            data = syntax.decode_base64(line)
        except CommandError as e:
            self._mode = Mode.COMMAND
            return self._emit(AuthBadResponse(e.reply))
        return self._emit(AuthResponse(data))

    def _command(self, line: str) -> Event | Sentinel:
        verb, sp, rest = line.partition(" ")
        args = sp + rest
        name = verb.lower()
        handler = _HANDLERS.get(name)
        if handler is None or (name == "bdat" and not self.chunking):
            if self._ncmds == 0:
                # mox: the other side likely speaks something else; answer and close.
                return self._not_smtp()
            return self._bad(BadCommand(R_UNKNOWN))
        self._ncmds += 1
        try:
            for check in SEQUENCE[name]:
                refusal = _PRECONDITIONS[check](self)
                if refusal is not None:
                    if name == "bdat":
                        return self._skip_bdat(args, refusal)
                    return self._refuse(CommandError(refusal[0], bad=refusal[1]))
            return self._emit(handler(self, args))
        except CommandError as e:
            return self._refuse(e)

    # --- preconditions (named in SEQUENCE) ----------------------------------------

    def _pre_hello(self) -> _Refusal | None:
        return (R_NO_HELLO, True) if self.hello is None else None

    def _pre_authenticated(self) -> _Refusal | None:
        return (R_AUTH_REQUIRED, False) if self.submission and not self.authenticated else None

    def _pre_no_mail(self) -> _Refusal | None:
        return (R_HAVE_MAIL, True) if self._mail else None

    def _pre_auth_outside_mail(self) -> _Refusal | None:
        return (R_AUTH_IN_TRANSACTION, True) if self._mail else None

    def _pre_mail(self) -> _Refusal | None:
        return None if self._mail else (R_NO_MAIL, True)

    def _pre_rcpt(self) -> _Refusal | None:
        if self._rcpt_ok:
            return None
        if self._rcpt_given:
            return (R_NO_VALID_RCPT, False)  # RFC 2920 3.1
        return (R_NO_RCPT, True)

    def _pre_rcpt_room(self) -> _Refusal | None:
        n = self.limits.max_recipients
        return (_too_many_rcpts(n), False) if self._rcpt_ok >= n else None

    def _pre_not_bdat(self) -> _Refusal | None:
        return (R_DATA_AFTER_BDAT, True) if self._bdat is not None else None

    def _pre_starttls_available(self) -> _Refusal | None:
        return None if self.starttls else (R_NO_STARTTLS, False)

    def _pre_not_tls(self) -> _Refusal | None:
        return (R_TLS_ACTIVE, True) if self.tls_active else None

    def _pre_not_authenticated(self) -> _Refusal | None:
        return (R_AUTHENTICATED, True) if self.authenticated else None

    def _pre_tls_before_auth(self) -> _Refusal | None:
        return (R_TLS_AFTER_AUTH, True) if self.authenticated else None

    def _pre_submission(self) -> _Refusal | None:
        return None if self.submission else (R_AUTH_NOT_SUBMISSION, True)

    def _pre_auth_tls(self) -> _Refusal | None:
        return (R_AUTH_NEEDS_TLS, False) if self.auth_requires_tls and not self.tls_active else None

    # --- command handlers (argument syntax) ----------------------------------------

    def _cmd_hello(self, args: str, ehlo: bool) -> Event:
        domain = syntax.parse_hello(args, ehlo=ehlo, lenient=self.submission)
        return Ehlo(domain) if ehlo else Helo(domain)

    def _cmd_starttls(self, args: str) -> Event:
        syntax.expect_end(args)
        return StartTLS()

    def _cmd_auth(self, args: str) -> Event:
        mech, initial = syntax.parse_auth(args)
        if mech not in self.auth_mechanisms:
            raise CommandError(_mech_unsupported(mech), bad=False)  # RFC 4954 4
        return Auth(mech, initial)

    def _param_context(self) -> ParamContext:
        return ParamContext(
            max_size=self.limits.max_message_size,
            tls_active=self.tls_active,
            smtputf8=self.smtputf8,
            requiretls=self.requiretls,
            dsn=self.dsn,
        )

    def _cmd_mail(self, args: str) -> Event:
        path, words = syntax.parse_path_args(args, "FROM:")
        utf8 = self.smtputf8 and any(w.upper() == "SMTPUTF8" for w in words)
        params = syntax.split_params(words, utf8=utf8)
        syntax.check_mail_params(params, self._param_context())
        return Mail(path, params)

    def _cmd_rcpt(self, args: str) -> Event:
        path, words = syntax.parse_path_args(args, "TO:")
        params = syntax.split_params(words, utf8=self.smtputf8)
        syntax.check_rcpt_params(params, self._param_context())
        self._rcpt_given += 1
        self._rcpt_unresolved = True
        return Rcpt(path, params)

    def _cmd_data(self, args: str) -> Event:
        syntax.expect_end(args)
        return DataStart()

    def _cmd_bdat(self, args: str) -> Event:
        size, last = syntax.parse_bdat(args)
        if self._bdat is None:
            self._bdat = BdatReader(self.limits.data_chunk_size, self.limits.max_message_size)
        self._bdat.start_chunk(size)
        self._bdat_last = last
        self._mode = Mode.BDAT
        return Bdat(size, last)

    def _cmd_rset(self, args: str) -> Event:
        syntax.expect_end(args)  # RFC 5321 4.1.1.5
        self._reset_transaction()
        return Rset()

    def _cmd_noop(self, args: str) -> Event:
        return Noop()  # RFC 5321 4.1.1.9: any argument is ignored

    def _cmd_quit(self, args: str) -> Event:
        syntax.expect_end(args)
        return Quit()

    def _cmd_vrfy(self, args: str) -> Event:
        return Vrfy(syntax.parse_string_arg(args))

    def _cmd_expn(self, args: str) -> Event:
        return Expn(syntax.parse_string_arg(args))

    def _cmd_help(self, args: str) -> Event:
        return Help(args.strip(" \t") or None)

    # --- DATA and BDAT --------------------------------------------------------------

    def _step_data(self) -> Event | Sentinel:
        reader = self._data
        assert reader is not None
        while True:
            chunk = reader.take()
            if chunk is not None:
                return DataChunk(chunk)
            if reader.done:
                self._data = None
                self._mode = Mode.COMMAND
                self._reset_transaction()  # RFC 5321 4.1.1.4: the transaction is over
                return self._emit(DataEnd(reader.error))
            used = reader.feed(self._buf)
            del self._buf[:used]
            if used == 0:
                return NEED_DATA

    def _step_bdat(self) -> Event | Sentinel:
        reader = self._bdat
        assert reader is not None
        while True:
            chunk = reader.take(final=True)
            if chunk is not None:
                return DataChunk(chunk)
            if reader.remaining == 0:
                self._mode = Mode.COMMAND
                if self._bdat_last:
                    reader.finish()
                return self._emit(BdatEnd(self._bdat_last, reader.error))
            used = reader.feed(self._buf)
            del self._buf[:used]
            if used == 0:
                return NEED_DATA

    def _skip_bdat(self, args: str, refusal: _Refusal) -> Event | Sentinel:
        """RFC 3030 2: the chunk of a refused BDAT is still read, then dropped."""
        try:
            size, _ = syntax.parse_bdat(args)
        except CommandError as e:
            return self._refuse(e)
        self._skip = size
        self._skip_event = BadCommand(refusal[0]) if refusal[1] else Refused(refusal[0])
        self._mode = Mode.BDAT_SKIP
        return self._step_skip()

    def _step_skip(self) -> Event | Sentinel:
        n = min(self._skip, len(self._buf))
        del self._buf[:n]
        self._skip -= n
        if self._skip:
            return NEED_DATA
        self._mode = Mode.COMMAND
        ev, self._skip_event = self._skip_event, None
        if isinstance(ev, BadCommand):
            return self._bad(ev)
        assert ev is not None
        return self._emit(ev)

    # --- effects of replies ---------------------------------------------------------

    def _after_reply(self, ev: Event, reply: Reply) -> None:
        ok = 200 <= reply.code < 300
        if isinstance(ev, (Helo, Ehlo)):
            if ok:  # RFC 5321 4.1.4: EHLO/HELO also resets the transaction
                self.hello = ev.domain
                self.ehlo = isinstance(ev, Ehlo)
                self._reset_transaction()
        elif isinstance(ev, Mail):
            if ok:
                self._mail = True
        elif isinstance(ev, Rcpt):
            if self._rcpt_unresolved:
                self._resolve_rcpt(ok)
        elif isinstance(ev, DataStart):
            if reply.code == c.C354_START_DATA:
                self._data = DataReader(self.limits.data_chunk_size, self.limits.max_message_size)
                self._mode = Mode.DATA
        elif isinstance(ev, BdatEnd):
            # RFC 3030 2: a failed chunk fails the transaction; LAST ends it.
            if not ok or ev.error is not None or ev.last:
                self._reset_transaction()
        elif isinstance(ev, StartTLS):
            if reply.code == c.C220_SERVICE_READY:
                self._mode = Mode.TLS_HANDSHAKE
        elif isinstance(ev, (Auth, AuthResponse)):
            self._after_auth_reply(reply)
        elif isinstance(ev, TERMINAL):
            self._mode = Mode.CLOSED
            self._buf.clear()

    def _after_auth_reply(self, reply: Reply) -> None:
        if self._resolved:
            self._mode = Mode.COMMAND
            return
        if reply.code == c.C334_CONTINUE_AUTH:
            self._mode = Mode.AUTH
            return
        self._mode = Mode.COMMAND
        self.authenticated = 200 <= reply.code < 300

    def _resolve_rcpt(self, accepted: bool) -> None:
        if not self._rcpt_unresolved:
            raise LocalProtocolError("no recipient awaits a decision")
        self._rcpt_unresolved = False
        if accepted:
            self._rcpt_ok += 1

    def _reset_transaction(self) -> None:
        """RFC 5321 4.1.1.5: clear the reverse-path, recipients and message buffer."""
        self._mail = False
        self._rcpt_given = 0
        self._rcpt_ok = 0
        self._rcpt_unresolved = False
        self._bdat = None
        self._bdat_last = False


_HANDLERS: dict[str, Callable[[ServerProtocol, str], Event]] = {
    "helo": lambda p, a: p._cmd_hello(a, False),
    "ehlo": lambda p, a: p._cmd_hello(a, True),
    "starttls": ServerProtocol._cmd_starttls,
    "auth": ServerProtocol._cmd_auth,
    "mail": ServerProtocol._cmd_mail,
    "rcpt": ServerProtocol._cmd_rcpt,
    "data": ServerProtocol._cmd_data,
    "bdat": ServerProtocol._cmd_bdat,
    "rset": ServerProtocol._cmd_rset,
    "noop": ServerProtocol._cmd_noop,
    "quit": ServerProtocol._cmd_quit,
    "vrfy": ServerProtocol._cmd_vrfy,
    "expn": ServerProtocol._cmd_expn,
    "help": ServerProtocol._cmd_help,
}

_PRECONDITIONS: dict[str, Callable[[ServerProtocol], _Refusal | None]] = {
    name: getattr(ServerProtocol, f"_pre_{name}") for names in SEQUENCE.values() for name in names
}
