"""Tag lists and DKIM-Signature fields (RFC 6376 3.2, 3.5), shared with ARC.

Parsing is strict where a lax reading would let a signature claim more than it
covers (duplicate tags, bad base64, a bad domain) and lenient only about
whitespace, which canonicalisation makes irrelevant anyway.
"""

import base64
import binascii
import re
from dataclasses import dataclass
from enum import StrEnum

from app.dns.domain import Domain, DomainError
from app.mailauth.dkim_canon import Canon

_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")  # RFC 6376 3.2 tag-name
_FWS = re.compile(r"[ \t\r\n]+")
# RFC 6376 3.2 VALCHAR is %x21-3A / %x3C-7E; whitespace may occur inside a value.
# Non-ASCII is allowed through for i= and d= in EAI messages (RFC 8616 4).
_BAD_VALCHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f;]")
_SELECTOR_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?\Z")
_LDH_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\Z")


class TagError(ValueError):
    """A tag list, or one of its values, is not valid."""


def parse_tags(text: str) -> dict[str, str]:
    """Parse ``tag=value; ...`` into a dict with surrounding whitespace removed.

    RFC 6376 3.2: names are case-sensitive, a duplicate name invalidates the whole
    list, a trailing ";" is allowed but an empty item elsewhere (";;") is not.
    """
    tags: dict[str, str] = {}
    items = text.split(";")
    for i, item in enumerate(items):
        if not item.strip(" \t\r\n"):
            if i == len(items) - 1 and i > 0:
                continue
            raise TagError("empty tag list item")
        name, eq, value = item.partition("=")
        name = name.strip(" \t\r\n")
        if not eq:
            raise TagError(f"tag {name!r} without '='")
        if not _TAG_NAME.match(name):
            raise TagError(f"invalid tag name {name!r}")
        if name in tags:
            raise TagError(f"duplicate tag {name!r}")
        value = value.strip(" \t\r\n")
        if _BAD_VALCHAR.search(value):
            raise TagError(f"invalid character in value of tag {name!r}")
        tags[name] = value
    return tags


def remove_fws(value: str) -> str:
    return _FWS.sub("", value)


def parse_base64(value: str, tag: str) -> bytes:
    """Decode a base64 value that may contain folding whitespace (RFC 6376 3.5 b=)."""
    compact = remove_fws(value)
    if not compact:
        raise TagError(f"{tag}= is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise TagError(f"{tag}= is not valid base64") from None


def parse_domain(value: str, tag: str = "d") -> str:
    """A signing domain in lower-case A-label form; at least two labels (RFC 6376
    3.5 d= is ``domain-name``, which is sub-domain 1*("." sub-domain))."""
    text = value.strip()
    if not text:
        raise TagError(f"{tag}= is empty")
    try:
        d = Domain.parse(text) if not text.isascii() else None
    except DomainError as e:
        raise TagError(f"{tag}= {e}") from None
    ascii_name = d.ascii if d is not None else text.lower()
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LDH_LABEL.match(lab) for lab in labels):
        raise TagError(f"{tag}= is not a valid domain name: {value!r}")
    return ascii_name


def parse_selector(value: str) -> str:
    """RFC 6376 3.1: a selector is one or more dot-separated sub-domains."""
    text = value.strip()
    if not text:
        raise TagError("s= is empty")
    labels = text.split(".")
    if not all(_SELECTOR_LABEL.match(lab) for lab in labels):
        raise TagError(f"s= is not a valid selector: {value!r}")
    return text.lower()


def parse_timestamp(value: str, tag: str) -> int:
    """RFC 6376 3.5 t=/x=: 1*12DIGIT."""
    if not value.isdigit() or not value.isascii() or len(value) > 12:
        raise TagError(f"{tag}= is not a valid timestamp: {value!r}")
    return int(value)


def parse_header_list(value: str) -> tuple[str, ...]:
    """RFC 6376 3.5 h=: field names separated by ":" with optional FWS."""
    names = tuple(remove_fws(n) for n in value.split(":"))
    if not names or any(not n for n in names):
        raise TagError("h= contains an empty field name")
    for n in names:
        if any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in n):
            raise TagError(f"h= contains an invalid field name {n!r}")
    return names


class Algorithm(StrEnum):
    """Signing algorithms (RFC 6376 3.3, RFC 8463 3). rsa-sha1 is parsed so it can
    be reported, but it is never trusted (RFC 8301 3.1)."""

    RSA_SHA256 = "rsa-sha256"
    ED25519_SHA256 = "ed25519-sha256"
    RSA_SHA1 = "rsa-sha1"

    @property
    def key_type(self) -> str:
        return self.value.split("-", 1)[0]

    @property
    def hash_name(self) -> str:
        return self.value.split("-", 1)[1]


def parse_algorithm(value: str) -> Algorithm:
    try:
        return Algorithm(value.strip().lower())
    except ValueError:
        raise TagError(f"unknown algorithm a={value!r}") from None


def parse_canonicalization(value: str) -> tuple[Canon, Canon]:
    """RFC 6376 3.5 c=: ``header[/body]``; body defaults to simple."""
    head, _, body = value.strip().lower().partition("/")
    try:
        return Canon(head), Canon(body or "simple")
    except ValueError:
        raise TagError(f"unknown canonicalization c={value!r}") from None


@dataclass(frozen=True, slots=True)
class Signature:
    """A parsed DKIM-Signature field (RFC 6376 3.5)."""

    algorithm: Algorithm
    signature: bytes  # b=
    body_hash: bytes  # bh=
    header_canon: Canon
    body_canon: Canon
    domain: str  # d=, lower-case A-labels
    selector: str  # s=
    headers: tuple[str, ...]  # h=, as written
    identity: str | None  # i=, None when absent
    length: int | None  # l=
    timestamp: int | None  # t=
    expiration: int | None  # x=
    b_text: str  # b= as written, FWS removed (for header.b in Authentication-Results)


def parse_signature(value: str) -> Signature:
    """Parse the value of a DKIM-Signature field; raises :class:`TagError`."""
    tags = parse_tags(value)
    # RFC 6376 3.5: v, a, b, bh, d, h and s are required; 6.1.1: else PERMFAIL.
    for required in ("v", "a", "b", "bh", "d", "h", "s"):
        if required not in tags:
            raise TagError(f"missing required tag {required}=")
    if tags["v"] != "1":
        raise TagError(f"unsupported version v={tags['v']!r}")  # RFC 6376 6.1.1
    algorithm = parse_algorithm(tags["a"])
    signature = parse_base64(tags["b"], "b")
    bh = parse_base64(tags["bh"], "bh")
    want = 20 if algorithm.hash_name == "sha1" else 32
    if len(bh) != want:
        raise TagError(f"bh= has {len(bh)} octets, {algorithm.hash_name} needs {want}")
    hcanon, bcanon = parse_canonicalization(tags.get("c", "simple/simple"))
    domain = parse_domain(tags["d"])
    headers = parse_header_list(tags["h"])
    identity = tags.get("i")
    if identity is not None:
        _check_identity(identity, domain)
    length = None
    if "l" in tags:
        if not tags["l"].isdigit() or not tags["l"].isascii() or len(tags["l"]) > 76:
            raise TagError(f"l= is not a number: {tags['l']!r}")
        length = int(tags["l"])
    if "q" in tags:
        methods = [m.strip().lower() for m in tags["q"].split(":")]
        if not any(m == "dns/txt" or m.startswith("dns/txt") for m in methods):
            raise TagError("q= has no dns/txt query method")  # RFC 6376 3.5 q=
    timestamp = parse_timestamp(tags["t"], "t") if "t" in tags else None
    expiration = parse_timestamp(tags["x"], "x") if "x" in tags else None
    if timestamp is not None and expiration is not None and expiration <= timestamp:
        # RFC 6376 3.5 x=: "the value of the x= tag MUST be greater than the value
        # of the t= tag if both are present".
        raise TagError("x= is not after t=")
    return Signature(
        algorithm=algorithm,
        signature=signature,
        body_hash=bh,
        header_canon=hcanon,
        body_canon=bcanon,
        domain=domain,
        selector=parse_selector(tags["s"]),
        headers=headers,
        identity=identity,
        length=length,
        timestamp=timestamp,
        expiration=expiration,
        b_text=remove_fws(tags["b"]),
    )


def _check_identity(identity: str, domain: str) -> None:
    """RFC 6376 3.5 i=: the domain part must be d= or a subdomain of it (6.1.1)."""
    _, at, idomain = identity.rpartition("@")
    if not at:
        raise TagError(f"i= has no '@': {identity!r}")
    try:
        idom = parse_domain(idomain, "i") if idomain.count(".") else idomain.lower()
    except TagError:
        raise TagError(f"i= has an invalid domain: {identity!r}") from None
    if idom != domain and not idom.endswith("." + domain):
        raise TagError(f"i= domain {idom!r} is not within d= {domain!r}")


def identity_domain(identity: str | None, domain: str) -> str:
    if identity is None:
        return domain
    return identity.rpartition("@")[2].lower()


def without_b_value(raw: bytes) -> bytes:
    """The field with the value of its b= tag (and the whitespace around that value)
    removed, as hashed by signer and verifier (RFC 6376 3.7)."""
    name, colon, value = raw.partition(b":")
    parts = value.split(b";")
    for i, part in enumerate(parts):
        tag, eq, _ = part.partition(b"=")
        if eq and tag.strip(b" \t\r\n") == b"b":
            parts[i] = part[: len(tag) + 1]
    return name + colon + b";".join(parts)
