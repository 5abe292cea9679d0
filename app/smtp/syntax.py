"""Syntax checks for SMTP command arguments (server side, no I/O).

Each parser takes the argument text that follows the command verb (including its
leading space) and returns plain values, or raises :class:`CommandError` carrying
the reply the core sends. Paths are not parsed here: the raw text between ``<``
and ``>`` goes to the server layer's path parser.
"""

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

from app.dns.domain import Domain, DomainError
from app.smtp import codes as c
from app.smtp.codes import Reply


class CommandError(Exception):
    """A command the core answers itself. ``bad`` is False for a policy refusal of
    a well-formed command (not counted toward the bad-command limit)."""

    def __init__(self, reply: Reply, *, bad: bool = True) -> None:
        super().__init__(reply.text)
        self.reply = reply
        self.bad = bad


def syntax_error(text: str) -> CommandError:
    # RFC 5321 4.2.3: 501 syntax error in parameters or arguments.
    return CommandError(Reply(c.C501_PARAM_SYNTAX_ERROR, c.SE_PROTO5_SYNTAX_2, text))


def param_error(text: str) -> CommandError:
    return CommandError(Reply(c.C501_PARAM_SYNTAX_ERROR, c.SE_PROTO5_BAD_PARAMS_4, text))


def unrecognized_param(keyword: str) -> CommandError:
    # RFC 5321 4.1.1.11 / 4.2.3: 555 parameters not recognized or not implemented.
    return CommandError(
        Reply(
            c.C555_PARAMS_NOT_RECOGNIZED,
            c.SE_PROTO5_BAD_PARAMS_4,
            f"unrecognized parameter {keyword!r}",
        )
    )


def expect_end(args: str) -> None:
    """Commands without arguments; trailing white space is tolerated (RFC 5321 4.1.1)."""
    if args.strip(" \t"):
        raise syntax_error("no arguments expected")


# --- HELO / EHLO --------------------------------------------------------------


def _address_literal(text: str) -> None:
    """RFC 5321 4.1.3: ``[IPv4]`` or ``[IPv6:addr]``; general literals are refused."""
    inner = text[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            ipaddress.IPv6Address(inner[5:])
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        raise syntax_error("invalid address literal") from None


def _domain(text: str) -> None:
    if not text or any(ch in text for ch in ' \t[]@<>"\\') or not text.isprintable():
        raise syntax_error("invalid domain")
    try:
        Domain.parse(text)
    except DomainError:
        raise syntax_error("invalid domain") from None


def parse_hello(args: str, *, ehlo: bool, lenient: bool) -> str:
    """The argument of HELO/EHLO (RFC 5321 4.1.1.1). ``lenient`` (submission, as
    mox): mail clients send junk here and the value is of no use, accept anything."""
    if lenient:
        return args.strip(" \t")
    if not args.startswith(" "):
        raise syntax_error("missing domain")
    rest = args[1:].rstrip(" \t")
    word, _, extra = rest.partition(" ")
    if word.startswith("["):
        if not ehlo:
            # HELO takes a domain only (RFC 5321 4.1.1.1).
            raise syntax_error("HELO requires a domain, use EHLO for address literals")
        if not word.endswith("]"):
            raise syntax_error("invalid address literal")
        _address_literal(word)
        # RFC 5321 4.1.4 lets text follow an address literal; tolerate it.
        return word
    if extra:
        raise syntax_error("unexpected text after domain")
    _domain(word)
    return word


# --- MAIL / RCPT --------------------------------------------------------------

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")  # RFC 5321 4.1.2 esmtp-keyword
_VALUE_ASCII = re.compile(r"[\x21-\x3c\x3e-\x7e]+")  # esmtp-value
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+")  # RFC 3461 4
_DIGITS = re.compile(r"[0-9]{1,20}")  # RFC 1870 3: size-value 1*20DIGIT
_ADDR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")  # RFC 3461 4.2 atom


def _scan_path(text: str) -> int:
    """Index of the ``>`` that ends a path starting at ``text[0] == "<"``; quoted
    local parts may contain ``>`` (RFC 5321 4.1.2 Quoted-string)."""
    quoted = False
    i = 1
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            return i
        i += 1
    raise syntax_error("missing > after path")


def parse_path_args(args: str, keyword: str) -> tuple[str, list[str]]:
    """Split ``" FROM:<path> params"`` into the raw path and parameter words."""
    if args[: len(keyword) + 1].upper() != f" {keyword}":
        raise syntax_error(f"expected {keyword.strip()}")
    rest = args[len(keyword) + 1 :]
    # RFC 5321 4.1.2 allows no space after the colon; sloppy senders (Outlook) send
    # one, tolerated as mox does.
    if rest.startswith(" "):
        rest = rest[1:]
    if not rest.startswith("<"):
        raise syntax_error("expected <path>")
    end = _scan_path(rest)
    path = rest[1:end]
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise syntax_error("control character in path")
    tail = rest[end + 1 :]
    if tail and not tail.startswith(" "):
        raise syntax_error("expected space after path")
    # RFC 5321 4.1.2: SP-separated parameters; extra or trailing white space tolerated.
    return path, tail.replace("\t", " ").split()


def split_params(words: list[str], *, utf8: bool) -> dict[str, str | None]:
    """Parse ``KEYWORD[=value]`` words; keywords upper-cased, duplicates refused."""
    params: dict[str, str | None] = {}
    for w in words:
        key, eq, value = w.partition("=")
        if not _KEYWORD.fullmatch(key):
            raise param_error("invalid parameter keyword")
        k = key.upper()
        if k in params:
            raise param_error(f"duplicate parameter {key!r}")
        if eq:
            # RFC 6531 3.3: UTF-8 in esmtp-value only with SMTPUTF8.
            ok = _VALUE_ASCII.fullmatch(value) or (
                utf8 and value and value.isprintable() and " " not in value and "=" not in value
            )
            if not ok:
                raise param_error(f"invalid value for parameter {key!r}")
            params[k] = value
        else:
            params[k] = None
    return params


@dataclass(frozen=True, slots=True)
class ParamContext:
    """What the parameter checks need to know about the session."""

    max_size: int
    tls_active: bool
    smtputf8: bool
    requiretls: bool
    dsn: bool


def _need_value(k: str, v: str | None) -> str:
    if v is None:
        raise param_error(f"parameter {k} needs a value")
    return v


def _no_value(k: str, v: str | None) -> None:
    if v is not None:
        raise param_error(f"parameter {k} takes no value")


def _xtext(k: str, v: str | None, max_len: int) -> None:
    v = _need_value(k, v)
    if not _XTEXT.fullmatch(v) or len(v) > max_len:
        raise param_error(f"invalid xtext in {k}")


def check_mail_params(params: dict[str, str | None], ctx: ParamContext) -> None:
    """Validate MAIL FROM parameters (known keywords; others are 555)."""
    for k, v in params.items():
        if k == "SIZE":  # RFC 1870 3
            if not _DIGITS.fullmatch(_need_value(k, v)):
                raise param_error("invalid SIZE value")
            if int(_need_value(k, v)) > ctx.max_size:
                # RFC 1870 6.1 and RFC 3463 3.4: 552 5.3.4.
                raise CommandError(
                    Reply(c.C552_STORAGE_EXCEEDED, c.SE_SYS3_MSG_TOO_LARGE_4, "message too large"),
                    bad=False,
                )
        elif k == "BODY":  # RFC 6152 2
            body = _need_value(k, v).upper()
            if body not in ("7BIT", "8BITMIME"):
                # BINARYMIME (RFC 3030 3) is not implemented nor announced.
                raise CommandError(
                    Reply(
                        c.C555_PARAMS_NOT_RECOGNIZED,
                        c.SE_PROTO5_BAD_PARAMS_4,
                        f"unsupported BODY value {v!r}",
                    )
                )
        elif k == "SMTPUTF8" and ctx.smtputf8:  # RFC 6531 3.4
            _no_value(k, v)
        elif k == "REQUIRETLS" and ctx.requiretls:  # RFC 8689 4.1
            _no_value(k, v)
            if not ctx.tls_active:
                raise CommandError(
                    Reply(
                        c.C530_SECURITY_REQUIRED,
                        c.SE_POL7_ENCRYPTION_NEEDED_10,
                        "requiretls only allowed on tls-encrypted connections",
                    ),
                    bad=False,
                )
        elif k == "AUTH":  # RFC 4954 5: AUTH=<> or AUTH=xtext mailbox
            _xtext(k, v, 500)
        elif k == "RET" and ctx.dsn:  # RFC 3461 4.3
            if _need_value(k, v).upper() not in ("FULL", "HDRS"):
                raise param_error("RET must be FULL or HDRS")
        elif k == "ENVID" and ctx.dsn:  # RFC 3461 4.4: at most 100 characters
            _xtext(k, v, 100)
        else:
            raise unrecognized_param(k)


def check_rcpt_params(params: dict[str, str | None], ctx: ParamContext) -> None:
    """Validate RCPT TO parameters (DSN's NOTIFY and ORCPT; others are 555)."""
    for k, v in params.items():
        if k == "NOTIFY" and ctx.dsn:  # RFC 3461 4.1
            words = _need_value(k, v).upper().split(",")
            if words == ["NEVER"]:
                continue
            if len(set(words)) != len(words) or not set(words) <= {"SUCCESS", "FAILURE", "DELAY"}:
                raise param_error("invalid NOTIFY value")
        elif k == "ORCPT" and ctx.dsn:  # RFC 3461 4.2, RFC 6533 3
            addr_type, semi, addr = _need_value(k, v).partition(";")
            if not semi or not _ADDR_TYPE.fullmatch(addr_type) or not addr or len(v or "") > 500:
                raise param_error("invalid ORCPT value")
            if not _XTEXT.fullmatch(addr) and not (ctx.smtputf8 and addr.isprintable()):
                raise param_error("invalid ORCPT value")
        else:
            raise unrecognized_param(k)


# --- AUTH ---------------------------------------------------------------------

_MECH = re.compile(r"[A-Z0-9_-]{1,20}")  # RFC 4422 3.1 sasl-mech


def decode_base64(text: str) -> bytes:
    """Strict base64 as RFC 4954 4 requires; raises :class:`CommandError` 501."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise syntax_error("invalid base64") from None


def parse_auth(args: str) -> tuple[str, bytes | None]:
    """``AUTH mechanism [initial-response]`` (RFC 4954 4)."""
    if not args.startswith(" "):
        raise syntax_error("missing mechanism")
    mech, sp, initial = args[1:].partition(" ")
    if not _MECH.fullmatch(mech.upper()):
        raise syntax_error("invalid mechanism name")
    if not sp:
        return mech.upper(), None
    # Windows Mail sends two spaces before the initial response (as mox notes).
    initial = initial.lstrip(" ")
    if not initial:
        raise syntax_error("missing initial auth base64 parameter after space")
    if initial == "=":  # RFC 4954 4: "=" is an empty initial response
        return mech.upper(), b""
    return mech.upper(), decode_base64(initial)


# --- BDAT and the rest --------------------------------------------------------

_BDAT = re.compile(r" ([0-9]{1,20})(?: +(LAST))? *", re.IGNORECASE)  # RFC 3030 2


def parse_bdat(args: str) -> tuple[int, bool]:
    m = _BDAT.fullmatch(args)
    if not m:
        raise syntax_error("expected BDAT chunk-size [LAST]")
    return int(m.group(1)), m.group(2) is not None


def parse_string_arg(args: str) -> str:
    """VRFY/EXPN: ``SP String`` (RFC 5321 4.1.1.6/4.1.1.7)."""
    arg = args.strip(" \t")
    if not args.startswith(" ") or not arg:
        raise syntax_error("missing argument")
    return arg
