"""Stored credentials: derived verifiers for every mechanism, never the password.

:meth:`Credentials.from_password` derives, from the SASLprep-normalised password:

* ``scrypt``: a slow hash for PLAIN, LOGIN, IMAP LOGIN and the web login, with its
  parameters stored beside it so they can be raised later (see
  :meth:`Credentials.needs_upgrade`).
* ``scram_sha1`` / ``scram_sha256``: salt, iterations, StoredKey and ServerKey
  (RFC 5802 §3).
* ``cram_md5``: the HMAC-MD5 inner/outer states (see :mod:`app.auth.cram`), or None
  when the caller opts out of CRAM-MD5.

Strength of what is stored, weakest first: the CRAM-MD5 states (one MD5
compression per guess, no salt: inherent to CRAM-MD5, which is why it can be left
out), then SCRAM (PBKDF2, the iteration count below), then scrypt. Nothing stored
allows recovering the password other than by guessing it.

Defaults and why:

* scrypt ``N=2**15, r=8, p=1``: 32 MiB and about 70 ms per check on the 2-core
  development machine (a few hundred ms on a Raspberry Pi). The memory is the
  limit on a 512 MiB machine, so checks must run in a small bounded executor.
* SCRAM-SHA-256: 4096 iterations, SCRAM-SHA-1: 8192 (twice, as mox does, SHA-1
  being cheaper per iteration). 4096 is RFC 7677 §4's "at least" and mox's value;
  the per-login PBKDF2 cost falls on every client (phones included) while the
  stored-verifier strength is capped by CRAM-MD5 anyway when that is enabled.

The serialisation (:meth:`Credentials.to_json`) is versioned (``"v": 1``) and stable.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from app.auth.base import AuthError
from app.auth.cram import CramMD5State
from app.auth.saslprep import saslprep
from app.auth.scram import SHA1, SHA256, ScramKeys, derive_keys

FORMAT_VERSION = 1
DEFAULT_SCRAM_ITERATIONS = 4096
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_LEN = 16
SCRYPT_DKLEN = 32
MAX_PASSWORD_BYTES = 1024  # longer inputs are refused before any hashing


@dataclass(frozen=True, slots=True)
class ScryptHash:
    """An scrypt (RFC 7914) password hash with its parameters."""

    n: int
    r: int
    p: int
    salt: bytes
    hash: bytes

    def __repr__(self) -> str:
        return f"ScryptHash(n={self.n}, r={self.r}, p={self.p}, <redacted>)"

    @classmethod
    def compute(cls, password: bytes, *, n: int, r: int, p: int, salt: bytes) -> "ScryptHash":
        """Hash ``password`` with the given parameters."""
        return cls(n, r, p, salt, _scrypt(password, salt, n, r, p))


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    # maxmem: 128*r*N for V plus 256*r*p scratch and some slack.
    maxmem = 128 * r * n + 256 * r * p + 2**20
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=SCRYPT_DKLEN)


@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything stored for one account's password. Holds no plaintext."""

    scrypt: ScryptHash
    scram_sha1: ScramKeys
    scram_sha256: ScramKeys
    cram_md5: CramMD5State | None

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"

    @classmethod
    def from_password(
        cls,
        password: str,
        *,
        scram_iterations: int = DEFAULT_SCRAM_ITERATIONS,
        scrypt_n: int = SCRYPT_N,
        scrypt_r: int = SCRYPT_R,
        scrypt_p: int = SCRYPT_P,
        cram_md5: bool = True,
    ) -> "Credentials":
        """Derive all verifiers from ``password``.

        The password is SASLprep-normalised as a stored string (RFC 4013; unassigned
        code points refused). SCRAM-SHA-1 uses twice ``scram_iterations``. CPU- and
        memory-heavy: run in an executor. Raises :class:`AuthError` for an empty,
        too long or SASLprep-invalid password.
        """
        pw = _prepare(password, stored=True)
        if scram_iterations < 1:
            raise ValueError("scram_iterations must be positive")
        pwb = pw.encode("utf-8")
        return cls(
            scrypt=ScryptHash.compute(
                pwb, n=scrypt_n, r=scrypt_r, p=scrypt_p, salt=secrets.token_bytes(SALT_LEN)
            ),
            scram_sha1=derive_keys(SHA1, pw, secrets.token_bytes(SALT_LEN), 2 * scram_iterations),
            scram_sha256=derive_keys(SHA256, pw, secrets.token_bytes(SALT_LEN), scram_iterations),
            cram_md5=CramMD5State.from_key(pwb) if cram_md5 else None,
        )

    def scram_keys(self, hash_name: str) -> ScramKeys:
        """The SCRAM verifier for ``hash_name`` (``"SHA-1"`` or ``"SHA-256"``)."""
        return self.scram_sha1 if hash_name == SHA1 else self.scram_sha256

    def needs_upgrade(
        self,
        *,
        scram_iterations: int = DEFAULT_SCRAM_ITERATIONS,
        scrypt_n: int = SCRYPT_N,
        scrypt_r: int = SCRYPT_R,
        scrypt_p: int = SCRYPT_P,
    ) -> bool:
        """True when stored parameters are weaker than the given ones, so the caller
        should re-derive at the next successful plaintext login."""
        s = self.scrypt
        return (
            s.n < scrypt_n
            or s.r < scrypt_r
            or s.p < scrypt_p
            or self.scram_sha256.iterations < scram_iterations
            or self.scram_sha1.iterations < 2 * scram_iterations
        )

    def to_json(self) -> str:
        """Stable, versioned JSON for the admin database (sorted keys, base64 values)."""
        obj: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "scrypt": {
                "n": self.scrypt.n,
                "r": self.scrypt.r,
                "p": self.scrypt.p,
                "salt": _b64(self.scrypt.salt),
                "hash": _b64(self.scrypt.hash),
            },
            "scram-sha-1": _scram_obj(self.scram_sha1),
            "scram-sha-256": _scram_obj(self.scram_sha256),
            "cram-md5": None
            if self.cram_md5 is None
            else {"inner": _b64(self.cram_md5.inner), "outer": _b64(self.cram_md5.outer)},
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Credentials":
        """Parse :meth:`to_json` output; raises :class:`AuthError` (``credentials-format``)."""
        try:
            obj = json.loads(text)
            if not isinstance(obj, dict) or obj.get("v") != FORMAT_VERSION:
                raise _fmt("unknown credentials format version")
            s = obj["scrypt"]
            scrypt = ScryptHash(
                _int(s["n"]), _int(s["r"]), _int(s["p"]), _unb64(s["salt"]), _unb64(s["hash"])
            )
            if scrypt.n < 2 or scrypt.n & (scrypt.n - 1):
                raise _fmt("scrypt n must be a power of two")
            cram = obj["cram-md5"]
            cram_state = None
            if cram is not None:
                cram_state = CramMD5State(_unb64(cram["inner"]), _unb64(cram["outer"]))
                if len(cram_state.inner) != 16 or len(cram_state.outer) != 16:
                    raise _fmt("bad cram-md5 state length")
            return cls(
                scrypt=scrypt,
                scram_sha1=_scram_from(obj["scram-sha-1"], SHA1, 20),
                scram_sha256=_scram_from(obj["scram-sha-256"], SHA256, 32),
                cram_md5=cram_state,
            )
        except AuthError:
            raise
        except (ValueError, KeyError, TypeError) as e:
            raise _fmt(f"malformed credentials: {type(e).__name__}")


def _fmt(detail: str) -> AuthError:
    return AuthError("credentials-format", detail, user_error=False)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(v: object) -> bytes:
    if not isinstance(v, str):
        raise _fmt("expected base64 string")
    try:
        return base64.b64decode(v, validate=True)
    except binascii.Error:
        raise _fmt("bad base64")


def _int(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise _fmt("expected positive integer")
    return v


def _scram_obj(k: ScramKeys) -> dict[str, Any]:
    return {
        "salt": _b64(k.salt),
        "i": k.iterations,
        "stored_key": _b64(k.stored_key),
        "server_key": _b64(k.server_key),
    }


def _scram_from(o: Any, hash_name: str, size: int) -> ScramKeys:
    k = ScramKeys(
        hash_name, _unb64(o["salt"]), _int(o["i"]), _unb64(o["stored_key"]), _unb64(o["server_key"])
    )
    if len(k.stored_key) != size or len(k.server_key) != size or not k.salt:
        raise _fmt("bad scram key length")
    return k


def _prepare(password: str, *, stored: bool) -> str:
    if not password:
        raise AuthError("password", "empty password")
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise AuthError("password", "password too long")
    pw = saslprep(password, allow_unassigned=not stored)
    if not pw:
        raise AuthError("password", "password empty after saslprep")
    return pw


def check_password(creds: Credentials | None, password: str) -> bool:
    """Check a plaintext password (PLAIN, LOGIN, IMAP LOGIN, web login).

    Normalises with SASLprep (as a query) and compares the scrypt hash in constant
    time. With ``creds=None`` (unknown user) or an unusable password the same scrypt
    work is still done, so timing does not reveal which accounts exist.

    CPU- and memory-heavy (tens to hundreds of milliseconds, 32 MiB by default):
    callers on the event loop must run it in a bounded executor.
    """
    try:
        pw: str | None = _prepare(password, stored=False)
    except AuthError:
        pw = None
    if creds is None or pw is None:
        s = creds.scrypt if creds is not None else None
        n, r, p = (s.n, s.r, s.p) if s else (SCRYPT_N, SCRYPT_R, SCRYPT_P)
        _scrypt(secrets.token_bytes(16), secrets.token_bytes(SALT_LEN), n, r, p)
        return False
    s = creds.scrypt
    got = _scrypt(pw.encode("utf-8"), s.salt, s.n, s.r, s.p)
    return hmac.compare_digest(got, s.hash)


def cram_md5_verify(creds: Credentials | None, challenge: bytes, response_hex: str) -> bool:
    """Check a CRAM-MD5 response digest (RFC 2195 §2) against the stored HMAC states.

    ``response_hex`` is the 32 hex digits from the client (case-insensitive). False
    when the account has no CRAM-MD5 verifier or the digest is malformed. Cheap.
    """
    if creds is None or creds.cram_md5 is None:
        return False
    if len(response_hex) != 32:
        return False
    try:
        digest = bytes.fromhex(response_hex)
    except ValueError:
        return False
    return creds.cram_md5.verify(challenge, digest)
