"""The asyncio shell around :class:`app.smtp.client.ClientProtocol`.

:class:`SMTPConnection` connects (plain or immediate TLS), reads replies with a
timeout for each (RFC 5321 4.5.3.2, scaled by :class:`Timeouts`), says EHLO,
upgrades with STARTTLS, authenticates and runs mail transactions with pipelining
(RFC 2920) and CHUNKING (RFC 3030) when the server offers them. Message content
is streamed from bytes or a file, never read whole.

Failures raise :class:`SMTPClientError`, which says whether the failure is
permanent and whether it is a TLS failure (the caller may retry without TLS
under opportunistic TLS). The conversation is logged at debug level; AUTH data
is redacted and message content is never logged.
"""

import asyncio
import enum
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.auth.base import AuthError
from app.auth.channelbinding import channel_binding_for
from app.smtp import codes as c
from app.smtp.client import (
    NEED_DATA,
    ClientProtocol,
    DataEncoder,
    Extensions,
    RemoteProtocolError,
    ReplyEvent,
    SASLClient,
    choose_mechanism,
    decode_challenge,
)
from app.smtp.codes import Reply

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
_READ = 64 * 1024


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. Defaults are RFC 5321 4.5.3.2's; tests scale them down."""

    connect: float = 30.0
    greeting: float = 300.0  # 4.5.3.2.1 initial 220
    command: float = 300.0  # 4.5.3.2.2/3 MAIL, RCPT; also EHLO, STARTTLS, AUTH
    tls: float = 60.0  # TLS handshake
    data_init: float = 120.0  # 4.5.3.2.4 DATA
    data_block: float = 180.0  # 4.5.3.2.5 each write of message data
    data_end: float = 600.0  # 4.5.3.2.6 reply to the end of data


class ErrorKind(enum.StrEnum):
    REPLY = "reply"  # the server refused (code/secode/text are its reply)
    NETWORK = "network"
    TIMEOUT = "timeout"
    PROTOCOL = "protocol"  # malformed reply
    TLS = "tls"  # STARTTLS missing or failed, certificate not acceptable
    LOCAL = "local"  # our decision (SMTPUTF8 missing, too large, ...)


class SMTPClientError(Exception):
    """One failure of the conversation, with the reply to record for recipients."""

    def __init__(
        self,
        kind: ErrorKind,
        code: int,
        secode: str,
        text: str,
        *,
        permanent: bool = False,
        tls_result: str = "",
    ) -> None:
        super().__init__(f"{code} {secode} {text}")
        self.kind = kind
        self.code = code
        self.secode = secode
        self.text = text
        self.permanent = permanent
        self.tls_result = tls_result

    @classmethod
    def from_reply(cls, reply: Reply) -> "SMTPClientError":
        return cls(
            ErrorKind.REPLY, reply.code, reply.secode, reply.text, permanent=reply.code >= 500
        )


def _temp(kind: ErrorKind, text: str, secode: str = c.SE_NET4_OTHER_0) -> SMTPClientError:
    return SMTPClientError(kind, c.C451_LOCAL_ERROR, secode, text)


def tls_failure(text: str, result: str) -> SMTPClientError:
    """A TLS failure (temporary: the peer may fix it, or we retry without TLS)."""
    return SMTPClientError(
        ErrorKind.TLS, c.C451_LOCAL_ERROR, c.SE_POL7_CRYPTO_FAILURE_5, text, tls_result=result
    )


# RFC 8460 4.3.1 result types, as strings: this module does not depend on app.queue.
STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
CERTIFICATE_EXPIRED = "certificate-expired"
CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
VALIDATION_FAILURE = "validation-failure"


def classify_cert_error(e: ssl.SSLCertVerificationError) -> str:
    """RFC 8460 4.3.1 result type for a failed PKIX verification."""
    code = e.verify_code
    if code == 10:  # X509_V_ERR_CERT_HAS_EXPIRED
        return CERTIFICATE_EXPIRED
    if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        return CERTIFICATE_HOST_MISMATCH
    return CERTIFICATE_NOT_TRUSTED


@dataclass(frozen=True, slots=True)
class Delivery:
    """Outcome of one transaction: each recipient's RCPT reply, then the data
    reply (None when no recipient was accepted)."""

    rcpts: tuple[tuple[str, Reply], ...]
    data: Reply | None


async def _chunks(source: bytes | Path) -> AsyncIterator[bytes]:
    if isinstance(source, bytes):
        for i in range(0, len(source), CHUNK):
            yield source[i : i + CHUNK]
        return
    f = await asyncio.to_thread(source.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(f.read, CHUNK)
            if not chunk:
                return
            yield chunk
    finally:
        f.close()


class SMTPConnection:
    """One SMTP client connection. Use :meth:`open`, then the session methods."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeouts: Timeouts,
        peer: str,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.timeouts = timeouts
        self.peer = peer
        self.log = logger or log
        self.proto = ClientProtocol()
        self.tls = writer.get_extra_info("ssl_object") is not None

    @classmethod
    async def open(
        cls,
        ip: str,
        port: int,
        *,
        timeouts: Timeouts,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> "SMTPConnection":
        """Connect (and with ``tls``, handshake immediately, RFC 8314 3.3)."""
        try:
            async with asyncio.timeout(timeouts.connect + (timeouts.tls if tls else 0)):
                reader, writer = await asyncio.open_connection(
                    ip,
                    port,
                    ssl=tls,
                    server_hostname=(server_hostname or ip) if tls else None,
                    ssl_handshake_timeout=timeouts.tls if tls else None,
                    limit=_READ,
                )
        except TimeoutError:
            raise _temp(ErrorKind.TIMEOUT, f"connect to {ip} port {port}: timeout") from None
        except ssl.SSLCertVerificationError as e:
            raise tls_failure(f"tls: {e.verify_message}", classify_cert_error(e)) from None
        except ssl.SSLError as e:
            raise tls_failure(f"tls: {e.reason or e}", VALIDATION_FAILURE) from None
        except OSError as e:
            raise _temp(
                ErrorKind.NETWORK, f"connect to {ip} port {port}: {e.strerror or e}"
            ) from None
        return cls(reader, writer, timeouts=timeouts, peer=f"{ip}:{port}", logger=logger)

    # --- I/O ----------------------------------------------------------------------

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        obj = self.writer.get_extra_info("ssl_object")
        return obj if isinstance(obj, ssl.SSLObject) else None

    @property
    def extensions(self) -> Extensions:
        return self.proto.extensions

    async def _write(self, data: bytes, timeout: float, show: str | None = None) -> None:
        if show is not None:
            self.log.debug("smtp client send", extra={"line": show, "peer": self.peer})
        try:
            self.writer.write(data)
            async with asyncio.timeout(timeout):
                await self.writer.drain()
        except TimeoutError:
            raise _temp(ErrorKind.TIMEOUT, "timeout writing to server") from None
        except OSError as e:
            raise _temp(ErrorKind.NETWORK, f"writing to server: {e.strerror or e}") from None

    async def _send(self, data: bytes, *, redact: bool = False) -> None:
        show = data.decode("utf-8", "replace").rstrip("\r\n")
        if redact:
            show = show.split(" ")[0] + " " + show.split(" ")[1] if show.startswith("AUTH ") else ""
            show = (show + " <redacted>").strip()
        await self._write(data, self.timeouts.command, show)

    async def read(self, timeout: float) -> ReplyEvent:
        """The next reply; network trouble, timeouts and bad replies raise."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    ev = self.proto.next_event()
                    if ev is not NEED_DATA:
                        assert isinstance(ev, ReplyEvent)
                        self.log.debug(
                            "smtp client recv",
                            extra={
                                "cmd": str(ev.command),
                                "code": ev.reply.code,
                                "text": ev.reply.text[:300],
                                "peer": self.peer,
                            },
                        )
                        return ev
                    self.proto.receive_data(await self.reader.read(_READ))
        except TimeoutError:
            raise _temp(ErrorKind.TIMEOUT, "timeout waiting for reply") from None
        except RemoteProtocolError as e:
            raise _temp(ErrorKind.PROTOCOL, f"bad reply: {e}", c.SE_PROTO5_OTHER_0) from None
        except OSError as e:
            raise _temp(ErrorKind.NETWORK, f"reading from server: {e.strerror or e}") from None

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (TimeoutError, OSError, ssl.SSLError):
            pass

    # --- session ----------------------------------------------------------------------

    async def greeting(self) -> Reply:
        """Wait for the 220 greeting (RFC 5321 4.3.1); a refusal raises."""
        ev = await self.read(self.timeouts.greeting)
        if ev.reply.code != c.C220_SERVICE_READY:
            raise SMTPClientError.from_reply(ev.reply)
        return ev.reply

    async def hello(self, hostname: str) -> Extensions:
        """EHLO, falling back to HELO when EHLO is not understood (RFC 5321 3.2)."""
        await self._send(self.proto.ehlo(hostname))
        ev = await self.read(self.timeouts.command)
        if ev.reply.code == c.C250_COMPLETED:
            return self.proto.extensions
        if ev.reply.code not in (500, 501, 502, 504, 550):
            raise SMTPClientError.from_reply(ev.reply)
        await self._send(self.proto.helo(hostname))
        ev = await self.read(self.timeouts.command)
        if ev.reply.code != c.C250_COMPLETED:
            raise SMTPClientError.from_reply(ev.reply)
        return self.proto.extensions

    async def starttls(self, context: ssl.SSLContext, server_hostname: str) -> ssl.SSLObject:
        """STARTTLS and the handshake (RFC 3207). Raises a TLS SMTPClientError when
        the server refuses or the handshake fails; the connection is then unusable."""
        await self._send(self.proto.starttls())
        ev = await self.read(self.timeouts.command)
        if ev.reply.code != c.C220_SERVICE_READY:
            raise tls_failure(
                f"starttls refused: {ev.reply.code} {ev.reply.text[:100]}",
                STARTTLS_NOT_SUPPORTED,
            )
        try:
            async with asyncio.timeout(self.timeouts.tls):
                await self.writer.start_tls(context, server_hostname=server_hostname)
        except ssl.SSLCertVerificationError as e:
            raise tls_failure(f"tls: {e.verify_message}", classify_cert_error(e)) from None
        except (ssl.SSLError, OSError, TimeoutError) as e:
            text = "timeout" if isinstance(e, TimeoutError) else str(e) or type(e).__name__
            raise tls_failure(f"tls handshake: {text}", VALIDATION_FAILURE) from None
        self.proto.start_tls_done()
        self.tls = True
        obj = self.ssl_object
        assert obj is not None
        self.log.debug(
            "smtp client tls",
            extra={"version": obj.version(), "cipher": (obj.cipher() or ("",))[0]},
        )
        return obj

    async def authenticate(self, username: str, password: str, *, plain_allowed: bool) -> None:
        """AUTH with the best mechanism both support (RFC 4954)."""
        sslobj = self.ssl_object
        cb = channel_binding_for(sslobj) if sslobj is not None else None
        mech = choose_mechanism(
            self.extensions.auth, channel_binding=cb is not None, plain_allowed=plain_allowed
        )
        if mech is None:
            raise SMTPClientError(
                ErrorKind.LOCAL,
                c.C554_TRANSACTION_FAILED,
                c.SE_POL7_AUTH_WEAK_MECH_9,
                "no acceptable authentication mechanism offered by smarthost",
                permanent=True,
            )
        sasl = SASLClient(mech, username, password, channel_binding=cb)
        await self._send(self.proto.auth(mech, sasl.initial()), redact=True)
        try:
            while True:
                ev = await self.read(self.timeouts.command)
                if ev.reply.code == c.C334_CONTINUE_AUTH:
                    resp = sasl.step(decode_challenge(ev.reply))
                    await self._send(self.proto.auth_response(resp), redact=True)
                    continue
                if ev.reply.code == c.C235_AUTH_SUCCESS and sasl.verified:
                    return
                if ev.reply.code == c.C235_AUTH_SUCCESS:
                    raise AuthError("scram", "server did not prove knowledge of the password")
                raise SMTPClientError.from_reply(ev.reply)
        except (AuthError, RemoteProtocolError) as e:
            raise SMTPClientError(
                ErrorKind.PROTOCOL, c.C451_LOCAL_ERROR, c.SE_POL7_OTHER_0, f"authentication: {e}"
            ) from None

    async def quit(self) -> None:
        """QUIT, waiting briefly for the reply; errors are ignored."""
        try:
            await self._send(self.proto.quit())
            await self.read(min(self.timeouts.command, 5.0))
        except SMTPClientError:
            pass

    # --- mail transaction ------------------------------------------------------------

    def check(self, *, size: int, eight_bit: bool, smtputf8: bool, requiretls: bool) -> None:
        """Refuse what the server cannot take (permanent, our own reply)."""
        ext = self.extensions
        if smtputf8 and not ext.smtputf8:  # RFC 6531 3.4
            raise SMTPClientError(
                ErrorKind.LOCAL,
                c.C554_TRANSACTION_FAILED,
                c.SE_MSG6_NON_ASCII_ADDR_7,
                "remote server does not support SMTPUTF8, required for this message",
                permanent=True,
            )
        if eight_bit and not ext.eightbitmime:  # RFC 6152 3
            raise SMTPClientError(
                ErrorKind.LOCAL,
                c.C554_TRANSACTION_FAILED,
                c.SE_MSG6_CONVERSION_UNSUPPORTED_3,
                "remote server does not support 8BITMIME, required for this message",
                permanent=True,
            )
        if requiretls and not ext.requiretls:  # RFC 8689 4.2.1
            raise SMTPClientError(
                ErrorKind.LOCAL,
                c.C554_TRANSACTION_FAILED,
                c.SE_POL7_REQUIRETLS_30,
                "remote server does not support REQUIRETLS",
                permanent=True,
            )
        if ext.size and size > ext.size:  # RFC 1870 6
            raise SMTPClientError(
                ErrorKind.LOCAL,
                c.C552_STORAGE_EXCEEDED,
                c.SE_SYS3_MSG_TOO_LARGE_4,
                f"message of {size} octets larger than remote limit {ext.size}",
                permanent=True,
            )

    async def deliver(
        self,
        sender: str,
        recipients: Sequence[str],
        message: bytes | Path,
        *,
        size: int,
        eight_bit: bool,
        smtputf8: bool,
        requiretls: bool,
    ) -> Delivery:
        """One transaction. A refused MAIL or a failure before any per-recipient
        reply raises; otherwise the per-recipient and data replies are returned."""
        self.check(size=size, eight_bit=eight_bit, smtputf8=smtputf8, requiretls=requiretls)
        ext = self.extensions
        p = self.proto
        mail = p.mail(
            sender, size=size, eight_bit=eight_bit, smtputf8=smtputf8, requiretls=requiretls
        )
        if ext.pipelining:
            rcpts = [p.rcpt(r) for r in recipients]
            data_cmd = b"" if ext.chunking else p.data()
            self.log.debug(
                "smtp client send pipelined",
                extra={"line": mail.decode().rstrip(), "rcpts": len(rcpts), "peer": self.peer},
            )
            await self._write(mail + b"".join(rcpts) + data_cmd, self.timeouts.command, None)
            mail_ev = await self.read(self.timeouts.command)
            rcpt_evs = [await self.read(self.timeouts.command) for _ in rcpts]
        else:
            await self._write(mail, self.timeouts.command, mail.decode().rstrip())
            mail_ev = await self.read(self.timeouts.command)
            if mail_ev.reply.code != c.C250_COMPLETED:
                raise SMTPClientError.from_reply(mail_ev.reply)
            rcpt_evs = []
            for r in recipients:
                line = p.rcpt(r)
                await self._write(line, self.timeouts.command, line.decode().rstrip())
                rcpt_evs.append(await self.read(self.timeouts.command))
        results = tuple((ev.arg, ev.reply) for ev in rcpt_evs)
        accepted = any(200 <= r.code < 300 for _, r in results)
        if ext.chunking:
            if mail_ev.reply.code != c.C250_COMPLETED:
                raise SMTPClientError.from_reply(mail_ev.reply)
            if not accepted:
                return Delivery(results, None)
            return Delivery(results, await self._bdat(message))
        if not ext.pipelining:
            if not accepted:
                return Delivery(results, None)
            await self._write(p.data(), self.timeouts.command, "DATA")
        data_ev = await self.read(self.timeouts.data_init)
        if mail_ev.reply.code != c.C250_COMPLETED:
            if data_ev.reply.code == c.C354_START_DATA:
                await self._abort_data()
            raise SMTPClientError.from_reply(mail_ev.reply)
        if data_ev.reply.code != c.C354_START_DATA:
            if not accepted:
                return Delivery(results, None)
            return Delivery(results, data_ev.reply)
        if not accepted:
            # RFC 2920 3.1: the server should have refused DATA; send an empty
            # message so the session stays in sync, and deliver nothing.
            await self._abort_data()
            return Delivery(results, None)
        return Delivery(results, await self._data(message))

    async def _abort_data(self) -> None:
        self.proto.data_end()
        await self._write(b".\r\n", self.timeouts.data_block, ".")
        await self.read(self.timeouts.data_end)

    async def _data(self, message: bytes | Path) -> Reply:
        enc = DataEncoder(dot_stuff=True)
        async for chunk in _chunks(message):
            out = enc.encode(chunk)
            if out:
                await self._write(out, self.timeouts.data_block)
        self.proto.data_end()
        await self._write(enc.end(), self.timeouts.data_block, f"<{enc.octets} octets> .")
        return (await self.read(self.timeouts.data_end)).reply

    async def _bdat(self, message: bytes | Path) -> Reply:
        """BDAT chunks (RFC 3030 2); the last one is sent with LAST. With pipelining
        the replies are read at the end, else after each chunk."""
        enc = DataEncoder(dot_stuff=False)
        pipelining = self.extensions.pipelining
        held = b""
        sent = 0
        async for chunk in _chunks(message):
            out = enc.encode(chunk)
            if held:
                await self._write(
                    self.proto.bdat(len(held), False) + held, self.timeouts.data_block
                )
                sent += 1
                if not pipelining:
                    ev = await self.read(self.timeouts.data_block)
                    sent -= 1
                    if ev.reply.code != c.C250_COMPLETED:
                        return ev.reply
            held = out
        last = held + enc.end()
        await self._write(
            self.proto.bdat(len(last), True) + last,
            self.timeouts.data_block,
            f"BDAT {len(last)} LAST <{enc.octets} octets>",
        )
        failed: Reply | None = None
        for _ in range(sent):
            ev = await self.read(self.timeouts.data_block)
            if ev.reply.code != c.C250_COMPLETED and failed is None:
                failed = ev.reply
        final = (await self.read(self.timeouts.data_end)).reply
        return failed or final
