"""Certificates from PEM files, selected by SNI, and self-signed certificates.

A :class:`CertStore` holds one ``ssl.SSLContext`` per certificate. The context that
listeners use has an SNI callback that switches the connection to the certificate
whose names match the requested host (exact name first, then a ``*.`` wildcard),
and keeps the first certificate for clients that send no SNI. ``reload()`` re-reads
the files (after renewal) without touching established connections.

The files are read and checked when the store is made (a broken file stops the
server at start-up, with its path), but the contexts, and with them OpenSSL, are
built on the first TLS handshake (see :mod:`app.tls.lazyssl`): names and expiry come
from :mod:`app.tls.der`, which also checks that each key belongs to its certificate.
Keys it cannot check that way (an EC key file without its public key, Ed25519) are
loaded into contexts at once, as are all files on a reload once contexts exist.
"""

import contextlib
import datetime
import ipaddress
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.tls.der import DERError, certificate_facts, key_matches_certificate, pem_certificates

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)


class TLSError(Exception):
    """Certificate material that cannot be used; ``path`` names the file."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CertInfo:
    cert_path: str
    key_path: str
    names: tuple[str, ...]  # lower-case DNS names from the SAN (or CN when there is none)
    not_after: datetime.datetime


def server_context(min_version: str = "1.2") -> "ssl.SSLContext":
    """A server-side context with modern settings and no certificate yet."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    return ctx


@dataclass(frozen=True, slots=True)
class _Pair:
    info: CertInfo
    cert_pem: bytes  # as read: contexts built later use these, not the files then
    key_pem: bytes
    checked: bool  # the DER reader found the key to be the certificate's


@contextlib.contextmanager
def memory_files(blobs: Sequence[bytes]) -> Iterator[list[str]]:
    """Paths with these contents, for APIs that read files (``load_cert_chain``):
    memory files on Linux, a private temporary directory elsewhere; gone afterwards."""
    if hasattr(os, "memfd_create"):
        fds = [os.memfd_create(f"pem{i}") for i in range(len(blobs))]
        try:
            for fd, data in zip(fds, blobs, strict=True):
                os.write(fd, data)
            yield [f"/proc/self/fd/{fd}" for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pillarbox-pem-") as d:
        paths = [os.path.join(d, f"{i}.pem") for i in range(len(blobs))]
        for path, data in zip(paths, blobs, strict=True):
            with open(path, "wb") as f:
                f.write(data)
        yield paths


def _read_pair(cert_path: str, key_path: str) -> _Pair:
    """The files of one certificate, with the key checked where the DER reader can."""
    try:
        pem = Path(cert_path).read_bytes()
        key = Path(key_path).read_bytes()
    except OSError as e:
        raise TLSError(cert_path, f"cannot load certificate/key: {e}") from None
    try:
        der = pem_certificates(pem)[0]
        facts = certificate_facts(der)
    except (DERError, IndexError, ValueError) as e:
        raise TLSError(cert_path, f"cannot read certificate: {e}") from None
    try:
        matches = key_matches_certificate(key, der)
    except DERError as e:
        raise TLSError(key_path, f"cannot read private key: {e}") from None
    if matches is False:
        raise TLSError(key_path, "the private key does not belong to the certificate")
    info = CertInfo(cert_path, key_path, facts.names, facts.not_after)
    return _Pair(info, pem, key, matches is True)


class CertStore:
    """Certificates for a set of (cert, key) files with SNI selection."""

    def __init__(self, pairs: Sequence[tuple[str, str]], *, min_version: str = "1.2") -> None:
        self.pairs = list(pairs)
        self.min_version = min_version
        self.infos: list[CertInfo] = []
        self._pairs: list[_Pair] = []
        self._context: ssl.SSLContext | None = None
        self._by_name: dict[str, ssl.SSLContext] = {}
        self.reload()

    @property
    def context(self) -> "ssl.SSLContext":
        """The listeners' context (with the SNI callback), built on first use."""
        if self._context is None:
            self._build()
        assert self._context is not None
        return self._context

    @property
    def loaded(self) -> bool:
        """Whether the contexts exist (and OpenSSL has been loaded for them)."""
        return self._context is not None

    def on_demand(self) -> "OnDemandContext":
        """What to give ``loop.create_server(ssl=...)`` so that the context is built by
        the first connection's handshake instead of now."""
        return OnDemandContext(self)

    def reload(self) -> None:
        """Read every file again; raises TLSError and keeps the old state on failure."""
        pairs = [_read_pair(cert, key) for cert, key in self.pairs]
        if self._context is not None or not all(p.checked for p in pairs):
            self._build(pairs)
        self._pairs = pairs
        self.infos = [p.info for p in pairs]
        log.info("certificates loaded", extra={"count": len(pairs)})

    def _build(self, pairs: list[_Pair] | None = None) -> None:
        """Make the contexts from the files' contents as last read (loads OpenSSL);
        raises TLSError, changing nothing."""
        import ssl

        pairs = self._pairs if pairs is None else pairs
        contexts: list[ssl.SSLContext] = []
        for pair in pairs:
            ctx = server_context(self.min_version)
            with memory_files([pair.cert_pem, pair.key_pem]) as (cert_file, key_file):
                try:
                    ctx.load_cert_chain(cert_file, key_file)
                except (OSError, ssl.SSLError) as e:
                    raise TLSError(
                        pair.info.cert_path, f"cannot load certificate/key: {e}"
                    ) from None
            contexts.append(ctx)
        main = self._context or server_context(self.min_version)
        if pairs:
            with memory_files([pairs[0].cert_pem, pairs[0].key_pem]) as (cert_file, key_file):
                main.load_cert_chain(cert_file, key_file)  # loaded once already: no error
        main.sni_callback = self._sni
        by_name: dict[str, ssl.SSLContext] = {}
        for pair, ctx in zip(pairs, contexts, strict=True):
            for n in pair.info.names:
                by_name.setdefault(n, ctx)
        self._by_name, self._context = by_name, main

    def context_for(self, server_name: str | None) -> "ssl.SSLContext | None":
        """The context of the certificate matching ``server_name``, or None."""
        if not server_name:
            return None
        name = server_name.lower().rstrip(".")
        ctx = self._by_name.get(name)
        if ctx is None and "." in name:
            ctx = self._by_name.get("*." + name.split(".", 1)[1])
        return ctx

    def _sni(
        self,
        sslobj: "ssl.SSLObject | ssl.SSLSocket",
        server_name: str | None,
        _ctx: "ssl.SSLContext",
    ) -> int | None:
        ctx = self.context_for(server_name)
        if ctx is not None:
            sslobj.context = ctx
        return None

    @property
    def empty(self) -> bool:
        return not self.infos


class OnDemandContext:
    """Stands for a store's context in ``loop.create_server(ssl=...)``.

    asyncio's server side only calls ``wrap_bio`` on the context it is given, at each
    connection's handshake; this builds the real context then. Call :meth:`load`
    before asyncio wraps the first connection (the listener does, when it makes the
    connection's protocol), so that asyncio has the ``ssl`` module by then.
    """

    def __init__(self, store: CertStore) -> None:
        self._store = store

    def load(self) -> "ssl.SSLContext":
        return self._store.context

    def wrap_bio(self, *args: Any, **kwargs: Any) -> "ssl.SSLObject":
        return self._store.context.wrap_bio(*args, **kwargs)


def generate_self_signed(
    hostnames: Sequence[str], cert_path: Path, key_path: Path, *, days: int = 3650
) -> None:
    """Write a self-signed ECDSA P-256 certificate for ``hostnames`` (and loopback IPs)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    alt += [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
