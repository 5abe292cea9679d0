"""Sans-I/O SMTP client protocol core (the sending side of RFC 5321).

The asyncio shell (:mod:`app.smtp.dial`) writes the bytes the command methods of
:class:`ClientProtocol` return, feeds what it reads with
:meth:`ClientProtocol.receive_data` and pulls :class:`ReplyEvent` values with
:meth:`ClientProtocol.next_event` until :data:`NEED_DATA`. Each command registers
the reply it expects, so pipelined commands (RFC 2920) are matched with their
replies in order.

Also here, all free of I/O:

* :func:`parse_ehlo`: the extensions of an EHLO reply (SIZE, PIPELINING, STARTTLS,
  8BITMIME, SMTPUTF8, REQUIRETLS, CHUNKING, AUTH, LIMITS RCPTMAX, ...).
* :class:`DataEncoder`: message octets to the wire, bare CR and bare LF turned
  into CRLF, dot-stuffed for DATA (RFC 5321 4.5.2) or not for BDAT (RFC 3030),
  streaming (chunk boundaries anywhere).
* :class:`SASLClient`: the client side of AUTH with SCRAM-SHA-256/1(-PLUS),
  CRAM-MD5 and (only when allowed) PLAIN.

Invariants: no I/O, nothing from store/config/serve/web. A malformed or over-long
reply raises :class:`RemoteProtocolError` (the server's fault); calling methods in
a wrong order raises :class:`LocalProtocolError` (our bug).
"""

import base64
import binascii
import collections
import enum
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.auth.base import AuthError, ChannelBinding
from app.auth.scram import SHA1, SHA256, ScramClient
from app.smtp.codes import Reply
from app.smtp.events import NEED_DATA, Sentinel

__all__ = [
    "NEED_DATA",
    "ClientError",
    "ClientProtocol",
    "Cmd",
    "DataEncoder",
    "Extensions",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ReplyEvent",
    "SASLClient",
    "choose_mechanism",
    "parse_ehlo",
    "parse_reply_lines",
]

# RFC 5321 4.5.3.1.5 says 512 octets per reply line; real servers send longer ones.
MAX_REPLY_LINE = 4096
MAX_REPLY_LINES = 256


class ClientError(Exception):
    """Base of the errors of this module."""


class RemoteProtocolError(ClientError):
    """The server sent something that is not a valid SMTP reply."""


class LocalProtocolError(ClientError):
    """The shell used the protocol object wrongly."""


class Cmd(enum.StrEnum):
    """What a reply answers."""

    GREETING = "greeting"
    EHLO = "ehlo"
    HELO = "helo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the 354 (or refusal) to DATA
    DATA_END = "data-end"  # the reply to the final "."
    BDAT = "bdat"
    RSET = "rset"
    NOOP = "noop"
    QUIT = "quit"


@dataclass(frozen=True, slots=True)
class ReplyEvent:
    """A complete reply to ``command``; ``arg`` is the recipient for RCPT."""

    command: Cmd
    reply: Reply
    arg: str = ""


_ENHANCED = re.compile(r"([245])\.([0-9]{1,3}\.[0-9]{1,3})(?: |$)")


def parse_reply_lines(lines: Sequence[bytes]) -> Reply:
    """Turn the lines of one reply (without CRLF) into a :class:`Reply`.

    The enhanced status code (RFC 2034 4, RFC 3463) is recognised when its class
    equals the reply's and is removed from every line that carries it.
    """
    if not lines:
        raise RemoteProtocolError("empty reply")
    code = -1
    texts: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace")
        if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
            raise RemoteProtocolError(f"malformed reply line {line[:60]!r}")
        c = int(line[:3])
        if code == -1:
            code = c
        elif c != code:
            raise RemoteProtocolError("reply lines with different codes")
        texts.append(line[4:])
    if not 200 <= code <= 599:
        raise RemoteProtocolError(f"reply code {code} out of range")
    secode = ""
    m = _ENHANCED.match(texts[0])
    if m and int(m.group(1)) == code // 100:
        secode = m.group(2)
        prefix = f"{m.group(1)}.{secode}"
        texts = [t[len(prefix) :].lstrip(" ") if t.startswith(prefix) else t for t in texts]
    return Reply(code, secode, "\n".join(texts))


# --- EHLO extensions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Extensions:
    """What the server announced in its EHLO reply (RFC 5321 4.1.1.1)."""

    hostname: str = ""
    pipelining: bool = False  # RFC 2920
    size_param: bool = False  # RFC 1870: SIZE announced, the MAIL parameter may be sent
    size: int = 0  # RFC 1870 limit; 0: none announced or no fixed limit
    starttls: bool = False  # RFC 3207
    eightbitmime: bool = False  # RFC 6152
    smtputf8: bool = False  # RFC 6531
    requiretls: bool = False  # RFC 8689
    chunking: bool = False  # RFC 3030
    enhanced: bool = False  # RFC 2034
    dsn: bool = False  # RFC 3461
    auth: tuple[str, ...] = ()  # RFC 4954, upper case
    rcptmax: int = 0  # RFC 9422 LIMITS RCPTMAX; 0: no limit announced
    mailmax: int = 0  # RFC 9422 LIMITS MAILMAX


def _limits(words: Sequence[str]) -> tuple[int, int]:
    """RFC 9422 4: ``LIMITS name=value ...``; unknown or bad values are ignored."""
    rcptmax = mailmax = 0
    for w in words:
        name, _, value = w.partition("=")
        if not value.isdigit() or len(value) > 9:
            continue
        if name.upper() == "RCPTMAX":
            rcptmax = int(value)
        elif name.upper() == "MAILMAX":
            mailmax = int(value)
    return rcptmax, mailmax


def parse_ehlo(reply: Reply) -> Extensions:
    """Extensions from a 250 reply to EHLO; unknown keywords are ignored."""
    lines = reply.text.split("\n")
    ext: dict[str, object] = {"hostname": lines[0].split(" ", 1)[0]}
    auth: list[str] = []
    for line in lines[1:]:
        words = line.split()
        if not words:
            continue
        kw = words[0].upper()
        args = words[1:]
        if kw == "PIPELINING":
            ext["pipelining"] = True
        elif kw == "SIZE":
            ext["size_param"] = True
            if args and args[0].isdigit() and len(args[0]) < 19:
                ext["size"] = int(args[0])
        elif kw == "STARTTLS":
            ext["starttls"] = True
        elif kw == "8BITMIME":
            ext["eightbitmime"] = True
        elif kw == "SMTPUTF8":
            ext["smtputf8"] = True
        elif kw == "REQUIRETLS":
            ext["requiretls"] = True
        elif kw == "CHUNKING":
            ext["chunking"] = True
        elif kw == "ENHANCEDSTATUSCODES":
            ext["enhanced"] = True
        elif kw == "DSN":
            ext["dsn"] = True
        elif kw == "AUTH" or kw.startswith("AUTH="):  # "AUTH=" is the pre-RFC form
            auth += [a.upper() for a in ([kw[5:]] if kw.startswith("AUTH=") else []) + args]
        elif kw == "LIMITS":
            ext["rcptmax"], ext["mailmax"] = _limits(args)
    ext["auth"] = tuple(dict.fromkeys(a for a in auth if a))
    return Extensions(**ext)  # type: ignore[arg-type]


# --- the protocol object -----------------------------------------------------------


class ClientProtocol:
    """Client side of one SMTP connection: command bytes out, replies in.

    The greeting is expected first. ``max_line`` bounds each reply line and
    ``max_lines`` the lines of one reply; more is a :class:`RemoteProtocolError`.
    """

    def __init__(self, *, max_line: int = MAX_REPLY_LINE, max_lines: int = MAX_REPLY_LINES) -> None:
        self.max_line = max_line
        self.max_lines = max_lines
        self._buf = bytearray()
        self._lines: list[bytes] = []
        self._expect: collections.deque[tuple[Cmd, str]] = collections.deque()
        self._expect.append((Cmd.GREETING, ""))
        self._eof = False
        self._tls_wait = False
        self.extensions = Extensions()

    @property
    def awaiting(self) -> int:
        """Replies still expected."""
        return len(self._expect)

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the server; ``b""`` means it closed the connection."""
        if not data:
            self._eof = True
            return
        self._buf += data

    def next_event(self) -> ReplyEvent | Sentinel:
        """The next complete reply, or :data:`NEED_DATA`.

        Raises :class:`RemoteProtocolError` for a malformed reply, a reply nobody
        asked for, or a connection closed while replies are outstanding.
        """
        while True:
            nl = self._buf.find(b"\n", 0, self.max_line + 2)
            if nl < 0:
                if len(self._buf) > self.max_line:
                    raise RemoteProtocolError("reply line too long")
                if self._eof and (self._expect or self._buf):
                    raise RemoteProtocolError("connection closed by server")
                return NEED_DATA
            line = bytes(self._buf[:nl]).rstrip(b"\r")
            del self._buf[: nl + 1]
            self._lines.append(line)
            if len(self._lines) > self.max_lines:
                raise RemoteProtocolError("reply with too many lines")
            if len(line) > 3 and line[3:4] == b"-":
                continue
            lines, self._lines = self._lines, []
            reply = parse_reply_lines(lines)
            if not self._expect:
                raise RemoteProtocolError("unexpected reply")
            cmd, arg = self._expect.popleft()
            if cmd is Cmd.EHLO and reply.code == 250:
                self.extensions = parse_ehlo(reply)
            if cmd is Cmd.STARTTLS and reply.code == 220:
                self._tls_wait = True
                # RFC 3207 4.2 / CVE-2011-0411: nothing received before the handshake
                # may be taken as a reply afterwards.
                self._buf.clear()
            return ReplyEvent(cmd, reply, arg)

    def _send(self, cmd: Cmd, line: str, arg: str = "") -> bytes:
        if self._tls_wait:
            raise LocalProtocolError("tls handshake pending after STARTTLS")
        if "\r" in line or "\n" in line:
            raise LocalProtocolError("line break in command")
        self._expect.append((cmd, arg))
        return line.encode("utf-8") + b"\r\n"

    def start_tls_done(self) -> None:
        """TLS is up after a 220 to STARTTLS: forget the extensions (RFC 3207 4.2)."""
        if not self._tls_wait:
            raise LocalProtocolError("start_tls_done without an accepted STARTTLS")
        self._tls_wait = False
        self._buf.clear()
        self.extensions = Extensions()

    # Commands. Each returns the bytes to write and registers the expected reply.

    def ehlo(self, hostname: str) -> bytes:
        return self._send(Cmd.EHLO, f"EHLO {hostname}")

    def helo(self, hostname: str) -> bytes:
        return self._send(Cmd.HELO, f"HELO {hostname}")

    def starttls(self) -> bytes:
        return self._send(Cmd.STARTTLS, "STARTTLS")

    def auth(self, mechanism: str, initial: bytes | None) -> bytes:
        """``AUTH mech [initial]``; an empty initial response is ``=`` (RFC 4954 4)."""
        line = f"AUTH {mechanism}"
        if initial is not None:
            line += " " + (base64.b64encode(initial).decode() if initial else "=")
        return self._send(Cmd.AUTH, line)

    def auth_response(self, data: bytes) -> bytes:
        """A response to a 334 challenge."""
        return self._send(Cmd.AUTH, base64.b64encode(data).decode())

    def auth_cancel(self) -> bytes:
        return self._send(Cmd.AUTH, "*")

    def mail(
        self,
        reverse_path: str,
        *,
        size: int = 0,
        eight_bit: bool = False,
        smtputf8: bool = False,
        requiretls: bool = False,
    ) -> bytes:
        """``MAIL FROM:<path>`` with the parameters the server announced.

        SIZE (RFC 1870 3), BODY=8BITMIME (RFC 6152 2), SMTPUTF8 (RFC 6531 3.4),
        REQUIRETLS (RFC 8689 4.1) are sent only when announced.
        """
        ext = self.extensions
        line = f"MAIL FROM:<{reverse_path}>"
        if size > 0 and ext.size_param:
            line += f" SIZE={size}"
        if eight_bit and ext.eightbitmime:
            line += " BODY=8BITMIME"
        if smtputf8 and ext.smtputf8:
            line += " SMTPUTF8"
        if requiretls and ext.requiretls:
            line += " REQUIRETLS"
        return self._send(Cmd.MAIL, line)

    def rcpt(self, forward_path: str) -> bytes:
        return self._send(Cmd.RCPT, f"RCPT TO:<{forward_path}>", forward_path)

    def data(self) -> bytes:
        return self._send(Cmd.DATA, "DATA")

    def data_end(self) -> None:
        """Register the reply to the end of the message; write ``DataEncoder.end()``."""
        self._expect.append((Cmd.DATA_END, ""))

    def bdat(self, size: int, last: bool) -> bytes:
        """``BDAT size [LAST]``; the chunk's octets follow it on the wire."""
        return self._send(Cmd.BDAT, f"BDAT {size}" + (" LAST" if last else ""))

    def rset(self) -> bytes:
        return self._send(Cmd.RSET, "RSET")

    def noop(self) -> bytes:
        return self._send(Cmd.NOOP, "NOOP")

    def quit(self) -> bytes:
        return self._send(Cmd.QUIT, "QUIT")


# --- message data -------------------------------------------------------------------

_LINE_END = re.compile(rb"\r\n|\r|\n")


class DataEncoder:
    """Message octets to their wire form, streaming.

    Every line ending (CRLF, bare CR, bare LF) becomes CRLF, so the output never
    holds a bare CR or LF (RFC 5321 2.3.8, 4.1.1.4). With ``dot_stuff`` (DATA) a
    line starting with ``.`` gets another one (RFC 5321 4.5.2) and :meth:`end`
    returns the terminating ``CRLF.CRLF`` (adding the CRLF the message lacks).
    Without it (BDAT) :meth:`end` returns what was held back.
    """

    def __init__(self, *, dot_stuff: bool) -> None:
        self.dot_stuff = dot_stuff
        self._held_cr = False
        self._line_start = True
        self.octets = 0  # octets of message content returned so far

    def encode(self, chunk: bytes) -> bytes:
        """The wire form of ``chunk``; a trailing CR is held until the next call."""
        if self._held_cr:
            chunk = b"\r" + chunk
            self._held_cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            self._held_cr = True
        if not chunk:
            return b""
        out = _LINE_END.sub(b"\r\n", chunk)
        if self.dot_stuff:
            out = out.replace(b"\r\n.", b"\r\n..")
            if self._line_start and out.startswith(b"."):
                out = b"." + out
        self._line_start = out.endswith(b"\r\n")
        self.octets += len(out)
        return out

    def end(self) -> bytes:
        """Flush the held CR; for DATA also the end-of-data indication."""
        out = b""
        if self._held_cr:
            self._held_cr = False
            out = b"\r\n"
            self._line_start = True
        self.octets += len(out)
        if not self.dot_stuff:
            return out
        if not self._line_start:
            out += b"\r\n"  # RFC 5321 4.1.1.4: the message must end with CRLF
        return out + b".\r\n"


# --- AUTH ---------------------------------------------------------------------------

# Preference order, strongest first. PLAIN only when explicitly allowed.
MECHANISMS = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "CRAM-MD5",
    "PLAIN",
)


def choose_mechanism(
    offered: Sequence[str], *, channel_binding: bool, plain_allowed: bool
) -> str | None:
    """The best mechanism both sides support, or None."""
    have = {m.upper() for m in offered}
    for m in MECHANISMS:
        if m not in have:
            continue
        if m.endswith("-PLUS") and not channel_binding:
            continue
        if m == "PLAIN" and not plain_allowed:
            continue
        return m
    return None


class SASLClient:
    """Client side of one AUTH exchange (RFC 4954), free of I/O.

    :meth:`initial` gives the initial response (None: none is sent), :meth:`step`
    answers each 334 challenge (already base64-decoded). After 235,
    :attr:`verified` tells whether the server proved it knows the password
    (SCRAM); a SCRAM server that skipped that proof is treated as failed.
    Raises :class:`~app.auth.base.AuthError` on a bad challenge.
    """

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: str,
        *,
        channel_binding: ChannelBinding | None = None,
    ) -> None:
        self.mechanism = mechanism.upper()
        self._username = username
        self._password = password
        self._scram: ScramClient | None = None
        self._step = 0
        if self.mechanism.startswith("SCRAM-"):
            plus = self.mechanism.endswith("-PLUS")
            h = SHA256 if self.mechanism.startswith("SCRAM-SHA-256") else SHA1
            self._scram = ScramClient(
                h, username, password, channel_binding=channel_binding, plus=plus
            )
        elif self.mechanism not in ("CRAM-MD5", "PLAIN"):
            raise ValueError(f"unsupported mechanism {mechanism!r}")

    @property
    def verified(self) -> bool:
        """True when the exchange may be trusted after a 235."""
        return self._scram.done if self._scram is not None else True

    def initial(self) -> bytes | None:
        if self.mechanism == "PLAIN":
            return b"\0" + self._username.encode() + b"\0" + self._password.encode()
        if self._scram is not None:
            return self._scram.client_first()
        return None  # CRAM-MD5: the server speaks first

    def step(self, challenge: bytes) -> bytes:
        """The response to a 334 challenge."""
        self._step += 1
        if self.mechanism == "CRAM-MD5" and self._step == 1:
            digest = hmac.new(self._password.encode(), challenge, hashlib.md5).hexdigest()
            return f"{self._username} {digest}".encode()
        if self._scram is not None and self._step == 1:
            return self._scram.server_first(challenge)
        if self._scram is not None and self._step == 2:
            self._scram.server_final(challenge)  # RFC 4954 4: then an empty response
            return b""
        raise AuthError("sasl", "unexpected challenge from server")


def decode_challenge(reply: Reply) -> bytes:
    """The decoded base64 of a 334 reply; RemoteProtocolError when it is not base64."""
    text = reply.text.strip()
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RemoteProtocolError("334 challenge is not base64") from None
