"""ARC chain validation (RFC 8617 5.2).

An ARC set is one ARC-Authentication-Results (AAR), ARC-Message-Signature (AMS) and
ARC-Seal (AS) with the same instance i=. The chain passes when the sets are numbered
1..N without gaps or duplicates, the seals' cv= values are consistent (none for 1,
pass above), the newest AMS verifies (like a DKIM signature) and every AS verifies
over all sets up to its own. Keys are DKIM keys and are looked up like them.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.mailauth.dkim import (
    TXTResolver,
    check_key_record,
    header_data,
    lookup_key,
    verify_signature_bytes,
)
from app.mailauth.dkim_canon import (
    BodyTooShort,
    Canon,
    RawHeader,
    body_hash,
    normalize_line_endings,
    relaxed_header,
    split_message,
)
from app.mailauth.dkim_sig import (
    Algorithm,
    Signature,
    TagError,
    parse_algorithm,
    parse_base64,
    parse_canonicalization,
    parse_domain,
    parse_selector,
    parse_tags,
    parse_timestamp,
    remove_fws,
    without_b_value,
)

log = logging.getLogger(__name__)

MAX_INSTANCE = 50  # RFC 8617 4.2.1: i= is 1..50
_AAR_INSTANCE = re.compile(r"\s*i\s*=\s*(\d+)\s*(?:;|$)")
_NAMES = {
    "arc-authentication-results": "aar",
    "arc-message-signature": "ams",
    "arc-seal": "as",
}


class ARCStatus(StrEnum):
    """Chain validation status (RFC 8617 4.4)."""

    NONE = "none"
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class ARCResult:
    """``instances`` is N, the number of sets; ``failed_instance`` the set that made
    the chain fail (0 if none or not attributable); ``oldest_pass`` the lowest
    instance whose AMS and all newer ones verify (0 when all do, RFC 8617 5.2 step 5)."""

    status: ARCStatus
    instances: int = 0
    failed_instance: int = 0
    reason: str = ""
    oldest_pass: int = 0


class _Invalid(Exception):
    def __init__(self, instance: int, reason: str) -> None:
        super().__init__(reason)
        self.instance = instance
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Set:
    instance: int
    aar: RawHeader
    ams: RawHeader
    seal: RawHeader
    ams_sig: Signature
    seal_sig: Signature
    cv: str


def _instance(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise TagError(f"invalid instance i={value!r}")
    n = int(value)
    if not 1 <= n <= MAX_INSTANCE:
        raise TagError(f"instance i={n} out of range 1..{MAX_INSTANCE}")
    return n


def _common(tags: dict[str, str], required: Sequence[str]) -> tuple[Algorithm, bytes, str, str]:
    for t in required:
        if t not in tags:
            raise TagError(f"missing required tag {t}=")
    algorithm = parse_algorithm(tags["a"])
    if algorithm is Algorithm.RSA_SHA1:
        raise TagError("rsa-sha1 is not allowed (RFC 8301)")
    if "t" in tags:
        parse_timestamp(tags["t"], "t")
    return (
        algorithm,
        parse_base64(tags["b"], "b"),
        parse_domain(tags["d"]),
        parse_selector(tags["s"]),
    )


def _parse_ams(value: str) -> Signature:
    """RFC 8617 4.1.2: DKIM-Signature syntax with i= the instance and no v=."""
    tags = parse_tags(value)
    algorithm, b, d, s = _common(tags, ("i", "a", "b", "bh", "d", "h", "s"))
    bh = parse_base64(tags["bh"], "bh")
    if len(bh) != 32:
        raise TagError("bh= is not a sha256 digest")
    # Without c= the suite (ams_fields_c_na) expects relaxed headers, unlike DKIM's
    # simple/simple default; RFC 8617 does not say, and ARC signers all use relaxed.
    hcanon, bcanon = parse_canonicalization(tags.get("c", "relaxed/relaxed"))
    # Empty names select nothing; the suite accepts "h=" and "a::b".
    names = tuple(n for n in (remove_fws(x) for x in tags["h"].split(":")) if n)
    if any(n.lower() == "arc-seal" for n in names):
        raise TagError("h= includes ARC-Seal")  # RFC 8617 4.1.2
    return Signature(algorithm, b, bh, hcanon, bcanon, d, s, names, None, None, None, None, "")


def _parse_seal(value: str) -> tuple[Signature, str]:
    """RFC 8617 4.1.3: a, b, cv, d, i, s, t; h= is not allowed."""
    tags = parse_tags(value)
    algorithm, b, d, s = _common(tags, ("i", "a", "b", "cv", "d", "s"))
    if "h" in tags:
        raise TagError("ARC-Seal must not have h=")
    cv = tags["cv"].lower()
    if cv not in ("none", "pass", "fail"):
        raise TagError(f"invalid cv={tags['cv']!r}")
    sig = Signature(
        algorithm, b, b"", Canon.RELAXED, Canon.RELAXED, d, s, (), None, None, None, None, ""
    )
    return sig, cv


def _collect(headers: Sequence[RawHeader]) -> list[_Set]:
    """Group the ARC fields into sets 1..N; raises :class:`_Invalid`."""
    found: dict[int, dict[str, RawHeader]] = {}
    ams: dict[int, Signature] = {}
    seals: dict[int, tuple[Signature, str]] = {}
    for h in headers:
        kind = _NAMES.get(h.lname)
        if kind is None:
            continue
        value = h.value.decode("utf-8", errors="replace")
        try:
            if kind == "aar":
                m = _AAR_INSTANCE.match(value)
                if not m:
                    raise TagError("ARC-Authentication-Results without i=")
                n = _instance(m.group(1))
            else:
                tags = parse_tags(value)
                n = _instance(tags.get("i", ""))
                if kind == "ams":
                    ams[n] = _parse_ams(value)
                else:
                    seals[n] = _parse_seal(value)
        except TagError as e:
            raise _Invalid(0, f"invalid {h.name}: {e}") from None
        slot = found.setdefault(n, {})
        if kind in slot:
            raise _Invalid(n, f"more than one {h.name} for i={n}")  # RFC 8617 5.2 step 3
        slot[kind] = h
    sets = []
    for n in range(1, len(found) + 1):
        slot = found.get(n, {})
        if len(slot) != 3:
            raise _Invalid(n, f"incomplete or missing arc set i={n}")
        seal_sig, cv = seals[n]
        sets.append(_Set(n, slot["aar"], slot["ams"], slot["as"], ams[n], seal_sig, cv))
    return sets


async def _verify_sig(resolver: TXTResolver, sig: Signature, data: bytes) -> str:
    """ "" when ``sig`` over ``data`` verifies with its DKIM key, else why not."""
    found = await lookup_key(resolver, sig.selector, sig.domain)
    if found.record is None:
        return found.reason
    problem = check_key_record(sig, found.record)
    if problem:
        return problem
    assert found.record.key is not None
    if not verify_signature_bytes(found.record.key, sig.algorithm, sig.signature, data):
        return "signature did not verify"
    return ""


async def _verify_ams(
    resolver: TXTResolver, headers: Sequence[RawHeader], body: bytes, s: _Set
) -> str:
    try:
        bh = body_hash(body, s.ams_sig.body_canon, "sha256")
    except BodyTooShort as e:  # pragma: no cover - AMS has no l=
        return str(e)
    if bh != s.ams_sig.body_hash:
        return "body hash did not verify"
    return await _verify_sig(resolver, s.ams_sig, header_data(headers, s.ams, s.ams_sig))


def seal_data(sets: Sequence[_Set], upto: int) -> bytes:
    """RFC 8617 5.1.1: AAR, AMS, AS of sets 1..upto, relaxed, own AS without b=."""
    parts = []
    for s in sets[:upto]:
        parts += [relaxed_header(s.aar.raw), relaxed_header(s.ams.raw)]
        if s.instance < upto:
            parts.append(relaxed_header(s.seal.raw))
    own = relaxed_header(without_b_value(sets[upto - 1].seal.raw)).removesuffix(b"\r\n")
    return b"".join(parts) + own


async def verify_arc(resolver: TXTResolver, message: bytes) -> ARCResult:
    """Validate the ARC chain of ``message`` (RFC 8617 5.2)."""
    message = normalize_line_endings(message)
    headers, body_offset = split_message(message)
    if not any(h.lname in _NAMES for h in headers):
        return ARCResult(ARCStatus.NONE)
    try:
        sets = _collect(headers)
    except _Invalid as e:
        return ARCResult(ARCStatus.FAIL, 0, e.instance, e.reason)
    n = len(sets)
    if sets[-1].cv == "fail":
        # RFC 8617 5.2 step 2: a chain already marked failed stays failed.
        return ARCResult(ARCStatus.FAIL, n, n, "newest seal has cv=fail")
    for s in sets:
        want = "none" if s.instance == 1 else "pass"
        if s.cv != want:  # RFC 8617 5.2 step 3 / 4.1.3
            return ARCResult(ARCStatus.FAIL, n, s.instance, f"cv={s.cv} at i={s.instance}")
    body = message[body_offset:]
    problem = await _verify_ams(resolver, headers, body, sets[-1])
    if problem:  # RFC 8617 5.2 step 4
        return ARCResult(ARCStatus.FAIL, n, n, f"ams i={n}: {problem}")
    oldest = 0
    for s in reversed(sets[:-1]):  # RFC 8617 5.2 step 5
        if await _verify_ams(resolver, headers, body, s):
            oldest = s.instance + 1
            break
    for s in reversed(sets):  # RFC 8617 5.2 step 6
        problem = await _verify_sig(resolver, s.seal_sig, seal_data(sets, s.instance))
        if problem:
            return ARCResult(ARCStatus.FAIL, n, s.instance, f"seal i={s.instance}: {problem}")
    return ARCResult(ARCStatus.PASS, n, 0, "", oldest)
