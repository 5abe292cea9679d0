"""Encoded words (RFC 2047), MIME parameters (RFC 2045 5.1, RFC 2231) and charsets."""

import binascii
import codecs
import re
import urllib.parse

_EW = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")

# Charset labels seen in mail that Python's codec registry does not know.
_CHARSET_ALIASES = {
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "utf-8",
    "unknown-8bit": "latin-1",
    "x-user-defined": "latin-1",
    "ansi_x3.4-1968": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "cp949",
    "x-mac-roman": "mac-roman",
    "windows-874": "cp874",
}


def lookup_charset(charset: str) -> str | None:
    """The Python codec name for a MIME charset label, or None when unknown."""
    cs = charset.strip().strip('"').lower()
    cs = _CHARSET_ALIASES.get(cs, cs)
    try:
        return codecs.lookup(cs).name
    except (LookupError, ValueError):
        return None


def decode_charset(data: bytes, charset: str) -> str | None:
    """Decode ``data`` in ``charset``; None for an unknown charset.

    Invalid sequences are replaced. us-ascii text with 8-bit bytes is read as
    UTF-8 (or latin-1) because mislabelled mail is common.
    """
    name = lookup_charset(charset) if charset else "ascii"
    if name is None:
        return None
    if name == "ascii":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return data.decode(name, "replace")


def decode_base64(data: bytes) -> bytes:
    """Tolerant base64 decoding (RFC 2045 6.8): ignores junk, repairs padding."""
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    data = data[: len(data) - len(data) % 4 if len(data) % 4 == 1 else len(data)]
    data += b"=" * (-len(data) % 4)
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return b""


def _decode_word(charset: str, enc: str, text: str) -> tuple[str, bytes]:
    cs = charset.split("*", 1)[0].lower()  # RFC 2231 5: charset*language
    raw = text.encode("ascii", "replace")
    if enc in "bB":
        data = decode_base64(raw)
    else:
        data = binascii.a2b_qp(raw, header=True)  # RFC 2047 4.2: "_" is space
    return cs, data


def _flush(out: list[str], pending: list[tuple[str, bytes, str]]) -> None:
    for cs, data, original in pending:
        s = decode_charset(data, cs)
        if s is None:
            try:
                s = data.decode("utf-8")
            except UnicodeDecodeError:
                s = original  # unknown charset: keep the encoded word
        out.append(s)
    pending.clear()


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words in ``text``.

    Whitespace between adjacent encoded words is dropped (RFC 2047 6.2), and the
    bytes of adjacent words in the same charset are joined before decoding so a
    character split over two words survives. Unknown charsets are kept encoded
    unless the bytes are valid UTF-8. Never raises.
    """
    if "=?" not in text:
        return text
    out: list[str] = []
    pending: list[tuple[str, bytes, str]] = []
    pos = 0
    for m in _EW.finditer(text):
        between = text[pos : m.start()]
        if not (pending and (not between or between.isspace())):
            _flush(out, pending)
            out.append(between)
        cs, data = _decode_word(m.group(1), m.group(2), m.group(3))
        pos = m.end()
        if pending and pending[-1][0] == cs:
            last = pending[-1]
            pending[-1] = (cs, last[1] + data, last[2] + m.group(0))
        else:
            pending.append((cs, data, m.group(0)))
    _flush(out, pending)
    out.append(text[pos:])
    return "".join(out)


def encode_word(text: str) -> str:
    """Encode ``text`` as one or more RFC 2047 B-words in UTF-8 when not ASCII."""
    if text.isascii():
        return text
    words = []
    chunk = ""
    for ch in text:
        if len((chunk + ch).encode("utf-8")) > 45:  # RFC 2047 2: 75 chars per word
            words.append(chunk)
            chunk = ""
        chunk += ch
    words.append(chunk)
    return " ".join(
        "=?utf-8?b?" + binascii.b2a_base64(w.encode("utf-8"), newline=False).decode() + "?="
        for w in words
    )


def _skip_comment(s: str, i: int) -> int:
    """Skip an RFC 5322 3.2.2 comment starting at ``s[i] == "("``; nested, with escapes."""
    depth = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _quoted(s: str, i: int) -> tuple[str, int]:
    """Read a quoted string at ``s[i] == '"'``; tolerates a missing closing quote."""
    out = []
    i += 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), n


def _raw_params(s: str, i: int) -> list[tuple[str, str, bool]]:
    """Parse ``; name=value`` pairs from ``s[i:]``; returns (name, value, was_quoted)."""
    out: list[tuple[str, str, bool]] = []
    n = len(s)
    while i < n:
        c = s[i]
        if c in " \t\r\n;":
            i += 1
            continue
        if c == "(":
            i = _skip_comment(s, i)
            continue
        semi = s.find(";", i)
        eq = s.find("=", i, n if semi < 0 else semi)  # bounded: linear on hostile input
        if eq < 0:
            i = n if semi < 0 else semi + 1  # garbage without "=": skipped
            continue
        name = s[i:eq].strip().lower()
        i = eq + 1
        while i < n and s[i] in " \t\r\n":
            i += 1
        if i < n and s[i] == '"':
            value, i = _quoted(s, i)
            quoted = True
        else:
            semi = s.find(";", i)
            j = n if semi < 0 else semi
            value = s[i:j]
            if "(" in value:  # RFC 2045 5.1: trailing comment after a token
                value = value[: value.index("(")]
            value = value.strip()
            i = j
            quoted = False
        if name and " " not in name:
            out.append((name, value, quoted))
    return out


def _assemble_2231(parts: list[tuple[int, bool, str]]) -> str:
    """Join RFC 2231 3/4 continuations (section, extended, value) into a string."""
    parts.sort(key=lambda p: p[0])
    charset = ""
    buf = bytearray()
    for want, (section, extended, value) in enumerate(parts):
        if section != want:
            break  # RFC 2231 3: continuations must be consecutive from 0
        if extended:
            if section == 0:
                bits = value.split("'", 2)
                if len(bits) == 3:  # RFC 2231 4: charset'language'value
                    charset, value = bits[0], bits[2]
            buf += urllib.parse.unquote_to_bytes(value)
        else:
            buf += value.encode("utf-8")
    s = decode_charset(bytes(buf), charset or "utf-8")
    return s if s is not None else bytes(buf).decode("utf-8", "replace")


def parse_params(s: str, start: int = 0) -> tuple[tuple[str, str], ...]:
    """Parse MIME parameters (RFC 2045 5.1) with RFC 2231 continuations and charsets.

    Names are lower-cased; the first occurrence of a name wins; an RFC 2231 value
    is preferred over a plain one. Encoded words in values (a common violation)
    are decoded. Never raises.
    """
    plain: dict[str, str] = {}
    ext: dict[str, list[tuple[int, bool, str]]] = {}
    order: list[str] = []
    for name, value, _quoted in _raw_params(s, start):
        if "*" in name:
            base, _, rest = name.partition("*")
            extended = rest.endswith("*") or rest == ""
            section = rest.rstrip("*")
            if base and (section == "" or section.isdigit()):
                if base not in ext:
                    ext[base] = []
                    if base not in plain:
                        order.append(base)
                ext[base].append((int(section or "0"), extended, value))
                continue
        if name not in plain:
            if name not in ext:
                order.append(name)
            plain[name] = decode_words(value) if "=?" in value else value
    out = []
    for name in order:
        if name in ext:
            out.append((name, _assemble_2231(ext[name])))
        else:
            out.append((name, plain[name]))
    return tuple(out)


_TOKEN_BAD = set('()<>@,;:\\"/[]?= \t')


def _is_token(s: str) -> bool:
    # RFC 2045 5.1: token excludes SPACE, CTLs and tspecials
    return bool(s) and s.isascii() and s.isprintable() and not (_TOKEN_BAD & set(s))


def parse_content_type(value: str) -> tuple[str, str, tuple[tuple[str, str], ...]] | None:
    """Parse a Content-Type value into (type, subtype, params), lower-case type names.

    Returns None when the media type itself is unusable (caller applies defaults).
    """
    semi = value.find(";")
    mt = value if semi < 0 else value[:semi]
    if "(" in mt:
        mt = mt[: mt.index("(")]
    t, slash, sub = mt.strip().partition("/")
    t = t.strip().lower()
    sub = sub.strip().lower()
    params = parse_params(value, semi + 1) if semi >= 0 else ()
    if not slash or not _is_token(t) or not _is_token(sub):
        return None
    return t, sub, params


def parse_disposition(value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Parse a Content-Disposition value (RFC 2183) into (lower-case type, params)."""
    semi = value.find(";")
    d = (value if semi < 0 else value[:semi]).strip().lower()
    if "(" in d:
        d = d[: d.index("(")].strip()
    return d, (parse_params(value, semi + 1) if semi >= 0 else ())
