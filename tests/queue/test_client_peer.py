"""A scriptable SMTP peer for the client tests (asyncio, real sockets on loopback),
built on the server protocol core, plus certificate helpers; and tests of the
asyncio client shell (:mod:`app.smtp.dial`) against it."""

import asyncio
import datetime
import hashlib
import ipaddress
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.smtp.codes import Reply
from app.smtp.dial import ErrorKind, SMTPClientError, SMTPConnection, Timeouts
from app.smtp.events import (
    NEED_DATA,
    NO_REPLY,
    TERMINAL,
    Bdat,
    ConnectionClosed,
    DataChunk,
    DataEnd,
    Event,
    Mail,
    Rcpt,
    StartTLS,
)
from app.smtp.protocol import Limits, ServerProtocol
from tests.smtp.helpers import default_reply

FAST = Timeouts(connect=2, greeting=2, command=2, tls=2, data_init=2, data_block=2, data_end=2)

# --- certificates ----------------------------------------------------------------


@dataclass
class Cert:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def spki_sha256(self) -> bytes:
        spki = self.cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).digest()


def make_ca(name: str = "Test CA") -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Cert(cert, key)


def make_leaf(ca: Cert, names: Sequence[str], *, days: int = 30) -> Cert:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Cert(cert, key)


def write_pair(leaf: Cert, ca: Cert | None, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write the leaf (with the CA appended as chain) and its key."""
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}-key.pem"
    cert_path.write_bytes(leaf.pem + (ca.pem if ca else b""))
    key_path.write_bytes(leaf.key_pem)
    return cert_path, key_path


def server_context(leaf: Cert, ca: Cert | None, directory: Path) -> ssl.SSLContext:
    cert_path, key_path = write_pair(leaf, ca, directory, "srv" + leaf.cert.serial_number.__str__())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def trust(ca: Cert) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.pem.decode())


# --- the fake server ------------------------------------------------------------

Answer = Callable[[ServerProtocol, Event], Reply | None]


@dataclass
class Received:
    mail: Mail
    rcpts: list[str] = field(default_factory=list)
    data: bytes = b""
    tls: bool = False


class FakeServer:
    """An SMTP server on ``host`` (port 0 or given) driven by ServerProtocol.

    ``answer`` may return a Reply to override the default for an event.
    ``ehlo_drop`` removes EHLO keywords (e.g. "PIPELINING"). ``silent``: never
    greet. ``tls``: offer STARTTLS with this context.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        answer: Answer | None = None,
        tls: ssl.SSLContext | None = None,
        ehlo_drop: Sequence[str] = (),
        silent: bool = False,
        max_recipients: int = 1000,
        requiretls: bool = True,
        smtputf8: bool = True,
        chunking: bool = True,
        fail_handshake: bool = False,
    ) -> None:
        self.host = host
        self.want_port = port
        self.answer = answer
        self.tls = tls
        self.ehlo_drop = {k.upper() for k in ehlo_drop}
        self.silent = silent
        self.limits = Limits(max_recipients=max_recipients)
        self.requiretls = requiretls
        self.smtputf8 = smtputf8
        self.chunking = chunking
        self.fail_handshake = fail_handshake
        self.received: list[Received] = []
        self.commands: list[Event] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> "FakeServer":
        self.server = await asyncio.start_server(self._serve, self.host, self.want_port)
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self.writers):
            w.close()

    def _reply(self, p: ServerProtocol, ev: Event) -> Reply:
        if self.answer is not None:
            r = self.answer(p, ev)
            if r is not None:
                return r
        reply = default_reply(p, ev)
        if self.ehlo_drop and reply.code == 250 and "\n" in reply.text:
            lines = [ln for ln in reply.text.split("\n") if ln.split(" ")[0] not in self.ehlo_drop]
            reply = Reply(250, "", "\n".join(lines))
        return reply

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            if self.silent:
                await reader.read()  # until the client gives up
                return
            await self._session(reader, writer)
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        p = ServerProtocol(
            self.limits,
            submission=False,
            tls_active=False,
            starttls=self.tls is not None,
            requiretls=self.requiretls,
            smtputf8=self.smtputf8,
            chunking=self.chunking,
        )
        writer.write(p.greeting("fake.example"))
        cur: Received | None = None
        tls = False
        while True:
            ev = p.next_event()
            if ev is NEED_DATA:
                await writer.drain()
                p.receive_data(await reader.read(65536))
                continue
            assert isinstance(ev, Event)
            self.commands.append(ev)
            if isinstance(ev, ConnectionClosed):
                return
            if isinstance(ev, DataChunk):
                assert cur is not None
                cur.data += ev.data
                continue
            if isinstance(ev, Bdat):
                continue
            reply = self._reply(p, ev)
            if isinstance(ev, Mail) and reply.code == 250:
                cur = Received(ev, tls=tls)
            if isinstance(ev, Rcpt) and reply.code == 250 and cur is not None:
                cur.rcpts.append(ev.path)
            done = isinstance(ev, DataEnd) or (hasattr(ev, "last") and getattr(ev, "last", False))
            if done and reply.code == 250 and cur is not None:
                self.received.append(cur)
            writer.write(p.send(reply))
            if isinstance(ev, StartTLS) and reply.code == 220:
                await writer.drain()
                if self.fail_handshake:
                    writer.write(b"\x15\x03\x03\x00\x02\x02\x28")  # a TLS alert, then close
                    await writer.drain()
                    return
                assert self.tls is not None
                await writer.start_tls(self.tls)
                p.start_tls_done()
                tls = True
            if isinstance(ev, TERMINAL):
                await writer.drain()
                return
            if isinstance(ev, NO_REPLY):
                continue


# --- tests of the asyncio shell ----------------------------------------------------


async def test_connection_greeting_ehlo_and_transaction() -> None:
    srv = await FakeServer().start()
    conn = await SMTPConnection.open("127.0.0.1", srv.port, timeouts=FAST)
    await conn.greeting()
    ext = await conn.hello("client.example")
    assert ext.pipelining and ext.chunking and ext.rcptmax == 1000
    d = await conn.deliver(
        "a@x.example",
        ["b@y.example"],
        b"Subject: x\n\n.line\nbody",
        size=20,
        eight_bit=False,
        smtputf8=False,
        requiretls=False,
    )
    assert d.data is not None and d.data.code == 250
    await conn.quit()
    await conn.close()
    await srv.stop()
    assert srv.received[0].data == b"Subject: x\r\n\r\n.line\r\nbody"


async def test_silent_server_times_out() -> None:
    srv = await FakeServer(silent=True).start()
    conn = await SMTPConnection.open(
        "127.0.0.1", srv.port, timeouts=Timeouts(connect=1, greeting=0.2)
    )
    with pytest.raises(SMTPClientError) as ei:
        await conn.greeting()
    assert ei.value.kind is ErrorKind.TIMEOUT and not ei.value.permanent
    await conn.close()
    await srv.stop()


async def test_connection_refused_is_temporary_network_error() -> None:
    srv = await FakeServer().start()
    port = srv.port
    await srv.stop()
    assert srv.server is not None
    await srv.server.wait_closed()
    with pytest.raises(SMTPClientError) as ei:
        await SMTPConnection.open("127.0.0.1", port, timeouts=FAST)
    assert ei.value.kind is ErrorKind.NETWORK and not ei.value.permanent


async def test_starttls_then_ehlo_again(tmp_path: Path) -> None:
    ca = make_ca()
    leaf = make_leaf(ca, ["mx.example"])
    srv = await FakeServer(tls=server_context(leaf, ca, tmp_path)).start()
    conn = await SMTPConnection.open("127.0.0.1", srv.port, timeouts=FAST)
    await conn.greeting()
    assert (await conn.hello("c.example")).starttls
    obj = await conn.starttls(trust(ca), "mx.example")
    assert obj.version() is not None
    ext = await conn.hello("c.example")
    assert not ext.starttls and ext.requiretls  # REQUIRETLS only announced over TLS
    await conn.quit()
    await conn.close()
    await srv.stop()
