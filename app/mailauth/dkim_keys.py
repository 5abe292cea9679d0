"""DKIM keys: generation, loading, DNS key records (RFC 6376 3.6.1, RFC 8463).

Private keys are written as PKCS#8 PEM. Loading also accepts PKCS#1 ("RSA PRIVATE
KEY") PEM and an Ed25519 private key given as the base64 of its 32-octet seed, the
form RFC 8463 Appendix A uses.
"""

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from app.mailauth.dkim_sig import TagError, parse_tags, remove_fws

# cryptography is imported where a key is made or used, not here: a server that only
# starts up (or only receives unsigned mail) never maps the library.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    PublicKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
else:
    PrivateKey = PublicKey = object

# RFC 8301 3.2: verifiers MUST NOT consider signatures from RSA keys below 1024
# bits valid; signers MUST use at least 1024 and SHOULD use 2048.
MIN_RSA_BITS = 1024


class DKIMKeyError(ValueError):
    """A private key that cannot be loaded or used."""


def generate_rsa(bits: int = 2048) -> bytes:
    """A new RSA private key as PKCS#8 PEM."""
    if bits < MIN_RSA_BITS:
        raise DKIMKeyError(f"rsa keys must have at least {MIN_RSA_BITS} bits (RFC 8301 3.2)")
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _pem(key)


def generate_ed25519() -> bytes:
    """A new Ed25519 private key as PKCS#8 PEM (RFC 8463)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return _pem(ed25519.Ed25519PrivateKey.generate())


def _pem(key: PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(data: bytes) -> PrivateKey:
    """Load an RSA or Ed25519 private key from PEM (PKCS#8 or PKCS#1), DER, or the
    base64 of an Ed25519 seed; raises :class:`DKIMKeyError`."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    text = data.strip()
    key: object
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(text, password=None)
        else:
            raw = text if len(text) == 32 else _b64(text)
            if len(raw) == 32:
                key = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
            else:
                key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise DKIMKeyError(f"cannot load private key: {e}") from None
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise DKIMKeyError(f"unsupported private key type {type(key).__name__}")


def _b64(text: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not PEM, DER or base64") from None


def key_type(key: PrivateKey | PublicKey) -> str:
    """ "rsa" or "ed25519", the k= value."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return (
        "ed25519"
        if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
        else "rsa"
    )


def public_key_data(key: PrivateKey) -> bytes:
    """The p= octets: SubjectPublicKeyInfo DER for RSA (RFC 6376 3.6.1), the raw 32
    octets for Ed25519 (RFC 8463 4)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pub = key.public_key()
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def txt_record(private_key_pem: bytes | PrivateKey) -> str:
    """The DNS TXT value publishing the public half of a private key."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = (
        private_key_pem
        if isinstance(private_key_pem, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)
        else load_private_key(private_key_pem)
    )
    p = base64.b64encode(public_key_data(key)).decode()
    return f"v=DKIM1; k={key_type(key)}; p={p}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A parsed DKIM key record (RFC 6376 3.6.1). ``key`` is None when revoked."""

    key_type: str  # k=, lower case
    key: PublicKey | None
    hashes: tuple[str, ...]  # h=, empty means any
    services: tuple[str, ...]  # s=
    flags: tuple[str, ...]  # t=
    notes: str

    @property
    def bits(self) -> int:
        from cryptography.hazmat.primitives.asymmetric import rsa

        if isinstance(self.key, rsa.RSAPublicKey):
            return self.key.key_size
        return 256 if self.key is not None else 0

    @property
    def testing(self) -> bool:
        return "y" in self.flags

    @property
    def strict_identity(self) -> bool:
        return "s" in self.flags

    def allows_service(self, service: str) -> bool:
        return any(s in ("*", service) for s in self.services)


class NotADKIMRecord(ValueError):
    """A TXT record that is not a DKIM key record at all (another v= or no tags)."""


def parse_key_record(text: str) -> KeyRecord:
    """Parse a key record; raises :class:`NotADKIMRecord` for a record that does not
    claim to be DKIM, :class:`TagError` for a DKIM record that is invalid."""
    try:
        tags = parse_tags(text)
    except TagError as e:
        if text.lstrip().startswith("v=DKIM1"):
            raise
        raise NotADKIMRecord(str(e)) from None
    if "v" in tags:
        # RFC 6376 3.6.1 v=: if present it MUST be the first tag and be DKIM1;
        # records with another version are discarded.
        if tags["v"] != "DKIM1":
            raise NotADKIMRecord(f"version v={tags['v']!r}")
        if next(iter(tags)) != "v":
            raise TagError("v= is not the first tag")
    if "p" not in tags:
        raise TagError("missing required tag p=")  # RFC 6376 3.6.1
    ktype = tags.get("k", "rsa").lower()
    hashes = tuple(h.strip().lower() for h in tags["h"].split(":")) if "h" in tags else ()
    services = tuple(s.strip().lower() for s in tags.get("s", "*").split(":"))
    flags = tuple(f.strip().lower() for f in tags.get("t", "").split(":") if f.strip())
    p = remove_fws(tags["p"])
    key: PublicKey | None = None
    if p:  # RFC 6376 3.6.1 p=: an empty value means the key has been revoked.
        key = _public_key(ktype, p)
    return KeyRecord(ktype, key, hashes, services, flags, tags.get("n", ""))


def _public_key(ktype: str, p: str) -> PublicKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    try:
        data = base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        raise TagError("p= is not valid base64") from None
    if ktype == "ed25519":
        if len(data) != 32:
            raise TagError(f"ed25519 p= must be 32 octets, not {len(data)}")  # RFC 8463 4
        return ed25519.Ed25519PublicKey.from_public_bytes(data)
    if ktype != "rsa":
        raise TagError(f"unknown key type k={ktype!r}")
    try:
        pub = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        # Some publish a bare PKCS#1 RSAPublicKey instead of SubjectPublicKeyInfo;
        # dkimpy and OpenDKIM accept it, so do we.
        try:
            pub = serialization.load_der_public_key(_spki_from_pkcs1(data))
        except (ValueError, UnsupportedAlgorithm):
            raise TagError("p= is not an RSA public key") from None
    if not isinstance(pub, rsa.RSAPublicKey):
        raise TagError("p= is not an RSA public key")
    return pub


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _spki_from_pkcs1(pkcs1: bytes) -> bytes:
    """Wrap a DER RSAPublicKey in a SubjectPublicKeyInfo (RFC 3279 2.3.1)."""
    alg = bytes.fromhex("300d06092a864886f70d0101010500")  # rsaEncryption, NULL
    bitstring = b"\x03" + _der_len(len(pkcs1) + 1) + b"\x00" + pkcs1
    body = alg + bitstring
    return b"\x30" + _der_len(len(body)) + body
