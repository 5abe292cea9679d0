"""CRAM-MD5 verifier storage: HMAC-MD5 inner/outer states (RFC 2195, RFC 2104, RFC 1321).

CRAM-MD5 needs HMAC-MD5 keyed with the password. Like Dovecot and mox we store not
the password but the two MD5 chaining states reached after absorbing the first
block of each HMAC pass, ``key XOR ipad`` and ``key XOR opad`` (RFC 2104 §2). The
HMAC of any challenge can be finished from those states.

:mod:`hashlib` cannot resume an MD5 computation from a chaining state, so the MD5
compression function is implemented here in pure Python. Only short inputs go
through it (a challenge of some tens of bytes, then a 16-byte digest), so speed is
irrelevant.

Note the security cost, which is inherent to CRAM-MD5: each state is a single MD5
compression of the (padded) password, so a leaked state can be attacked offline at
MD5 speed. The SCRAM and scrypt verifiers stored alongside are far stronger;
:meth:`app.auth.credentials.Credentials.from_password` can omit this one.
"""

import hashlib
import hmac
import math
import struct
from dataclasses import dataclass

BLOCK = 64  # RFC 2104 §2: B, the MD5 block size in bytes

_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)  # RFC 1321 §3.3

# RFC 1321 §3.4: per-round shift amounts and the sine-derived constants T[i].
_S = (7, 12, 17, 22) * 4 + (5, 9, 14, 20) * 4 + (4, 11, 16, 23) * 4 + (6, 10, 15, 21) * 4
_T = tuple(int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64))
_M = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M


def md5_compress(state: tuple[int, int, int, int], block: bytes) -> tuple[int, int, int, int]:
    """Apply the MD5 compression function (RFC 1321 §3.4) to one 64-byte block."""
    if len(block) != BLOCK:
        raise ValueError("md5 block must be 64 bytes")
    x = struct.unpack("<16I", block)
    a, b, c, d = state
    for i in range(64):
        if i < 16:
            f = (b & c) | (~b & d)
            g = i
        elif i < 32:
            f = (d & b) | (~d & c)
            g = (5 * i + 1) % 16
        elif i < 48:
            f = b ^ c ^ d
            g = (3 * i + 5) % 16
        else:
            f = c ^ (b | (~d & _M))
            g = (7 * i) % 16
        f = (f + a + _T[i] + x[g]) & _M
        a, d, c = d, c, b
        b = (b + _rotl(f, _S[i])) & _M
    return (
        (state[0] + a) & _M,
        (state[1] + b) & _M,
        (state[2] + c) & _M,
        (state[3] + d) & _M,
    )


def _md5_finish(state: tuple[int, int, int, int], prefix_len: int, data: bytes) -> bytes:
    """Finish MD5 from ``state`` after ``prefix_len`` bytes, absorbing ``data``."""
    total = prefix_len + len(data)
    # RFC 1321 §3.1-3.2: 0x80, zeros to 56 mod 64, then the bit length, little endian.
    padded = (
        data + b"\x80" + b"\x00" * ((55 - total) % 64) + struct.pack("<Q", total * 8 & (2**64 - 1))
    )
    for off in range(0, len(padded), BLOCK):
        state = md5_compress(state, padded[off : off + BLOCK])
    return struct.pack("<4I", *state)


@dataclass(frozen=True, slots=True)
class CramMD5State:
    """The HMAC-MD5 chaining states after ``key^ipad`` (inner) and ``key^opad`` (outer).

    Each is the 16-byte little-endian encoding of MD5's four 32-bit state words.
    """

    inner: bytes
    outer: bytes

    def __repr__(self) -> str:
        return "CramMD5State(<redacted>)"

    @classmethod
    def from_key(cls, key: bytes) -> "CramMD5State":
        """Compute the states for HMAC-MD5 key ``key`` (RFC 2104 §2)."""
        if len(key) > BLOCK:
            key = hashlib.md5(key).digest()  # RFC 2104 §2: long keys are hashed first
        key = key.ljust(BLOCK, b"\x00")
        ipad = bytes(k ^ 0x36 for k in key)
        opad = bytes(k ^ 0x5C for k in key)
        return cls(
            struct.pack("<4I", *md5_compress(_INIT, ipad)),
            struct.pack("<4I", *md5_compress(_INIT, opad)),
        )

    def hmac(self, msg: bytes) -> bytes:
        """Return HMAC-MD5(key, msg) finished from the stored states (RFC 2104 §2)."""
        if len(self.inner) != 16 or len(self.outer) != 16:
            raise ValueError("bad cram-md5 state length")
        inner_state = struct.unpack("<4I", self.inner)
        outer_state = struct.unpack("<4I", self.outer)
        inner = _md5_finish(inner_state, BLOCK, msg)
        return _md5_finish(outer_state, BLOCK, inner)

    def verify(self, challenge: bytes, digest: bytes) -> bool:
        """Constant-time check that ``digest`` is HMAC-MD5(key, challenge)."""
        return hmac.compare_digest(self.hmac(challenge), digest)
