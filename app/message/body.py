"""Decoding part bodies: transfer encodings (RFC 2045 6) and charsets.

For search indexing and IMAP BINARY (RFC 3516).
"""

import binascii

from app.message.encoded import decode_base64, decode_charset
from app.message.part import Part


def decode_transfer(raw: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding; identity and unknown encodings return ``raw``."""
    enc = encoding.lower()
    if enc == "base64":  # RFC 2045 6.8
        return decode_base64(raw)
    if enc == "quoted-printable":  # RFC 2045 6.7
        return binascii.a2b_qp(raw)
    return raw


def decode_body(data: bytes, part: Part) -> bytes:
    """The decoded body octets of ``part`` within message ``data``."""
    return decode_transfer(data[part.body_start : part.end], part.encoding)


def decode_text(data: bytes, part: Part) -> str:
    """The body of ``part`` as text, using its charset parameter (default us-ascii,
    read as UTF-8 falling back to latin-1; unknown charsets as UTF-8 with
    replacement). Never raises."""
    body = decode_body(data, part)
    s = decode_charset(body, part.param("charset") or "")
    return s if s is not None else body.decode("utf-8", "replace")
