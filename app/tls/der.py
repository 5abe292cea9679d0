"""What a server needs from its own X.509 certificates: host names, expiry, and its key.

A small DER reader (ITU-T X.690) for the fields of RFC 5280 4.1 that certificate
selection uses, so that loading certificates at start-up does not map the whole
``cryptography`` library into a long-running process. Anything not understood raises
:class:`DERError`. For :func:`certificate_facts` the certificate has already been
accepted by OpenSSL (``load_cert_chain``) when this runs, so that means a bug, not bad
input; :func:`key_matches_certificate` runs before OpenSSL is loaded, so it is written
to meet arbitrary bytes and reports them as :class:`DERError` too.
"""

import base64
import binascii
import datetime
import re
from dataclasses import dataclass

_SEQUENCE = 0x30
_SET = 0x31
_OID = 0x06
_OCTET_STRING = 0x04
_BOOLEAN = 0x01
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_EXPLICIT_0 = 0xA0  # [0] version
_EXPLICIT_3 = 0xA3  # [3] extensions
_DNS_NAME = 0x82  # GeneralName [2] IMPLICIT IA5String
_OID_COMMON_NAME = bytes([0x55, 0x04, 0x03])  # 2.5.4.3
_OID_SUBJECT_ALT_NAME = bytes([0x55, 0x1D, 0x11])  # 2.5.29.17


class DERError(ValueError):
    """A certificate this reader cannot follow."""


@dataclass(frozen=True, slots=True)
class CertFacts:
    names: tuple[str, ...]  # lower-case DNS names of the SAN, else the subject CN
    not_after: datetime.datetime  # aware, UTC


def _read(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, contents, position after) of the element at ``pos``."""
    if pos + 2 > len(data):
        raise DERError("truncated element")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise DERError("unsupported length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise DERError("truncated contents")
    return tag, data[pos : pos + length], pos + length


def _children(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        tag, contents, pos = _read(data, pos)
        out.append((tag, contents))
    return out


def _time(tag: int, value: bytes) -> datetime.datetime:
    text = value.decode("ascii")
    if tag == _UTC_TIME:  # RFC 5280 4.1.2.5.1: YY >= 50 is 19YY
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise DERError("validity is not a time")
    parsed = datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ")
    return parsed.replace(tzinfo=datetime.UTC)


def _common_names(name: bytes) -> list[str]:
    out = []
    for _tag, rdn in _children(name):
        for _t, atv in _children(rdn):
            parts = _children(atv)
            if len(parts) == 2 and parts[0] == (_OID, _OID_COMMON_NAME):
                out.append(parts[1][1].decode("utf-8", errors="replace"))
    return out


def _san_dns_names(extensions: bytes) -> list[str] | None:
    """The SAN's dNSNames, or None when there is no SAN extension."""
    (_tag, seq), *_ = _children(extensions)
    for _t, ext in _children(seq):
        parts = _children(ext)
        if parts and parts[0] == (_OID, _OID_SUBJECT_ALT_NAME):
            value = parts[-1]
            if value[0] != _OCTET_STRING:
                raise DERError("extension value is not an octet string")
            (_, names), *_ = _children(value[1])
            return [
                v.decode("ascii", errors="replace") for t, v in _children(names) if t == _DNS_NAME
            ]
    return None


def certificate_facts(der: bytes) -> CertFacts:
    """Names and notAfter of one DER certificate."""
    (tag, cert), *_ = _children(der)
    if tag != _SEQUENCE:
        raise DERError("not a certificate")
    tbs_tag, tbs = _children(cert)[0]
    fields = _children(tbs)
    if tbs_tag != _SEQUENCE or len(fields) < 6:
        raise DERError("not a tbsCertificate")
    if fields[0][0] == _EXPLICIT_0:
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    validity, subject = _children(fields[3][1]), fields[4][1]
    not_after = _time(*validity[1])
    extensions = next((v for t, v in fields[6:] if t == _EXPLICIT_3), None)
    names = _san_dns_names(extensions) if extensions is not None else None
    if names is None:
        names = _common_names(subject)
    return CertFacts(tuple(n.lower().rstrip(".") for n in names), not_after)


def pem_certificates(pem: bytes) -> list[bytes]:
    """The DER bytes of each ``CERTIFICATE`` block of a PEM file, in order."""
    out = []
    begin, end = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    pos = 0
    while (start := pem.find(begin, pos)) >= 0:
        stop = pem.find(end, start)
        if stop < 0:
            raise DERError("unterminated PEM block")
        out.append(base64.b64decode(b"".join(pem[start + len(begin) : stop].split())))
        pos = stop + len(end)
    return out


# Private keys against the certificate's public key. The checks compare the public half
# each private key file records (RSA n and e, an EC point, an RFC 8410 public key) with
# the certificate's SubjectPublicKeyInfo; where the file does not record it, deriving it
# would take the key's arithmetic (and for EdDSA SHA-512), which is OpenSSL's job.

_INTEGER = 0x02
_BIT_STRING = 0x03
_EXPLICIT_1 = 0xA1  # ECPrivateKey [1] publicKey (RFC 5915)
_IMPLICIT_1 = 0x81  # OneAsymmetricKey [1] IMPLICIT publicKey (RFC 5958)

# Key families by algorithm OID (contents octets). RSASSA-PSS keys are RSA keys with
# usage restrictions: the same n and e are the same key (RFC 8017 A.1, RFC 4055).
_FAMILIES = {
    bytes.fromhex("2a864886f70d010101"): "rsa",  # 1.2.840.113549.1.1.1 rsaEncryption
    bytes.fromhex("2a864886f70d01010a"): "rsa",  # 1.2.840.113549.1.1.10 id-RSASSA-PSS
    bytes.fromhex("2a8648ce3d0201"): "ec",  # 1.2.840.10045.2.1 id-ecPublicKey (RFC 5480)
    bytes.fromhex("2b656e"): "x25519",  # 1.3.101.110 (RFC 8410)
    bytes.fromhex("2b656f"): "x448",  # 1.3.101.111
    bytes.fromhex("2b6570"): "ed25519",  # 1.3.101.112
    bytes.fromhex("2b6571"): "ed448",  # 1.3.101.113
}

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _PublicHalf:
    """The public facts of a key, from a certificate or a private key file."""

    family: str | None  # a value of _FAMILIES, None for an algorithm not handled
    rsa: tuple[int, int] | None = None  # (n, e)
    curve: tuple[int, bytes] | None = None  # EC domain parameters element (tag, contents)
    public: bytes | None = None  # EC point (SEC 1 2.3.3) or RFC 8410 key, when known


def _single(data: bytes, what: str) -> tuple[int, bytes]:
    """(tag, contents) of ``data``, which must be exactly one element."""
    tag, contents, end = _read(data, 0)
    if end != len(data):
        raise DERError(f"{what}: trailing bytes")
    return tag, contents


def _only(data: bytes, tag: int, what: str) -> bytes:
    """Contents of ``data``, which must be exactly one element with ``tag``."""
    got, contents = _single(data, what)
    if got != tag:
        raise DERError(f"{what}: unexpected encoding")
    return contents


def _integer(element: tuple[int, bytes], what: str) -> int:
    tag, contents = element
    if tag != _INTEGER or not contents:
        raise DERError(f"{what} is not an integer")
    return int.from_bytes(contents, "big", signed=True)


def _bits(element: tuple[int, bytes], tag: int, what: str) -> bytes:
    """The octets of a BIT STRING (``tag`` allows IMPLICIT tagging) with no unused bits."""
    got, contents = element
    if got != tag or not contents or contents[0] != 0:
        raise DERError(f"{what} is not a whole-octet bit string")
    return contents[1:]


def _algorithm(element: tuple[int, bytes]) -> tuple[str | None, tuple[int, bytes] | None]:
    """(family, parameters element) of an AlgorithmIdentifier (RFC 5280 4.1.1.2)."""
    tag, contents = element
    parts = _children(contents) if tag == _SEQUENCE else []
    if not 1 <= len(parts) <= 2 or parts[0][0] != _OID:
        raise DERError("bad AlgorithmIdentifier")
    return _FAMILIES.get(parts[0][1]), parts[1] if len(parts) == 2 else None


def _rsa_numbers(fields: list[tuple[int, bytes]], first: int) -> tuple[int, int]:
    if len(fields) < first + 2:
        raise DERError("RSA key too short")
    return _integer(fields[first], "RSA modulus"), _integer(fields[first + 1], "RSA exponent")


def _certificate_key(cert_der: bytes) -> _PublicHalf:
    """The SubjectPublicKeyInfo (RFC 5280 4.1.2.7) of one DER certificate."""
    cert = _children(_only(cert_der, _SEQUENCE, "certificate"))
    if not cert or cert[0][0] != _SEQUENCE:
        raise DERError("not a certificate")
    fields = _children(cert[0][1])
    if fields and fields[0][0] == _EXPLICIT_0:
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    if len(fields) < 6 or fields[5][0] != _SEQUENCE:
        raise DERError("not a tbsCertificate")
    spki = _children(fields[5][1])
    if len(spki) != 2:
        raise DERError("bad SubjectPublicKeyInfo")
    family, params = _algorithm(spki[0])
    key = _bits(spki[1], _BIT_STRING, "subjectPublicKey")
    if family == "rsa":  # RSAPublicKey ::= SEQUENCE { modulus, publicExponent } (RFC 8017 A.1.1)
        return _PublicHalf(family, rsa=_rsa_numbers(_children(_only(key, _SEQUENCE, "RSA")), 0))
    if family == "ec":  # ECParameters in the algorithm, ECPoint as the key (RFC 5480 2.1.1, 2.2)
        return _PublicHalf(family, curve=params, public=key)
    return _PublicHalf(family, public=key)  # RFC 8410 3: the raw public key; or not handled


def _rsa_private(der: bytes) -> _PublicHalf:
    """RSAPrivateKey (RFC 8017 A.1.2): version, modulus, publicExponent, privateExponent, ..."""
    return _PublicHalf("rsa", rsa=_rsa_numbers(_children(_only(der, _SEQUENCE, "RSA key")), 1))


def _ec_private(der: bytes, curve: tuple[int, bytes] | None) -> _PublicHalf:
    """ECPrivateKey (RFC 5915 3): version 1, privateKey, [0] parameters, [1] publicKey.

    ``curve`` is the PKCS#8 AlgorithmIdentifier's parameters, which RFC 5915 lets the
    inner [0] repeat; a key whose two statements differ is malformed.
    """
    fields = _children(_only(der, _SEQUENCE, "EC key"))
    if len(fields) < 2 or _integer(fields[0], "EC key version") != 1:
        raise DERError("not an ECPrivateKey")
    if fields[1][0] != _OCTET_STRING:
        raise DERError("EC private key is not an octet string")
    public = None
    for tag, contents in fields[2:]:
        if tag == _EXPLICIT_0:
            stated = _single(contents, "EC key parameters")
            if curve is not None and curve != stated:
                raise DERError("EC key states two curves")
            curve = stated
        elif tag == _EXPLICIT_1:
            public = _bits(_single(contents, "EC public key"), _BIT_STRING, "EC public key")
    return _PublicHalf("ec", curve=curve, public=public)


def _pkcs8_private(der: bytes) -> _PublicHalf:
    """PrivateKeyInfo / OneAsymmetricKey (RFC 5208 5, RFC 5958 2).

    version (0, or 1 when publicKey may follow), privateKeyAlgorithm, privateKey OCTET
    STRING, [0] IMPLICIT attributes, [1] IMPLICIT publicKey in the subjectPublicKey format.
    """
    fields = _children(_only(der, _SEQUENCE, "PKCS#8 key"))
    if len(fields) < 3 or _integer(fields[0], "PKCS#8 version") not in (0, 1):
        raise DERError("not a PrivateKeyInfo")
    family, params = _algorithm(fields[1])
    tag, private = fields[2]
    if tag != _OCTET_STRING:
        raise DERError("PKCS#8 privateKey is not an octet string")
    public = None
    for element in fields[3:]:
        if element[0] == _IMPLICIT_1:
            public = _bits(element, _IMPLICIT_1, "PKCS#8 publicKey")
    if family == "rsa":
        return _rsa_private(private)
    if family == "ec":
        key = _ec_private(private, params)
        return key if key.public is not None else _PublicHalf("ec", curve=key.curve, public=public)
    if family is not None:  # RFC 8410 7: CurvePrivateKey ::= OCTET STRING
        _only(private, _OCTET_STRING, "RFC 8410 private key")
    return _PublicHalf(family, public=public)


def _private_key_der(pem: bytes) -> tuple[bytes, bytes] | None:
    """(label, DER) of the first private key block of a PEM file; None when encrypted.

    Other blocks (a certificate in the same file, the ``EC PARAMETERS`` block that
    ``openssl ecparam -genkey`` writes first) are skipped. Legacy OpenSSL PEM encryption
    (RFC 1421 headers, ``Proc-Type: 4,ENCRYPTED``) and PKCS#8 ``ENCRYPTED PRIVATE KEY``
    would need the pass phrase and a cipher.
    """
    for block in _PEM_BLOCK.finditer(pem):
        label, lines = block.group(1), [line.strip() for line in block.group(2).splitlines()]
        if not label.endswith(b"PRIVATE KEY"):
            continue
        if label == b"ENCRYPTED PRIVATE KEY":
            return None
        while lines and not lines[0]:
            del lines[0]
        if lines and b":" in lines[0]:  # RFC 1421 headers, up to an empty line
            end = lines.index(b"") if b"" in lines else len(lines)
            if any(h.startswith(b"Proc-Type:") and b"ENCRYPTED" in h for h in lines[:end]):
                return None
            lines = lines[end:]
        body = b"".join(lines)
        try:
            return label, base64.b64decode(body, validate=True)
        except binascii.Error:
            raise DERError("bad base64 in PEM") from None
    raise DERError("no private key in PEM")


def _point(data: bytes) -> tuple[bytes, int, bytes | None]:
    """(x, parity of y, y or None) of a SEC 1 (2.3.3) point; infinity is refused."""
    if len(data) >= 2 and data[0] in (2, 3):
        return data[1:], data[0] & 1, None
    if len(data) >= 3 and len(data) % 2 == 1 and data[0] in (4, 6, 7):
        half = (len(data) - 1) // 2
        y = data[1 + half :]
        if data[0] != 4 and data[0] & 1 != y[-1] & 1:
            raise DERError("hybrid EC point with the wrong parity")
        return data[1 : 1 + half], y[-1] & 1, y
    raise DERError("bad EC point")


def _same_point(a: bytes, b: bytes) -> bool:
    """Whether two encodings of points on one curve name the same point.

    A certificate may hold the point compressed (x and y's parity) while the key file
    holds it whole, or the other way round. The field prime is odd, so y and -y differ
    in parity and (x, parity) names one point: no need to solve the curve equation.
    """
    (xa, parity_a, ya), (xb, parity_b, yb) = _point(a), _point(b)
    return xa == xb and parity_a == parity_b and (ya is None or yb is None or ya == yb)


def _ec_match(key: _PublicHalf, cert: _PublicHalf) -> bool | None:
    """RFC 5480 2.1.1: the curve is the algorithm's parameters, normally a named curve."""
    named = (
        key.curve is not None and cert.curve is not None and key.curve[0] == cert.curve[0] == _OID
    )
    if named and key.curve != cert.curve:
        return False
    if key.public is None or cert.public is None:
        return None  # deriving the point is a scalar multiplication
    if not _same_point(key.public, cert.public):
        return False
    # The same point on an unnamed or unstated curve: probably, but not surely, the key.
    return True if key.curve is not None and key.curve == cert.curve else None


def key_matches_certificate(key_pem: bytes, cert_der: bytes) -> bool | None:
    """True if the private key in ``key_pem`` is the one for the certificate's public key,
    False if it is another key, None if that cannot be told without doing the key's
    arithmetic (or the key is encrypted / of a kind not handled).

    This lets start-up reject a key file that does not go with its certificate without
    loading OpenSSL, whose import an idle server would otherwise carry for good. It only
    compares public facts the files record: RSA n and e (RFC 8017 A.1), the EC curve and
    point (RFC 5480, RFC 5915), an RFC 8410 public key that PKCS#8 v2 (RFC 5958) may carry.
    Keys of different algorithms never match. Malformed input raises :class:`DERError`.
    """
    cert = _certificate_key(cert_der)
    found = _private_key_der(key_pem)
    if found is None:
        return None
    label, der = found
    if label == b"PRIVATE KEY":
        key = _pkcs8_private(der)
    elif label == b"RSA PRIVATE KEY":
        key = _rsa_private(der)
    elif label == b"EC PRIVATE KEY":
        key = _ec_private(der, None)
    else:
        return None  # DSA, OPENSSH, ...: not handled here
    if key.family is None or cert.family is None:
        return None
    if key.family != cert.family:
        return False
    if key.family == "rsa":
        return key.rsa == cert.rsa
    if key.family == "ec":
        return _ec_match(key, cert)
    return None if key.public is None else key.public == cert.public
