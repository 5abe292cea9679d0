"""ENVELOPE, BODY and BODYSTRUCTURE rendering (RFC 9051 7.5.2 and 9; RFC 3501 7.4.2).

Input is the MIME tree the store cached at delivery (:class:`app.message.part.Part`,
with envelopes), so no message is parsed again. Media types, subtypes, encodings,
parameter names and disposition types are sent upper-case, as mox and most servers
do; values keep their case. Without UTF8=ACCEPT, decoded parameter values that are
not ASCII are sent as RFC 2047 encoded words (clients decode those in file names);
header strings of the envelope are sent as stored (8-bit ones as literals).
"""

import re
from collections.abc import Sequence

from app.imap.protocol import literal
from app.message.encoded import encode_word
from app.message.envelope import Envelope, EnvelopeAddress
from app.message.part import Params, Part

_NIL = b"NIL"
_EMBEDDED = frozenset({("message", "rfc822"), ("message", "global")})
_EMPTY_TEXT = Part(
    "text", "plain", (), "", "", "", "", (), (), "", "", 0, 0, 0, 0
)  # stands in for an embedded message that could not be parsed


# Quotable content (RFC 9051 9: quoted): printable ASCII, plus 8-bit UTF-8 once
# UTF8=ACCEPT is on. '"' and '\\' are escaped. One regex match instead of the
# per-character checks of protocol.string: ENVELOPE of 5,000 messages went from
# ~180 ms to ~60 ms.
_QUOTABLE = re.compile(rb"[\x20-\x7e]{0,1024}")
_QUOTABLE_UTF8 = re.compile(rb"[^\x00-\x1f\x7f]{0,1024}")


def _s(value: str, utf8: bool) -> bytes:
    """A quoted string when possible, else a literal (RFC 9051 4.3)."""
    data = value.encode("utf-8")
    if (_QUOTABLE_UTF8 if utf8 else _QUOTABLE).fullmatch(data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def _ns(value: str | None, utf8: bool) -> bytes:
    """nstring; the empty string is NIL (absent field)."""
    return _NIL if not value else _s(value, utf8)


def _address(a: EnvelopeAddress, utf8: bool) -> bytes:
    # RFC 9051 9: address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
    fields = (a.name, a.adl, a.mailbox, a.host)
    return b"(" + b" ".join(_NIL if f is None else _s(f, utf8) for f in fields) + b")"


def _addresses(addrs: Sequence[EnvelopeAddress], utf8: bool) -> bytes:
    if not addrs:
        return _NIL
    return b"(" + b"".join(_address(a, utf8) for a in addrs) + b")"


def envelope(env: Envelope | None, *, utf8: bool = False) -> bytes:
    """The ENVELOPE structure (RFC 9051 7.5.2); None renders an all-NIL envelope."""
    if env is None:
        return b"(" + b" ".join([_NIL] * 10) + b")"
    parts = [
        _ns(env.date, utf8),
        _ns(env.subject, utf8),
        _addresses(env.from_, utf8),
        _addresses(env.sender, utf8),
        _addresses(env.reply_to, utf8),
        _addresses(env.to, utf8),
        _addresses(env.cc, utf8),
        _addresses(env.bcc, utf8),
        _ns(env.in_reply_to, utf8),
        _ns(env.message_id, utf8),
    ]
    return b"(" + b" ".join(parts) + b")"


def _value(v: str, utf8: bool) -> bytes:
    return _s(v if utf8 or v.isascii() else encode_word(v), utf8)


def _params(params: Params, utf8: bool) -> bytes:
    # RFC 9051 9: body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
    if not params:
        return _NIL
    items = [_s(k.upper(), utf8) + b" " + _value(v, utf8) for k, v in params]
    return b"(" + b" ".join(items) + b")"


def _text_params(p: Part) -> Params:
    """Parameters of a text part; the RFC 2045 5.2 default charset is made explicit."""
    if p.type == "text" and p.param("charset") is None:
        return (("charset", "us-ascii"), *p.params)
    return p.params


def _disposition(p: Part, utf8: bool) -> bytes:
    # RFC 9051 9: body-fld-dsp = "(" string SP body-fld-param ")" / nil
    if not p.disposition:
        return _NIL
    return (
        b"(" + _s(p.disposition.upper(), utf8) + b" " + _params(p.disposition_params, utf8) + b")"
    )


def _language(p: Part, utf8: bool) -> bytes:
    # RFC 9051 9: body-fld-lang = nstring / "(" string *(SP string) ")"
    if not p.language:
        return _NIL
    return b"(" + b" ".join(_s(x, utf8) for x in p.language) + b")"


def _fields(p: Part, utf8: bool) -> bytes:
    # RFC 9051 9: body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP
    #             body-fld-enc SP body-fld-octets
    enc = (p.encoding or "7bit").upper()
    return b" ".join(
        (
            _params(_text_params(p), utf8),
            _ns(p.id, utf8),
            _ns(p.description, utf8),
            _s(enc, utf8),
            b"%d" % max(p.size, 0),
        )
    )


def body(p: Part, *, extensions: bool, utf8: bool = False) -> bytes:
    """BODYSTRUCTURE (``extensions`` True) or BODY (False) of a part and its children."""
    if p.parts:
        # RFC 9051 9: body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        out = b"".join(body(c, extensions=extensions, utf8=utf8) for c in p.parts)
        out += b" " + _s(p.subtype.upper(), utf8)
        if extensions:
            # body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
            out += b" " + b" ".join(
                (
                    _params(p.params, utf8),
                    _disposition(p, utf8),
                    _language(p, utf8),
                    _ns(p.location, utf8),
                )
            )
        return b"(" + out + b")"
    items = [_s(p.type.upper(), utf8), _s(p.subtype.upper(), utf8), _fields(p, utf8)]
    if (p.type, p.subtype) in _EMBEDDED:
        # RFC 9051 9: body-type-msg = media-message SP body-fields SP envelope SP body
        #             SP body-fld-lines
        inner = p.message if p.message is not None else _EMPTY_TEXT
        items += [
            envelope(inner.envelope, utf8=utf8),
            body(inner, extensions=extensions, utf8=utf8),
            b"%d" % p.lines,
        ]
    elif p.type == "text":
        items.append(b"%d" % p.lines)  # body-type-text ... SP body-fld-lines
    if extensions:
        # body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
        items += [
            _ns(p.md5, utf8),
            _disposition(p, utf8),
            _language(p, utf8),
            _ns(p.location, utf8),
        ]
    return b"(" + b" ".join(items) + b")"


def bodystructure(p: Part, *, utf8: bool = False) -> bytes:
    """``BODYSTRUCTURE`` value: the structure with extension data."""
    return body(p, extensions=True, utf8=utf8)
