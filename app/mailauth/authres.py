"""Authentication-Results header fields (RFC 8601).

:func:`header` renders one field with every method result on its own folded line,
as mox does. :func:`authserv_id` reads the authserv-id of a received field and
:func:`remove_ours` drops incoming fields that claim to come from us (RFC 8601 §5:
an MTA must remove or rename them, or forged results would be trusted).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

# RFC 2045 token: printable ASCII except SPACE and tspecials.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
# RFC 8601 §2.2 pvalue may also be [[local-part] "@"] domain-name (unquoted).
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]+)*"
_ADDR = re.compile(rf"(?:{_DOT_ATOM})?@[A-Za-z0-9\-_.\u0080-\U0010ffff]+")


def quote_value(value: str) -> str:
    """A value as a token, an address form, or a quoted-string (RFC 8601 §2.2)."""
    if _TOKEN.fullmatch(value) or _ADDR.fullmatch(value):
        return value
    cleaned = value.replace("\r", " ").replace("\n", " ")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    cleaned = re.sub(r"[()\\\r\n]", "", text).strip()
    return f" ({cleaned})" if cleaned else ""


@dataclass(frozen=True, slots=True)
class Property:
    """A ptype.property=value item, e.g. ``Property("smtp", "mailfrom", addr)``."""

    ptype: str  # "smtp", "header", "body", "policy"
    name: str
    value: str
    comment: str = ""

    def render(self) -> str:
        return f"{self.ptype}.{self.name}={quote_value(self.value)}{_comment(self.comment)}"


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One resinfo: ``method=result [reason=...] props...`` (RFC 8601 §2.2, §2.7)."""

    method: str  # "spf", "dkim", "dmarc", "iprev", "arc", ...
    result: str
    props: tuple[Property, ...] = ()
    reason: str = ""
    comment: str = ""

    def render(self) -> str:
        out = f"{self.method}={self.result}{_comment(self.comment)}"
        if self.reason:
            out += f" reason={quote_value(self.reason)}"
        for p in self.props:
            out += " " + p.render()
        return out


def header(authserv_id: str, results: Sequence[MethodResult]) -> str:
    """One ``Authentication-Results:`` field with CRLF, one result per line.

    With no results the field says ``none`` (RFC 8601 §2.2 no-result).
    """
    if not results:
        return f"Authentication-Results: {authserv_id}; none\r\n"
    lines = [f"Authentication-Results: {authserv_id};"]
    rendered = [r.render() for r in results]
    lines += [f"\t{r};" for r in rendered[:-1]] + [f"\t{rendered[-1]}"]
    return "\r\n".join(lines) + "\r\n"


def _skip_cfws(text: str, i: int) -> int:
    """Skip whitespace and (nested) comments (RFC 5322 §3.2.2)."""
    depth = 0
    while i < len(text):
        c = text[i]
        if depth:
            if c == "\\":
                i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
        elif c == "(":
            depth = 1
        elif c not in " \t\r\n":
            break
        i += 1
    return i


def authserv_id(value: str) -> str:
    """The authserv-id of a field value, lower-cased without a trailing dot."""
    i = _skip_cfws(value, 0)
    if value[i : i + 1] == '"':
        m = re.compile(r'"((?:[^"\\]|\\.)*)"').match(value, i)
        ident = re.sub(r"\\(.)", r"\1", m.group(1)) if m else ""
    else:
        m = re.compile(r"[^\s;()]*").match(value, i)
        ident = m.group(0) if m else ""
    return ident.lower().removesuffix(".")


def _fields(block: bytes) -> tuple[list[bytes], bytes]:
    """Split a header block into fields (with their folded lines) and the rest,
    which starts at the empty line ending the header (if any)."""
    lines = block.splitlines(keepends=True)
    fields: list[bytes] = []
    for n, line in enumerate(lines):
        if line in (b"\r\n", b"\n"):
            return fields, b"".join(lines[n:])
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields, b""


def _is_ours(field: bytes, ids: set[str]) -> bool:
    name, colon, value = field.partition(b":")
    if not colon or name.strip().lower() != b"authentication-results":
        return False
    text = value.decode("utf-8", errors="replace")
    return authserv_id(text) in ids


def remove_ours(header_bytes: bytes, hostname: str | Sequence[str]) -> tuple[bytes, int]:
    """Drop Authentication-Results fields whose authserv-id is ``hostname``.

    ``header_bytes`` is a raw header section (the body may follow the empty line and
    is returned untouched). Returns the new bytes and the number of fields removed.
    """
    names = [hostname] if isinstance(hostname, str) else list(hostname)
    ids = {h.lower().removesuffix(".") for h in names}
    fields, rest = _fields(header_bytes)
    kept = [f for f in fields if not _is_ours(f, ids)]
    return b"".join(kept) + rest, len(fields) - len(kept)


def find_ours(header_bytes: bytes, hostname: str) -> list[bytes]:
    """The raw Authentication-Results fields that claim ``hostname`` as authserv-id."""
    ids = {hostname.lower().removesuffix(".")}
    fields, _ = _fields(header_bytes)
    return [f for f in fields if _is_ours(f, ids)]


__all__ = [
    "MethodResult",
    "Property",
    "authserv_id",
    "find_ours",
    "header",
    "quote_value",
    "remove_ours",
]
