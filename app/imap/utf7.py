"""Modified UTF-7 for IMAP mailbox names (RFC 3501 5.1.3).

``encode`` never fails for a ``str`` (lone surrogates excepted); ``decode`` is
strict: anything that a canonical encoder would not have produced is rejected
with :class:`UTF7Error`, so that one Unicode name has exactly one wire form and
two different wire names can never map onto one mailbox.
"""

import base64
import binascii

from app.imap.errors import IMAPError

__all__ = ["UTF7Error", "decode", "encode"]

_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


class UTF7Error(IMAPError, ValueError):
    """The input is not canonical modified UTF-7; ``reason`` says why (safe to show)."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


def _printable(ch: str) -> bool:
    # RFC 3501 5.1.3: 0x20-0x7e represent themselves (except "&").
    return "\x20" <= ch <= "\x7e"


def _encode_run(run: str) -> str:
    data = run.encode("utf-16-be", errors="strict")
    # RFC 3501 5.1.3: modified BASE64 uses "," instead of "/" and omits "=" padding.
    return "&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-"


def encode(name: str) -> str:
    """Encode a Unicode mailbox name into modified UTF-7.

    Raises :class:`UTF7Error` only for strings holding lone surrogates, which have
    no UTF-16 form.
    """
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _printable(ch):
            if run:
                out.append(_encode_run_checked("".join(run), len(out)))
                run = []
            # RFC 3501 5.1.3: "&" is represented as "&-".
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        out.append(_encode_run_checked("".join(run), len(out)))
    return "".join(out)


def _encode_run_checked(run: str, position: int) -> str:
    try:
        return _encode_run(run)
    except UnicodeEncodeError:
        raise UTF7Error("unpaired surrogate", position) from None


def _decode_run(b64: str, start: int) -> str:
    if not b64:
        raise UTF7Error("empty encoded section", start)
    if any(ord(c) not in _B64_ALPHABET for c in b64):
        raise UTF7Error("invalid base64 character", start)
    # Each UTF-16 unit is 16 bits; the number of base64 characters determines how many
    # bits were sent. 8 leftover bits would be half a unit (RFC 3501 5.1.3 / RFC 2152).
    bits = len(b64) * 6
    if (bits % 16) >= 6:
        raise UTF7Error("encoded section is not whole UTF-16 units", start)
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise UTF7Error("invalid base64", start) from None
    if len(data) % 2:
        raise UTF7Error("encoded section is not whole UTF-16 units", start)
    # RFC 2152: unused trailing bits must be zero, otherwise the encoding is not canonical.
    if _encode_run_bits(data) != b64:
        raise UTF7Error("non-zero padding bits", start)
    try:
        text = data.decode("utf-16-be", errors="strict")
    except UnicodeDecodeError:
        raise UTF7Error("unpaired surrogate", start) from None
    if any(_printable(ch) for ch in text):
        # RFC 3501 5.1.3: printable US-ASCII must represent itself, never be encoded.
        raise UTF7Error("printable character encoded", start)
    return text


def _encode_run_bits(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")


def decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name; raise :class:`UTF7Error` unless canonical."""
    out: list[str] = []
    i = 0
    n = len(name)
    previous_was_encoded = False
    while i < n:
        ch = name[i]
        if ch == "&":
            end = name.find("-", i + 1)
            if end < 0:
                raise UTF7Error("unterminated shift", i)
            if end == i + 1:
                # RFC 3501 5.1.3: "&-" is "&".
                out.append("&")
                previous_was_encoded = False
            else:
                if previous_was_encoded:
                    # RFC 3501 5.1.3: adjacent encoded runs must be a single run.
                    raise UTF7Error("superfluous shift", i)
                out.append(_decode_run(name[i + 1 : end], i))
                previous_was_encoded = True
            i = end + 1
            continue
        if not _printable(ch):
            raise UTF7Error("character not allowed in modified UTF-7", i)
        out.append(ch)
        previous_was_encoded = False
        i += 1
    return "".join(out)
