"""SCRAM-SHA-1 and SCRAM-SHA-256, with and without channel binding (RFC 5802, RFC 7677).

A sans-I/O protocol core: :class:`ScramServer` and :class:`ScramClient` take and
return message bytes (the raw SASL payloads, not base64) and never touch a socket,
clock or store. Key derivation (:func:`derive_keys`) is here too so the stored
verifiers in :mod:`app.auth.credentials` and the exchange use the same code.

Invariants:

* The server holds only StoredKey and ServerKey (RFC 5802 §3), never the password or
  SaltedPassword.
* Every failure raises :class:`~app.auth.base.AuthError` whose ``scram_error`` is an
  RFC 5802 §7 ``server-error-value``; the caller may send ``b"e=" + value`` as the
  server-final message.
* Channel binding: a client using ``y`` while this server offers channel binding
  is a downgrade and fails (RFC 5802 §6); ``tls-unique`` and ``tls-exporter`` are
  accepted only when that is the type the connection provides.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from app.auth.base import TLS_EXPORTER, TLS_UNIQUE, AuthError, ChannelBinding
from app.auth.saslprep import saslprep

SHA1 = "SHA-1"
SHA256 = "SHA-256"
_HASHLIB = {SHA1: "sha1", SHA256: "sha256"}
_DIGEST_SIZE = {SHA1: 20, SHA256: 32}

# RFC 5802 §7 server-error-value.
E_INVALID_ENCODING = "invalid-encoding"
E_EXTENSIONS_NOT_SUPPORTED = "extensions-not-supported"
E_INVALID_PROOF = "invalid-proof"
E_CHANNEL_BINDINGS_DONT_MATCH = "channel-bindings-dont-match"
E_SERVER_DOES_SUPPORT_CHANNEL_BINDING = "server-does-support-channel-binding"
E_CHANNEL_BINDING_NOT_SUPPORTED = "channel-binding-not-supported"
E_UNSUPPORTED_CHANNEL_BINDING_TYPE = "unsupported-channel-binding-type"
E_UNKNOWN_USER = "unknown-user"
E_INVALID_USERNAME_ENCODING = "invalid-username-encoding"
E_NO_RESOURCES = "no-resources"
E_OTHER_ERROR = "other-error"

MIN_NONCE_LEN = 8  # as mox: shorter client nonces are refused as unsafe
MAX_ITERATIONS = 10_000_000  # client side: refuse a server asking for absurd work


def _hash_name(hash_name: str) -> str:
    if hash_name not in _HASHLIB:
        raise ValueError(f"unsupported scram hash {hash_name!r}")
    return _HASHLIB[hash_name]


def _h(hash_name: str, data: bytes) -> bytes:
    return hashlib.new(_hash_name(hash_name), data).digest()


def _hmac(hash_name: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, _hash_name(hash_name)).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(s: str, what: str) -> bytes:
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _err(f"bad base64 in {what}", E_INVALID_ENCODING)


def _err(detail: str, scram_error: str, *, user_error: bool = True) -> AuthError:
    return AuthError("scram", detail, scram_error=scram_error, user_error=user_error)


def salted_password(hash_name: str, password: str, salt: bytes, iterations: int) -> bytes:
    """SaltedPassword := Hi(password, salt, i) (RFC 5802 §3), i.e. PBKDF2-HMAC.

    ``password`` must already be normalised (SASLprep) by the caller.
    """
    return hashlib.pbkdf2_hmac(_hash_name(hash_name), password.encode("utf-8"), salt, iterations)


@dataclass(frozen=True, slots=True)
class ScramKeys:
    """What a server stores for one SCRAM hash (RFC 5802 §3): no password equivalent."""

    hash_name: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __repr__(self) -> str:
        return f"ScramKeys({self.hash_name}, iterations={self.iterations}, <redacted>)"


def keys_from_salted_password(
    hash_name: str, salted: bytes, salt: bytes, iterations: int
) -> ScramKeys:
    """Derive StoredKey and ServerKey from SaltedPassword (RFC 5802 §3)."""
    client_key = _hmac(hash_name, salted, b"Client Key")
    return ScramKeys(
        hash_name=hash_name,
        salt=salt,
        iterations=iterations,
        stored_key=_h(hash_name, client_key),
        server_key=_hmac(hash_name, salted, b"Server Key"),
    )


def derive_keys(hash_name: str, password: str, salt: bytes, iterations: int) -> ScramKeys:
    """Compute the stored verifier for an already SASLprep-normalised password."""
    return keys_from_salted_password(
        hash_name, salted_password(hash_name, password, salt, iterations), salt, iterations
    )


def encode_saslname(name: str) -> str:
    """Escape ``,`` and ``=`` in a SCRAM saslname (RFC 5802 §5.1)."""
    return name.replace("=", "=3D").replace(",", "=2C")


def decode_saslname(s: str) -> str:
    """Undo :func:`encode_saslname`; any other ``=`` sequence is an error (RFC 5802 §5.1)."""
    out: list[str] = []
    i = 0
    while i < len(s):
        if s[i] == "=":
            esc = s[i : i + 3]
            if esc == "=2C":
                out.append(",")
            elif esc == "=3D":
                out.append("=")
            else:
                raise _err("bad escape in saslname", E_INVALID_USERNAME_ENCODING)
            i += 3
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _decode_utf8(msg: bytes) -> str:
    try:
        return msg.decode("utf-8")
    except UnicodeDecodeError:
        raise _err("message is not utf-8", E_INVALID_ENCODING)


def _attributes(s: str) -> list[tuple[str, str]]:
    """Split ``a=v,b=w`` into pairs; attribute names are one ASCII letter (RFC 5802 §7)."""
    out = []
    for part in s.split(","):
        if len(part) < 2 or part[1] != "=" or not ("a" <= part[0].lower() <= "z"):
            raise _err("malformed attribute", E_INVALID_ENCODING)
        out.append((part[0], part[2:]))
    return out


def _valid_nonce(nonce: str) -> bool:
    # RFC 5802 §7: printable = %x21-2B / %x2D-7E (no comma).
    return nonce != "" and all(0x21 <= ord(c) <= 0x7E and c != "," for c in nonce)


def _new_nonce() -> str:
    return _b64(secrets.token_bytes(18))


@dataclass(frozen=True, slots=True)
class _Gs2:
    header: str  # the gs2-header including its trailing comma
    flag: str  # "n", "y" or "p"
    cb_name: str
    authzid: str


def _parse_gs2(s: str) -> tuple[_Gs2, str]:
    """Parse the gs2-header (RFC 5802 §7) from a client-first message; return it and the rest."""
    parts = s.split(",", 2)
    if len(parts) != 3:
        raise _err("missing gs2 header", E_INVALID_ENCODING)
    cbflag, authz, rest = parts
    cb_name = ""
    if cbflag.startswith("p="):
        cb_name = cbflag[2:]
        # RFC 5802 §7: cb-name = 1*(ALPHA / DIGIT / "." / "-")
        if not cb_name or not all(c.isascii() and (c.isalnum() or c in ".-") for c in cb_name):
            raise _err("bad channel binding name", E_INVALID_ENCODING)
        flag = "p"
    elif cbflag in ("n", "y"):
        flag = cbflag
    else:
        raise _err("bad gs2 channel binding flag", E_INVALID_ENCODING)
    authzid = ""
    if authz:
        if not authz.startswith("a="):
            raise _err("bad gs2 authzid", E_INVALID_ENCODING)
        authzid = decode_saslname(authz[2:])
        if not authzid:
            raise _err("empty authzid", E_INVALID_ENCODING)
    header = f"{cbflag},{authz},"
    return _Gs2(header=header, flag=flag, cb_name=cb_name, authzid=authzid), rest


class ScramServer:
    """Server side of one SCRAM exchange (RFC 5802 §5).

    Call :meth:`client_first`, then :meth:`server_first` with the account's keys (or
    :meth:`fake_keys` for an unknown user, so the exchange looks the same), then
    :meth:`client_final`. ``channel_binding`` is the binding this connection offers
    (None without TLS or when unavailable); when set, the server advertised the
    ``-PLUS`` mechanisms. ``plus`` is True when the client chose a ``-PLUS``
    mechanism, which makes channel binding mandatory.
    """

    def __init__(
        self,
        hash_name: str,
        *,
        channel_binding: ChannelBinding | None,
        plus: bool,
        server_nonce: str | None = None,
    ) -> None:
        _hash_name(hash_name)
        self.hash_name = hash_name
        self.channel_binding = channel_binding
        self.plus = plus
        self.username = ""
        self.authzid = ""
        self.auth_message = ""
        self._server_nonce = server_nonce
        self._gs2: _Gs2 | None = None
        self._client_first_bare = ""
        self._nonce = ""
        self._server_first = ""
        self._keys: ScramKeys | None = None

    def client_first(self, msg: bytes) -> None:
        """Parse client-first-message; sets :attr:`username` and :attr:`authzid`."""
        s = _decode_utf8(msg)
        gs2, bare = _parse_gs2(s)
        self._check_binding_choice(gs2)
        attrs = _attributes(bare)
        if attrs and attrs[0][0] == "m":  # RFC 5802 §5.1 "m": unknown mandatory extension
            raise _err("mandatory extension not supported", E_EXTENSIONS_NOT_SUPPORTED)
        if len(attrs) < 2 or attrs[0][0] != "n" or attrs[1][0] != "r":
            raise _err("client-first must be n=...,r=...", E_INVALID_ENCODING)
        username = decode_saslname(attrs[0][1])
        if not username:
            raise _err("empty username", E_INVALID_USERNAME_ENCODING)
        nonce = attrs[1][1]
        if not _valid_nonce(nonce):
            raise _err("bad client nonce", E_INVALID_ENCODING)
        if len(nonce) < MIN_NONCE_LEN:
            raise _err("client nonce too short", E_OTHER_ERROR)
        # Further attributes are optional extensions, ignored (RFC 5802 §5.1).
        self._gs2 = gs2
        self._client_first_bare = bare
        self._nonce = nonce
        self.username = username
        self.authzid = gs2.authzid

    def _check_binding_choice(self, gs2: _Gs2) -> None:
        cb = self.channel_binding
        if gs2.flag == "n":
            if self.plus:
                raise _err("-PLUS mechanism without channel binding", E_CHANNEL_BINDINGS_DONT_MATCH)
        elif gs2.flag == "y":
            # RFC 5802 §6: client supports binding and thinks we do not, but we
            # advertised -PLUS: a downgrade attack (or a broken client).
            if cb is not None or self.plus:
                raise _err(
                    "client thinks server lacks channel binding (downgrade?)",
                    E_SERVER_DOES_SUPPORT_CHANNEL_BINDING,
                )
        else:
            # A "p" flag with a bare mechanism name is accepted when binding is
            # possible, as mox does: some cyrus-sasl clients do this.
            if cb is None:
                raise _err("no channel binding on this connection", E_CHANNEL_BINDING_NOT_SUPPORTED)
            if gs2.cb_name not in (TLS_UNIQUE, TLS_EXPORTER) or gs2.cb_name != cb.type:
                # tls-unique is undefined for TLS 1.3 (RFC 9266 §3); we offer only
                # the one type that fits the connection's TLS version.
                raise _err(
                    "channel binding type not offered on this connection",
                    E_UNSUPPORTED_CHANNEL_BINDING_TYPE,
                )

    def fake_keys(self, secret: bytes, iterations: int) -> ScramKeys:
        """Keys for an unknown user: a stable salt derived from ``secret`` and the
        username, and keys no password can match. Avoids revealing which users exist."""
        digest_size = _DIGEST_SIZE[self.hash_name]
        salt = _hmac(SHA256, secret, f"fake-salt\x00{self.hash_name}\x00{self.username}".encode())
        return ScramKeys(
            hash_name=self.hash_name,
            salt=salt[:16],
            iterations=iterations,
            stored_key=secrets.token_bytes(digest_size),
            server_key=secrets.token_bytes(digest_size),
        )

    def server_first(self, keys: ScramKeys) -> bytes:
        """Return server-first-message ``r=,s=,i=`` (RFC 5802 §5.1)."""
        if self._gs2 is None:
            raise _err("server_first before client_first", E_OTHER_ERROR, user_error=False)
        if keys.hash_name != self.hash_name:
            raise _err("keys for another hash", E_OTHER_ERROR, user_error=False)
        self._keys = keys
        self._nonce = self._nonce + (self._server_nonce or _new_nonce())
        self._server_first = f"r={self._nonce},s={_b64(keys.salt)},i={keys.iterations}"
        return self._server_first.encode("ascii")

    def client_final(self, msg: bytes) -> bytes:
        """Verify client-final-message; return server-final ``v=...`` (RFC 5802 §5.1)."""
        if self._gs2 is None or self._keys is None:
            raise _err("client_final out of order", E_OTHER_ERROR, user_error=False)
        s = _decode_utf8(msg)
        head, sep, proof_s = s.rpartition(",p=")
        if not sep:
            raise _err("client-final without proof", E_INVALID_ENCODING)
        attrs = _attributes(head)
        if len(attrs) < 2 or attrs[0][0] != "c" or attrs[1][0] != "r":
            raise _err("client-final must be c=...,r=...", E_INVALID_ENCODING)
        cbind = _unb64(attrs[0][1], "channel binding")
        expected = self._gs2.header.encode("utf-8")
        if self._gs2.flag == "p" and self.channel_binding is not None:
            expected += self.channel_binding.data
        # RFC 5802 §5.1 "c": gs2 header plus cb data must match what we know.
        if not hmac.compare_digest(cbind, expected):
            raise _err("channel binding data mismatch", E_CHANNEL_BINDINGS_DONT_MATCH)
        if not hmac.compare_digest(attrs[1][1].encode(), self._nonce.encode()):
            raise _err("nonce mismatch", E_OTHER_ERROR)
        proof = _unb64(proof_s, "proof")
        keys = self._keys
        self.auth_message = f"{self._client_first_bare},{self._server_first},{head}"
        am = self.auth_message.encode("utf-8")
        client_signature = _hmac(self.hash_name, keys.stored_key, am)
        if len(proof) != len(client_signature):
            raise _err("proof has wrong length", E_INVALID_PROOF)
        client_key = _xor(proof, client_signature)  # RFC 5802 §3
        if not hmac.compare_digest(_h(self.hash_name, client_key), keys.stored_key):
            raise _err("invalid proof", E_INVALID_PROOF)
        server_signature = _hmac(self.hash_name, keys.server_key, am)
        return f"v={_b64(server_signature)}".encode("ascii")


def _client_normalize(password: str) -> str:
    # RFC 5802 §2.2 Normalize(): SASLprep as a query. A password that fails it is
    # used as is, as mox does: a foreign server may not enforce SASLprep either.
    try:
        return saslprep(password, allow_unassigned=True)
    except AuthError:
        return password


class ScramClient:
    """Client side of one SCRAM exchange; used by tests and the outgoing SMTP client.

    Flag choice (RFC 5802 §6): with ``plus`` the client binds to ``channel_binding``
    (``p=<type>``); without ``plus`` but with a ``channel_binding`` available it
    sends ``y`` (it could bind but the server did not advertise -PLUS); otherwise
    ``n``. Intermediate values are kept as attributes after each step.
    """

    def __init__(
        self,
        hash_name: str,
        username: str,
        password: str,
        *,
        authzid: str = "",
        channel_binding: ChannelBinding | None = None,
        plus: bool = False,
        nonce: str | None = None,
        min_iterations: int = 4096,
    ) -> None:
        _hash_name(hash_name)
        if plus and channel_binding is None:
            raise ValueError("-PLUS needs channel binding data")
        self.hash_name = hash_name
        self.username = username
        self._password = password
        self.authzid = authzid
        self.channel_binding = channel_binding
        self.plus = plus
        self.client_nonce = nonce or _new_nonce()
        self.min_iterations = min_iterations
        if plus and channel_binding is not None:
            flag = f"p={channel_binding.type}"
        elif channel_binding is not None:
            flag = "y"
        else:
            flag = "n"
        authz = f"a={encode_saslname(authzid)}" if authzid else ""
        self.gs2_header = f"{flag},{authz},"
        self.client_first_bare = f"n={encode_saslname(username)},r={self.client_nonce}"
        self.server_first_message = ""
        self.auth_message = ""
        self.salted_password = b""
        self.client_key = b""
        self.stored_key = b""
        self.server_key = b""
        self.client_proof = b""
        self.server_signature = b""
        self._done = False

    def client_first(self) -> bytes:
        """Return client-first-message."""
        return (self.gs2_header + self.client_first_bare).encode("utf-8")

    def server_first(self, msg: bytes) -> bytes:
        """Process server-first-message; return client-final-message with the proof."""
        s = _decode_utf8(msg)
        attrs = _attributes(s)
        if attrs and attrs[0][0] == "m":
            raise _err("server requires an unsupported extension", E_EXTENSIONS_NOT_SUPPORTED)
        if len(attrs) < 3 or [a for a, _ in attrs[:3]] != ["r", "s", "i"]:
            raise _err("server-first must be r=,s=,i=", E_INVALID_ENCODING)
        nonce, salt_s, iter_s = attrs[0][1], attrs[1][1], attrs[2][1]
        if not _valid_nonce(nonce) or not nonce.startswith(self.client_nonce):
            raise _err("server nonce does not extend ours", E_OTHER_ERROR)
        if len(nonce) == len(self.client_nonce):
            raise _err("server added no nonce", E_OTHER_ERROR)
        salt = _unb64(salt_s, "salt")
        if not salt:
            raise _err("empty salt", E_INVALID_ENCODING)
        if not iter_s.isascii() or not iter_s.isdigit():
            raise _err("bad iteration count", E_INVALID_ENCODING)
        iterations = int(iter_s)
        if not self.min_iterations <= iterations <= MAX_ITERATIONS:
            raise _err("unsafe iteration count", E_OTHER_ERROR)
        self.server_first_message = s
        cb_data = self.gs2_header.encode("utf-8")
        if self.plus and self.channel_binding is not None:
            cb_data += self.channel_binding.data
        without_proof = f"c={_b64(cb_data)},r={nonce}"
        self.auth_message = f"{self.client_first_bare},{s},{without_proof}"
        am = self.auth_message.encode("utf-8")
        h = self.hash_name
        self.salted_password = salted_password(
            h, _client_normalize(self._password), salt, iterations
        )
        self._password = ""
        self.client_key = _hmac(h, self.salted_password, b"Client Key")
        self.stored_key = _h(h, self.client_key)
        self.server_key = _hmac(h, self.salted_password, b"Server Key")
        self.client_proof = _xor(self.client_key, _hmac(h, self.stored_key, am))
        self.server_signature = _hmac(h, self.server_key, am)
        return f"{without_proof},p={_b64(self.client_proof)}".encode("ascii")

    def server_final(self, msg: bytes) -> None:
        """Check server-final-message; raise :class:`AuthError` on ``e=`` or a bad signature."""
        s = _decode_utf8(msg)
        attrs = _attributes(s)
        if attrs[0][0] == "e":
            raise _err(f"server error {attrs[0][1][:64]!r}", attrs[0][1][:64] or E_OTHER_ERROR)
        if attrs[0][0] != "v" or not self.server_signature:
            raise _err("server-final must be v=", E_INVALID_ENCODING)
        if not hmac.compare_digest(_unb64(attrs[0][1], "verifier"), self.server_signature):
            raise _err(
                "server signature mismatch: server does not know the password", E_OTHER_ERROR
            )
        self._done = True

    @property
    def done(self) -> bool:
        """True once the server proved knowledge of the password."""
        return self._done
