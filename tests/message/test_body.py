"""Decoding part bodies."""

from app.message.body import decode_body, decode_text, decode_transfer
from app.message.part import parse


def test_transfer_encodings() -> None:
    assert decode_transfer(b"aGVs\r\nbG8=", "BASE64") == b"hello"
    assert decode_transfer(b"aGVsbG8", "base64") == b"hello"  # missing padding
    assert decode_transfer(b"a=3Db=\r\nc", "quoted-printable") == b"a=bc"
    assert decode_transfer(b"\xff raw", "8bit") == b"\xff raw"
    assert decode_transfer(b"x", "x-unknown") == b"x"


def test_decode_text_with_charset() -> None:
    data = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9"
    )
    p = parse(data)
    assert decode_body(data, p) == b"caf\xe9"
    assert decode_text(data, p) == "café"
    data = b"Content-Type: text/plain; charset=x-bogus\r\n\r\ncaf\xc3\xa9"
    assert decode_text(data, parse(data)) == "café"
    data = b"\r\ncaf\xc3\xa9"  # no charset: us-ascii, read as UTF-8
    assert decode_text(data, parse(data)) == "café"
