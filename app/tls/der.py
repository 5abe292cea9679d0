"""The two facts a server needs from its own X.509 certificates: host names and expiry.

A small DER reader (ITU-T X.690) for the fields of RFC 5280 4.1 that certificate
selection uses, so that loading certificates at start-up does not map the whole
``cryptography`` library into a long-running process. Anything not understood raises
:class:`DERError`; the certificate has already been accepted by OpenSSL
(``load_cert_chain``) when this runs, so that means a bug, not bad input.
"""

import base64
import datetime
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
