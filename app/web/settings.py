"""Web-level settings kept as keys in the admin database, and shared lookups.

MTA-STS mode per domain is stored under ``mtasts:DOMAIN`` (JSON ``{"mode": ...}``);
without one, a domain publishes a ``testing`` policy naming this host as its MX.
"""

import hashlib
import json
from pathlib import Path

from app.config.dnsrecords import MTASTS_MODES, MTASTSPolicy
from app.config.static import Config
from app.store.admin import AdminDB

MTASTS_KEY = "mtasts:"
MTASTS_MAX_AGE = 86400


def mtasts_policy(db: AdminDB, config: Config, domain: str) -> MTASTSPolicy:
    """The policy of ``domain`` (ASCII); runs on the admin thread."""
    raw = db.setting(MTASTS_KEY + domain)
    mode = "testing"
    if raw:
        try:
            v = json.loads(raw).get("mode")
            mode = v if v in MTASTS_MODES else mode
        except (ValueError, AttributeError):
            pass
    return MTASTSPolicy(mode=mode, mx=(config.domain.ascii,), max_age=MTASTS_MAX_AGE)


def set_mtasts_mode(db: AdminDB, domain: str, mode: str) -> None:
    if mode not in MTASTS_MODES:
        raise ValueError(f"MTA-STS mode must be one of {', '.join(MTASTS_MODES)}")
    db.set_setting(MTASTS_KEY + domain, json.dumps({"mode": mode}))


def tlsa_digests(cert_paths: list[str]) -> list[str]:
    """SHA-256 of each certificate's public key (for TLSA ``3 1 1``, RFC 7671 5.1).

    Unreadable files are skipped: the advice then simply has no TLSA record.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    out: list[str] = []
    for path in cert_paths:
        try:
            cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
        except (OSError, ValueError):
            continue
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashlib.sha256(spki).hexdigest()
        if digest not in out:
            out.append(digest)
    return out
