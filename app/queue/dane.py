"""DANE for SMTP (RFC 7672, RFC 6698, RFC 7671): TLSA gathering and verification.

DANE applies to an MX host only when the MX (or implicit MX) and address lookups
were DNSSEC-authentic (RFC 7672 2.2). Then TLSA records at ``_25._tcp.<host>``
(the CNAME-expanded host first when that was authentic, RFC 7672 3.2.2) decide:

* no records, or a non-authentic answer: no DANE for this host;
* a lookup failure (SERVFAIL, timeout): the host cannot be used now, a temporary
  failure (RFC 7672 2.2.1) — never a silent downgrade;
* records present: STARTTLS is required. The usable ones (DANE-TA(2) and
  DANE-EE(3), selector 0/1, matching 0/1/2 with the right digest length, RFC 7672
  3.1.3) must authenticate the server; when none is usable, TLS is still required
  but not verified (RFC 7672 2.2).

Verification (:func:`verify`):

* DANE-EE(3): the leaf certificate (or its public key) matches; names and
  validity dates are not checked (RFC 7672 3.1.1).
* DANE-TA(2): a certificate of the presented chain matches; the chain must then
  verify from the leaf to that trust anchor with a name from the allowed names
  (RFC 7672 3.2.2) and valid dates, checked with ``cryptography``'s X.509
  verifier. The anchor must be in the chain the server sends (RFC 7671 5.2.2
  asks servers to include it).

Peer chain: Python 3.13 has ``SSLObject.get_unverified_chain()``; on 3.11/3.12 the
same method exists on the private ``_sslobj``; when neither is there only the leaf
is available, which supports DANE-EE fully and DANE-TA only when the leaf itself
is the matching certificate (then its chain cannot be checked and it fails).
"""

import datetime
import hashlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.dns.resolver import TLSA, DNSError, NotFound, Resolver
from app.queue.tlsrpt import ResultType

if TYPE_CHECKING:
    from cryptography import x509

USAGE_DANE_TA = 2
USAGE_DANE_EE = 3
SELECTOR_CERT = 0
SELECTOR_SPKI = 1
MATCH_FULL = 0
MATCH_SHA256 = 1
MATCH_SHA512 = 2
_DIGEST_SIZE = {MATCH_SHA256: 32, MATCH_SHA512: 64}
MAX_CNAMES = 10


def record_text(r: TLSA) -> str:
    """Presentation form, as in TLS reports: ``"3 1 1 ab12..."``."""
    return f"{r.usage} {r.selector} {r.mtype} {r.data.hex()}"


def usable(records: Sequence[TLSA]) -> tuple[TLSA, ...]:
    """The records usable for SMTP (RFC 7672 3.1.3, RFC 6698 4.1)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    out = []
    for r in records:
        # PKIX-TA(0)/PKIX-EE(1) are unusable for SMTP (RFC 7672 3.1.3).
        if r.usage not in (USAGE_DANE_TA, USAGE_DANE_EE):
            continue
        if r.selector not in (SELECTOR_CERT, SELECTOR_SPKI):
            continue
        if r.mtype in _DIGEST_SIZE:
            if len(r.data) != _DIGEST_SIZE[r.mtype]:
                continue
        elif r.mtype == MATCH_FULL:
            try:
                if r.selector == SELECTOR_CERT:
                    x509.load_der_x509_certificate(r.data)
                else:
                    serialization.load_der_public_key(r.data)
            except ValueError:
                continue
        else:
            continue
        out.append(r)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class TLSAResult:
    """What the TLSA lookup for one host decided."""

    required: bool  # TLSA records exist (or their lookup failed): TLS is required
    records: tuple[TLSA, ...]  # usable records; empty with required: TLS unverified
    all_records: tuple[TLSA, ...]
    base_domain: str  # the name the records were found under
    error: str = ""  # lookup failure: the host cannot be used now


async def _lookup(resolver: Resolver, host: str) -> tuple[tuple[TLSA, ...], str]:
    """Authentic TLSA records at ``_25._tcp.<host>``, following authentic CNAMEs.

    Returns (records, error); no records when absent or not authentic.
    """
    name = f"_25._tcp.{host}"
    for i in range(MAX_CNAMES + 1):
        if i == MAX_CNAMES:
            return (), "too many cnames for tlsa name"
        try:
            ans = await resolver.lookup_cname(name)
        except NotFound as e:
            if not e.authentic:
                return (), ""
            break
        except DNSError as e:
            return (), f"cname lookup for {name}: {e.reason or 'error'}"
        if not ans.authentic:
            return (), ""
        target = ans.records[0].removesuffix(".") if ans.records else name
        if target == name:
            break
        name = target
    try:
        tans = await resolver.lookup_tlsa(name)
    except NotFound:
        return (), ""
    except DNSError as e:
        return (), f"tlsa lookup for {name}: {e.reason or 'error'}"
    if not tans.authentic:
        return (), ""
    return tans.records, ""


async def gather_tlsa(
    resolver: Resolver, host: str, expanded_host: str, expanded_authentic: bool
) -> TLSAResult:
    """TLSA records for an MX host whose address records were authentic."""
    base = host
    if host != expanded_host and expanded_authentic:
        base = expanded_host  # RFC 7672 3.2.2: the expanded name first
        records, err = await _lookup(resolver, expanded_host)
        if not err and not records:
            base = host
            records, err = await _lookup(resolver, host)
    else:
        records, err = await _lookup(resolver, host)
    if err:
        return TLSAResult(True, (), (), base, err)
    if not records:
        return TLSAResult(False, (), (), base)
    return TLSAResult(True, usable(records), records, base)


def allowed_names(
    *,
    have_mx: bool,
    next_hop: str,
    expanded_next_hop: str,
    expanded_next_hop_authentic: bool,
    host: str,
    base_domain: str,
) -> tuple[str, ...]:
    """Names a DANE-TA verified certificate may carry (RFC 7672 3.2.2)."""
    names = [host, base_domain]
    if not have_mx:
        names.append(next_hop)
        if expanded_next_hop_authentic:
            names.append(expanded_next_hop)
    return tuple(dict.fromkeys(n.lower().removesuffix(".") for n in names if n))


def peer_chain(sslobj: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """DER certificates the server presented, leaf first (see the module doc)."""
    get = getattr(sslobj, "get_unverified_chain", None)
    if get is None:
        inner = getattr(sslobj, "_sslobj", None)
        get = getattr(inner, "get_unverified_chain", None)
    if get is not None:
        chain = get() or []
        out = []
        for cert in chain:
            if isinstance(cert, bytes):
                out.append(cert)
            else:
                out.append(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
        if out:
            return out
    leaf = sslobj.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _matches(r: TLSA, cert: "x509.Certificate", der: bytes) -> bool:
    from cryptography.hazmat.primitives import serialization

    if r.selector == SELECTOR_CERT:
        data = der
    else:
        data = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    if r.mtype == MATCH_SHA256:
        data = hashlib.sha256(data).digest()
    elif r.mtype == MATCH_SHA512:
        data = hashlib.sha512(data).digest()
    return data == r.data


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of DANE verification of one TLS connection."""

    ok: bool
    record: TLSA | None = None
    reason: str = ""
    result_type: ResultType | None = None


def verify(
    records: Sequence[TLSA],
    chain: Sequence[bytes],
    names: Sequence[str],
    now: datetime.datetime | None = None,
) -> Verification:
    """Whether the server's ``chain`` (DER, leaf first) satisfies one of ``records``."""
    from cryptography import x509

    if not chain:
        return Verification(
            False, reason="no certificate", result_type=ResultType.VALIDATION_FAILURE
        )
    try:
        certs = [x509.load_der_x509_certificate(d) for d in chain]
    except ValueError:
        return Verification(
            False, reason="unparsable certificate", result_type=ResultType.VALIDATION_FAILURE
        )
    reasons: list[str] = []
    for r in records:
        if r.usage == USAGE_DANE_EE:
            if _matches(r, certs[0], chain[0]):
                return Verification(True, r)
            reasons.append("dane-ee mismatch")
        elif r.usage == USAGE_DANE_TA:
            reason = _verify_ta(r, certs, chain, names, now)
            if not reason:
                return Verification(True, r)
            reasons.append(reason)
    return Verification(
        False,
        reason="; ".join(dict.fromkeys(reasons)) or "no usable records",
        result_type=ResultType.VALIDATION_FAILURE,
    )


def _verify_ta(
    r: TLSA,
    certs: Sequence["x509.Certificate"],
    chain: Sequence[bytes],
    names: Sequence[str],
    now: datetime.datetime | None,
) -> str:
    """ "" when the chain verifies up to a certificate matching ``r``; else why not."""
    from cryptography import x509
    from cryptography.x509 import verification

    for i in range(1, len(certs)):
        if not _matches(r, certs[i], chain[i]):
            continue
        store = verification.Store([certs[i]])
        builder = verification.PolicyBuilder().store(store)
        if now is not None:
            builder = builder.time(now)
        last = "name mismatch"
        for name in names:
            try:
                verifier = builder.build_server_verifier(x509.DNSName(name))
                verifier.verify(certs[0], list(certs[1:i]))
            except verification.VerificationError as e:
                last = f"dane-ta chain: {e}"
                continue
            except ValueError as e:  # an unusable name
                last = f"dane-ta name: {e}"
                continue
            return ""
        return last
    return "dane-ta mismatch"


__all__ = [
    "TLSAResult",
    "Verification",
    "allowed_names",
    "gather_tlsa",
    "peer_chain",
    "record_text",
    "usable",
    "verify",
]
