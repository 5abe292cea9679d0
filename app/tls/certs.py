"""Certificates from PEM files, selected by SNI, and self-signed certificates.

A :class:`CertStore` holds one ``ssl.SSLContext`` per certificate. The context that
listeners use has an SNI callback that switches the connection to the certificate
whose names match the requested host (exact name first, then a ``*.`` wildcard),
and keeps the first certificate for clients that send no SNI. ``reload()`` re-reads
the files (after renewal) without touching established connections.
"""

import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.tls.der import DERError, certificate_facts, pem_certificates

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


def server_context(min_version: str = "1.2") -> ssl.SSLContext:
    """A server-side context with modern settings and no certificate yet."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    return ctx


class CertStore:
    """Certificates for a set of (cert, key) files with SNI selection."""

    def __init__(self, pairs: Sequence[tuple[str, str]], *, min_version: str = "1.2") -> None:
        self.pairs = list(pairs)
        self.min_version = min_version
        self.infos: list[CertInfo] = []
        self._contexts: list[ssl.SSLContext] = []
        self._by_name: dict[str, ssl.SSLContext] = {}
        self.context = server_context(min_version)
        self.context.sni_callback = self._sni
        self.reload()

    def reload(self) -> None:
        """Read every file again; raises TLSError and keeps the old state on failure."""
        infos: list[CertInfo] = []
        contexts: list[ssl.SSLContext] = []
        by_name: dict[str, ssl.SSLContext] = {}
        for cert_path, key_path in self.pairs:
            ctx = server_context(self.min_version)
            try:
                ctx.load_cert_chain(cert_path, key_path)
                pem = Path(cert_path).read_bytes()
            except (OSError, ssl.SSLError) as e:
                raise TLSError(cert_path, f"cannot load certificate/key: {e}") from None
            try:
                facts = certificate_facts(pem_certificates(pem)[0])
            except (DERError, IndexError, ValueError) as e:
                raise TLSError(cert_path, f"cannot read certificate: {e}") from None
            info = CertInfo(cert_path, key_path, facts.names, facts.not_after)
            infos.append(info)
            contexts.append(ctx)
            for n in info.names:
                by_name.setdefault(n, ctx)
        self.infos, self._contexts, self._by_name = infos, contexts, by_name
        if contexts:
            self.context.load_cert_chain(self.pairs[0][0], self.pairs[0][1])
        log.info("certificates loaded", extra={"count": len(infos)})

    def context_for(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context of the certificate matching ``server_name``, or None."""
        if not server_name:
            return None
        name = server_name.lower().rstrip(".")
        ctx = self._by_name.get(name)
        if ctx is None and "." in name:
            ctx = self._by_name.get("*." + name.split(".", 1)[1])
        return ctx

    def _sni(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext
    ) -> int | None:
        ctx = self.context_for(server_name)
        if ctx is not None:
            sslobj.context = ctx
        return None

    @property
    def empty(self) -> bool:
        return not self.infos


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
