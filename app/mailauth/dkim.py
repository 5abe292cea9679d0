"""DKIM signatures (RFC 6376): verification and signing.

Verification returns one :class:`DKIMResult` per DKIM-Signature field, with a status
that is always set (temperror and permerror are statuses, not exceptions) and a
``trusted`` flag that combines what DMARC may rely on: a passing signature with a
hash other than SHA-1 (RFC 8301), over the whole body (no l=) and covering the one
From field of the message.

Key lookups run concurrently on the event loop; RSA and Ed25519 verification is cheap
enough to stay there. Hashing a large body can be moved to an executor passed by the
caller. Signing is synchronous CPU work; callers on the event loop may offload it.
"""

import asyncio
import base64
import concurrent.futures
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from app.dns.resolver import Answer, DNSError, InvalidName, NotFound
from app.mailauth.dkim_canon import (
    BodyHasher,
    BodyTooShort,
    Canon,
    RawHeader,
    body_hash,
    canon_header,
    normalize_line_endings,
    relaxed_header,
    select_headers,
    split_message,
)
from app.mailauth.dkim_keys import (
    MIN_RSA_BITS,
    DKIMKeyError,
    KeyRecord,
    NotADKIMRecord,
    PrivateKey,
    PublicKey,
    generate_ed25519,
    generate_rsa,
    key_type,
    load_private_key,
    parse_key_record,
    txt_record,
)
from app.mailauth.dkim_sig import (
    Algorithm,
    Signature,
    TagError,
    identity_domain,
    parse_signature,
    without_b_value,
)

__all__ = [
    "DEFAULT_HEADERS",
    "Algorithm",
    "DKIMKeyError",
    "DKIMResult",
    "KeyLookup",
    "Selector",
    "SignError",
    "Status",
    "TXTResolver",
    "generate_ed25519",
    "generate_rsa",
    "load_private_key",
    "lookup_key",
    "selectors_for_domain",
    "sign",
    "txt_record",
    "verify",
]

log = logging.getLogger(__name__)

# Bodies larger than this are hashed in the caller's executor, when one is given.
OFFLOAD_THRESHOLD = 1 << 20
FILE_CHUNK = 1 << 20
MAX_HEAD = 1 << 20  # header section read from a message file
DEFAULT_MAX_SIGNATURES = 16

# mox's default: all addressing fields, date and subject, message-referencing fields
# and parsing instructions (RFC 6376 5.4.1 recommendations).
DEFAULT_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "References",
    "In-Reply-To",
    "Subject",
    "Date",
    "Message-Id",
    "Content-Type",
)


class Status(StrEnum):
    """Result of one signature (RFC 8601 2.7.1)."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"


class TXTResolver(Protocol):
    """What DKIM and ARC need from a resolver: app.dns.resolver.Resolver fits."""

    async def lookup_txt(self, name: str) -> Answer[str]: ...


@dataclass(frozen=True, slots=True)
class DKIMResult:
    """The outcome for one DKIM-Signature field.

    ``trusted`` is what DMARC should use: pass, not rsa-sha1, no l=, From signed and
    the message has exactly one From field. ``authentic`` is the DNSSEC status of the
    key record. ``header_b`` is the start of b= for Authentication-Results (RFC 6008).
    """

    status: Status
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    identity: str = ""
    authentic: bool = False
    body_length_limited: bool = False
    covers_from: bool = False
    reason: str = ""
    trusted: bool = False
    testing: bool = False
    key_bits: int = 0
    header_b: str = ""


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """Result of fetching a key record: ``record`` is set when ``status`` is PASS."""

    status: Status
    name: str
    record: KeyRecord | None = None
    txt: str = ""
    authentic: bool = False
    reason: str = ""


async def lookup_key(resolver: TXTResolver, selector: str, domain: str) -> KeyLookup:
    """Fetch and parse ``<selector>._domainkey.<domain>`` (RFC 6376 3.6.2.1)."""
    name = f"{selector}._domainkey.{domain}"
    try:
        answer = await resolver.lookup_txt(name)
    except NotFound as e:
        # RFC 6376 6.1.2: no key record is PERMFAIL (a new key that has not yet
        # propagated shows up the same way, but the RFC is clear).
        return KeyLookup(Status.PERMERROR, name, authentic=e.authentic, reason="no key record")
    except InvalidName:
        return KeyLookup(Status.PERMERROR, name, reason="invalid key record name")
    except DNSError as e:
        return KeyLookup(Status.TEMPERROR, name, reason=f"key lookup: {e.reason or e}")
    found: list[tuple[KeyRecord, str]] = []
    problem = ""
    for txt in answer.records:
        try:
            found.append((parse_key_record(txt), txt))
        except NotADKIMRecord:
            continue  # RFC 6376 3.6.1 v=: records of other versions are ignored
        except TagError as e:
            problem = f"invalid key record: {e}"  # RFC 6376 6.1.2: PERMFAIL
    if len(found) > 1:
        # RFC 6376 3.6.2.2 leaves multiple records undefined; mox calls it temporary.
        return KeyLookup(
            Status.TEMPERROR, name, authentic=answer.authentic, reason="multiple key records"
        )
    if not found:
        return KeyLookup(
            Status.PERMERROR, name, authentic=answer.authentic, reason=problem or "no key record"
        )
    record, txt = found[0]
    return KeyLookup(Status.PASS, name, record, txt, answer.authentic)


# ---------------------------------------------------------------------------
# Verification


@dataclass(slots=True)
class _Context:
    """Per-message state shared by the signatures of one message."""

    headers: list[RawHeader]
    body: bytes
    from_count: int
    executor: concurrent.futures.Executor | None
    # A large spooled message: its body is hashed from the file, never held whole.
    body_file: tuple[Path, int] | None = None
    body_hashes: dict[tuple[Canon, str, int | None], bytes | BodyTooShort] = field(
        default_factory=dict
    )

    async def body_hash(self, canon: Canon, hash_name: str, length: int | None) -> bytes:
        key = (canon, hash_name, length)
        if key not in self.body_hashes:
            value: bytes | BodyTooShort
            try:
                if self.body_file is not None:
                    loop = asyncio.get_running_loop()
                    path, offset = self.body_file
                    value = await loop.run_in_executor(
                        self.executor, _file_body_hash, path, offset, canon, hash_name, length
                    )
                elif self.executor is not None and len(self.body) > OFFLOAD_THRESHOLD:
                    loop = asyncio.get_running_loop()
                    value = await loop.run_in_executor(
                        self.executor, body_hash, self.body, canon, hash_name, length
                    )
                else:
                    value = body_hash(self.body, canon, hash_name, length)
            except BodyTooShort as e:
                value = e
            self.body_hashes[key] = value
        result = self.body_hashes[key]
        if isinstance(result, BodyTooShort):
            raise result
        return result


def _base(sig: Signature, ctx: _Context) -> DKIMResult:
    nsigned = sum(1 for h in sig.headers if h.lower() == "from")
    return DKIMResult(
        Status.NEUTRAL,
        domain=sig.domain,
        selector=sig.selector,
        algorithm=sig.algorithm.value,
        identity=sig.identity if sig.identity is not None else "@" + sig.domain,
        body_length_limited=sig.length is not None,
        # Every From field must be signed, or a second one could be shown instead.
        covers_from=ctx.from_count >= 1 and nsigned >= ctx.from_count,
        header_b=sig.b_text[:12],
    )


def _fields(result: DKIMResult, status: Status, reason: str, **kw: Any) -> DKIMResult:
    return replace(result, status=status, reason=reason, **kw)


def _check_params(sig: Signature, base: DKIMResult, now: float) -> DKIMResult | None:
    """Checks on the signature alone; a result when it cannot pass."""
    if not any(h.lower() == "from" for h in sig.headers):
        # RFC 6376 6.1.1: h= without From is PERMFAIL (From field not signed).
        return _fields(base, Status.PERMERROR, "from field not signed")
    if sig.expiration is not None and sig.expiration < now:
        return _fields(base, Status.PERMERROR, "signature expired")  # RFC 6376 6.1.1
    return None


def check_key_record(sig: Signature, record: KeyRecord) -> str:
    """RFC 6376 6.1.2 checks of the key record against the signature; "" if fine."""
    if record.hashes and sig.algorithm.hash_name not in record.hashes:
        return f"key record does not allow {sig.algorithm.hash_name}"  # h=
    if record.key_type != sig.algorithm.key_type:
        return f"key type {record.key_type} does not match a={sig.algorithm}"  # k=
    if record.key is None:
        return "key revoked"  # RFC 6376 3.6.1 p= empty
    if record.key_type == "rsa" and record.bits < MIN_RSA_BITS:
        return f"rsa key of {record.bits} bits is too small (RFC 8301 3.2)"
    if not record.allows_service("email"):
        return "key not for email"  # RFC 6376 3.6.1 s=
    if record.strict_identity and identity_domain(sig.identity, sig.domain) != sig.domain:
        return "key requires i= domain to equal d="  # RFC 6376 3.6.1 t=s
    return ""


def header_data(headers: Sequence[RawHeader], sig_header: RawHeader, sig: Signature) -> bytes:
    """The octets signed: the h= fields then the signature field without b= value
    and without its final CRLF (RFC 6376 3.7)."""
    selected = select_headers(headers, sig.headers)
    parts = [canon_header(h.raw, sig.header_canon) for h in selected]
    own = without_b_value(sig_header.raw)
    if sig.header_canon is Canon.RELAXED:
        own = relaxed_header(own)
    parts.append(own.removesuffix(b"\r\n"))
    return b"".join(parts)


def verify_signature_bytes(
    key: PublicKey, algorithm: Algorithm, signature: bytes, data: bytes
) -> bool:
    """Check ``signature`` over ``data`` with the key (RFC 6376 3.3, RFC 8463 3)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding

    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            # RFC 8463 3: PureEdDSA over the SHA-256 hash of the data.
            key.verify(signature, hashlib.sha256(data).digest())
        else:
            h: hashes.HashAlgorithm = (
                hashes.SHA1() if algorithm.hash_name == "sha1" else hashes.SHA256()
            )
            key.verify(signature, data, padding.PKCS1v15(), h)
    except InvalidSignature:
        return False
    return True


async def _verify_with_key(
    ctx: _Context, header: RawHeader, sig: Signature, base: DKIMResult, found: KeyLookup
) -> DKIMResult:
    base = _fields(base, base.status, "", authentic=found.authentic)
    if found.record is None:
        return _fields(base, found.status, found.reason)
    record = found.record
    base = _fields(base, base.status, "", testing=record.testing, key_bits=record.bits)
    problem = check_key_record(sig, record)
    if problem:
        return _fields(base, Status.PERMERROR, problem)
    assert record.key is not None
    data = header_data(ctx.headers, header, sig)
    # RFC 6376 6.1.3: the order of body and header checks is free; checking the
    # signature first avoids hashing the body of a forgery.
    if not verify_signature_bytes(record.key, sig.algorithm, sig.signature, data):
        return _testing(base, record, "signature did not verify")
    try:
        bh = await ctx.body_hash(sig.body_canon, sig.algorithm.hash_name, sig.length)
    except BodyTooShort as e:
        return _testing(base, record, str(e))
    if bh != sig.body_hash:
        return _testing(base, record, "body hash did not verify")
    return _trust(_fields(base, Status.PASS, ""), ctx)


def _testing(base: DKIMResult, record: KeyRecord, reason: str) -> DKIMResult:
    # RFC 6376 3.6.1 t=y: a failure from a domain in testing mode counts as unsigned.
    status = Status.NONE if record.testing else Status.FAIL
    return _fields(base, status, reason + (" (key in testing mode)" if record.testing else ""))


def _trust(result: DKIMResult, ctx: _Context) -> DKIMResult:
    reasons = []
    if result.algorithm == Algorithm.RSA_SHA1:
        reasons.append("rsa-sha1 is not trusted (RFC 8301 3.1)")
    if result.body_length_limited:
        reasons.append("l= leaves part of the body unsigned")
    if ctx.from_count != 1:
        reasons.append(f"message has {ctx.from_count} from fields")
    elif not result.covers_from:
        reasons.append("from field not covered")
    return _fields(result, result.status, "; ".join(reasons), trusted=not reasons)


def _file_body_hash(
    path: Path, offset: int, canon: Canon, hash_name: str, length: int | None
) -> bytes:
    """Body hash of a message file from ``offset`` on, read in chunks (executor thread)."""
    hasher = BodyHasher(canon, hash_name, length)
    with open(path, "rb") as f:
        f.seek(offset)
        while chunk := f.read(FILE_CHUNK):
            hasher.feed(chunk)
    return hasher.digest()


def _read_head(path: Path) -> tuple[bytes, int]:
    """The header section of a message file (up to :data:`MAX_HEAD`) and the body offset."""
    with open(path, "rb") as f:
        head = f.read(MAX_HEAD)
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = head.find(sep)
        if i >= 0:
            return head[: i + len(sep)], i + len(sep)
    return head, len(head)


async def verify(
    resolver: TXTResolver,
    message: bytes | Path,
    *,
    now: float | None = None,
    executor: concurrent.futures.Executor | None = None,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> list[DKIMResult]:
    """Verify every DKIM-Signature field of ``message``, top to bottom.

    ``message`` may be a file: its header is read and its body hashed in chunks
    (in ``executor``), so a large message never sits in memory. An empty list means
    the message is not signed. Signatures beyond
    ``max_signatures`` are reported as neutral without DNS lookups. Bodies over
    :data:`OFFLOAD_THRESHOLD` are hashed in ``executor`` when it is given.
    """
    now = time.time() if now is None else now
    body_file = None
    if isinstance(message, Path):
        path = message
        loop = asyncio.get_running_loop()
        head, file_offset = await loop.run_in_executor(executor, _read_head, path)
        body_file = (path, file_offset)
        message = head
    message = normalize_line_endings(message)
    headers, body_offset = split_message(message)
    ctx = _Context(
        headers,
        message[body_offset:] if body_file is None else b"",
        sum(1 for h in headers if h.lname == "from"),
        executor,
        body_file,
    )
    sig_headers = [h for h in headers if h.lname == "dkim-signature"]
    results: list[DKIMResult | None] = []
    pending: list[tuple[int, RawHeader, Signature, DKIMResult]] = []
    for n, header in enumerate(sig_headers):
        if n >= max_signatures:
            results.append(
                DKIMResult(Status.NEUTRAL, reason=f"not verified: over {max_signatures} signatures")
            )
            continue
        try:
            sig = parse_signature(header.value.decode("utf-8", errors="replace"))
        except TagError as e:
            results.append(DKIMResult(Status.PERMERROR, reason=f"malformed signature: {e}"))
            continue
        base = _base(sig, ctx)
        early = _check_params(sig, base, now)
        results.append(early)
        if early is None:
            pending.append((n, header, sig, base))
    lookups = await asyncio.gather(
        *(lookup_key(resolver, sig.selector, sig.domain) for _, _, sig, _ in pending)
    )
    for (n, header, sig, base), found in zip(pending, lookups, strict=True):
        results[n] = await _verify_with_key(ctx, header, sig, base, found)
    out = [r for r in results if r is not None]
    for r in out:
        log.debug(
            "dkim result",
            extra={
                "status": r.status,
                "domain": r.domain,
                "selector": r.selector,
                "reason": r.reason,
            },
        )
    return out


# ---------------------------------------------------------------------------
# Signing


class SignError(ValueError):
    """The message or a selector cannot be signed."""


@dataclass(frozen=True, slots=True)
class Selector:
    """A key to sign with for ``domain`` (d=). ``algorithm`` defaults to the one of
    the key; ``expiration`` is seconds after signing (x=); ``oversign`` lists every
    header once more than present, so no further instance can be added."""

    domain: str
    selector: str
    private_key: PrivateKey
    algorithm: Algorithm | None = None
    headers: tuple[str, ...] = DEFAULT_HEADERS
    oversign: bool = True
    expiration: int | None = None


def _algorithm(sel: Selector) -> Algorithm:
    natural = (
        Algorithm.ED25519_SHA256 if key_type(sel.private_key) == "ed25519" else Algorithm.RSA_SHA256
    )
    if sel.algorithm is None:
        return natural
    if sel.algorithm is Algorithm.RSA_SHA1:
        raise SignError("rsa-sha1 must not be used for signing (RFC 8301 3.1)")
    if sel.algorithm is not natural:
        raise SignError(f"algorithm {sel.algorithm} does not match the {natural} key")
    return natural


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data`` (RFC 6376 3.3 rsa-sha256, RFC 8463 3 ed25519-sha256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(hashlib.sha256(data).digest())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def fold(tokens: Sequence[tuple[str, str]], tail: str = "", width: int = 78) -> str:
    """Join (separator, text) tokens, folding with CRLF+SP before a token that would
    make the line longer than ``width``; ``tail`` (base64) fills the lines left."""
    out: list[str] = []
    line = 0
    for sep, text in tokens:
        if out and line + len(sep) + len(text) > width:
            out.append("\r\n ")
            line = 1
            sep = ""
        out.append(sep + text)
        line += len(sep) + len(text)
    while tail:
        room = width - line
        if room < 8:
            out.append("\r\n ")
            line, room = 1, width - 1
        out.append(tail[:room])
        line += len(tail[:room])
        tail = tail[room:]
    return "".join(out)


def signed_header_names(
    headers: Sequence[RawHeader], names: Sequence[str], oversign: bool
) -> list[str]:
    """h= for a message: each name once per instance, plus once more when sealing."""
    out: list[str] = []
    for name in names:
        count = sum(1 for h in headers if h.lname == name.lower())
        out.extend([name] * (count + 1 if oversign else max(count, 1)))
    return out


def signature_field(
    name: str, tags: Sequence[tuple[str, str]], h: Sequence[str], b: str = ""
) -> str:
    """A folded signature header field: ``tags``, then h= (if any), then b=."""
    tokens: list[tuple[str, str]] = [("", f"{name}:")]
    tokens += [(" ", f"{k}={v};") for k, v in tags]
    for i, n in enumerate(h):
        last = i == len(h) - 1
        tokens.append(
            (" " if i == 0 else "", ("h=" if i == 0 else "") + n + (";" if last else ":"))
        )
    tokens.append((" ", "b="))
    return fold(tokens, b) + "\r\n"


def sign(
    message: bytes | Path, *, selectors: Sequence[Selector], now: float | None = None
) -> bytes:
    """DKIM-Signature fields (relaxed/relaxed) to prepend to ``message``, one per
    selector, each ending in CRLF. Raises :class:`SignError`.

    ``message`` may be a file, whose body is hashed in chunks (call from a thread)."""
    now = time.time() if now is None else now
    if isinstance(message, Path):
        head, offset = _read_head(message)
        headers, _ = split_message(normalize_line_endings(head))
        bh = _file_body_hash(message, offset, Canon.RELAXED, "sha256", None)
    else:
        message = normalize_line_endings(message)
        headers, body_offset = split_message(message)
        bh = body_hash(message[body_offset:], Canon.RELAXED, "sha256")
    nfrom = sum(1 for h in headers if h.lname == "from")
    if nfrom != 1:
        raise SignError(f"message has {nfrom} from fields, need exactly 1")  # RFC 6376 5.4
    out: list[str] = []
    for sel in selectors:
        algorithm = _algorithm(sel)
        if not any(h.lower() == "from" for h in sel.headers):
            raise SignError("the from field must be signed (RFC 6376 5.4)")
        t = int(now)
        tags = [
            ("v", "1"),
            ("a", algorithm.value),
            ("c", "relaxed/relaxed"),
            ("d", sel.domain.lower().rstrip(".")),
            ("s", sel.selector),
            ("t", str(t)),
        ]
        if sel.expiration is not None:
            tags.append(("x", str(t + sel.expiration)))
        h = signed_header_names(headers, sel.headers, sel.oversign)
        tags.append(("bh", _b64(bh)))
        # RFC 6376 3.7: the signature covers this field with an empty b= value.
        raw = signature_field("DKIM-Signature", tags, h).encode()
        data = _sign_data(headers, raw, h)
        b = _b64(sign_bytes(sel.private_key, data))
        out.append(signature_field("DKIM-Signature", tags, h, b))
    return "".join(out).encode()


def _sign_data(headers: Sequence[RawHeader], own: bytes, h: Sequence[str]) -> bytes:
    selected = select_headers(headers, h)
    parts = [relaxed_header(x.raw) for x in selected]
    parts.append(relaxed_header(without_b_value(own)).removesuffix(b"\r\n"))
    return b"".join(parts)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def selectors_for_domain(
    domain: str, configured: Mapping[str, Sequence[Selector]]
) -> Sequence[Selector]:
    """Selectors of the closest configured domain at or above ``domain`` (as mox does:
    a message from sub.example.com is signed by example.com's keys when sub.example.com
    has none). Empty when no ancestor is configured."""
    table = {d.lower().rstrip("."): v for d, v in configured.items()}
    name = domain.lower().rstrip(".")
    while name:
        if name in table:
            return table[name]
        _, _, name = name.partition(".")
    return ()
