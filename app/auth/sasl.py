"""SASL server mechanisms for SMTP AUTH, IMAP AUTHENTICATE and friends (RFC 4422).

A sans-I/O core with one event-driven interface. The protocol shell creates a
mechanism with :func:`new_server_mechanism`, feeds it what the client sent and
acts on the returned event:

* :class:`Challenge` — send ``data`` to the client (base64 via
  :func:`encode_challenge`: ``334 <b64>`` in SMTP, ``+ <b64>`` in IMAP), then pass
  the client's reply line to :meth:`ServerMechanism.step`.
* :class:`NeedCredentials` — look up ``username`` (the mechanism does no I/O) and
  call :meth:`ServerMechanism.credentials` with the account's
  :class:`~app.auth.credentials.Credentials`, or None when there is no such
  account. If :attr:`ServerMechanism.expensive_verify` is set (PLAIN, LOGIN: an
  scrypt check) make that call in a bounded executor.
* :class:`Success` — authenticated. For SCRAM, ``final`` holds server-final data
  (``v=...``); SMTP and IMAP cannot carry data with success, so send it as one more
  challenge, read the (empty) reply, then reply 235 / OK.
* :class:`Failure` — authentication failed; ``reason`` is for the log, never for
  the client. For SCRAM ``data`` may hold ``e=<error>`` server-final data.

Client lines are given as received: base64 text without CRLF (``=`` or an empty
initial response means "empty"). Bad base64, oversized input, ``*`` (cancel) and
malformed messages all produce a :class:`Failure`, never an exception.

The password travels only inside a PLAIN/LOGIN mechanism object and is dropped as
soon as it has been checked.
"""

import abc
import base64
import binascii
import secrets
import time
from dataclasses import dataclass

from app.auth import scram
from app.auth.base import AuthError, ChannelBinding
from app.auth.credentials import (
    DEFAULT_SCRAM_ITERATIONS,
    Credentials,
    check_password,
    cram_md5_verify,
)

MAX_LINE = 12288  # RFC 4954 §4: AUTH lines up to 12288 octets

PLAIN = "PLAIN"
LOGIN = "LOGIN"
CRAM_MD5 = "CRAM-MD5"
SCRAM_SHA_1 = "SCRAM-SHA-1"
SCRAM_SHA_256 = "SCRAM-SHA-256"
SCRAM_SHA_1_PLUS = "SCRAM-SHA-1-PLUS"
SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS"

# The order mox advertises (smtpserver EHLO): SHA-256 before SHA-1, PLUS first in
# each pair, then CRAM-MD5, and the plaintext mechanisms last.
ALL_MECHANISMS = (
    SCRAM_SHA_256_PLUS,
    SCRAM_SHA_256,
    SCRAM_SHA_1_PLUS,
    SCRAM_SHA_1,
    CRAM_MD5,
    PLAIN,
    LOGIN,
)


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` (raw, not yet base64) to the client and wait for its reply."""

    data: bytes


@dataclass(frozen=True, slots=True)
class NeedCredentials:
    """Look up ``username`` and call :meth:`ServerMechanism.credentials`."""

    username: str


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated as ``username``; ``authzid`` is empty or equal to it."""

    username: str
    authzid: str
    final: bytes = b""


@dataclass(frozen=True, slots=True)
class Failure:
    """Authentication failed. ``reason`` is for logs; ``user_error`` False means a
    server-side problem (e.g. a caller bug). ``username`` is set when known."""

    reason: str
    user_error: bool
    data: bytes = b""
    username: str = ""


Event = Challenge | NeedCredentials | Success | Failure


def is_cancel(line: bytes) -> bool:
    """True when the client line is ``*``: cancel the exchange (RFC 4954 §4, RFC 9051 §6.2.2)."""
    return line.strip() == b"*"


def encode_challenge(data: bytes) -> bytes:
    """Base64 for a challenge line; empty data gives an empty line (``334 ``, ``+ ``)."""
    return base64.b64encode(data)


def decode_response(line: bytes) -> bytes | Failure:
    """Decode a client base64 line; ``=`` means empty (RFC 4954 §4). Failure on bad input."""
    line = line.rstrip(b"\r\n")
    if is_cancel(line):
        return Failure("authentication cancelled by client", True)
    if len(line) > MAX_LINE:
        return Failure("authentication response too long", True)
    if line in (b"", b"="):
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return Failure("bad base64 in authentication response", True)


def mechanisms_for(tls: bool, channel_binding_available: bool, plain_allowed: bool) -> list[str]:
    """Mechanisms to advertise, in mox's order (see :data:`ALL_MECHANISMS`).

    The ``-PLUS`` variants only with TLS and channel-binding data for it (so a
    client's ``y`` flag really means a downgrade); PLAIN and LOGIN only when
    ``plain_allowed``: the caller's policy, normally "TLS is active" unless the
    configuration allows cleartext passwords on unencrypted connections.
    """
    out = []
    for m in ALL_MECHANISMS:
        if m.endswith("-PLUS") and not (tls and channel_binding_available):
            continue
        if m in (PLAIN, LOGIN) and not plain_allowed:
            continue
        out.append(m)
    return out


class ServerMechanism(abc.ABC):
    """Base of the server mechanisms; see the module docstring for the protocol."""

    name = ""
    expensive_verify = False  # True: call credentials() in an executor

    def __init__(self) -> None:
        self._finished = False
        self.username = ""

    def start(self, initial_response: bytes | None) -> Event:
        """Begin the exchange; ``initial_response`` is the base64 initial response or None."""
        if self._finished:
            return self._misuse("start after end")
        if initial_response is None:
            return self._start(None)
        data = decode_response(initial_response)
        if isinstance(data, Failure):
            return self._end(data)
        return self._start(data)

    def step(self, client_data: bytes) -> Event:
        """Process the client's reply (a base64 line) to the last challenge."""
        if self._finished:
            return self._misuse("step after end")
        data = decode_response(client_data)
        if isinstance(data, Failure):
            return self._end(data)
        return self._step(data)

    def credentials(self, creds: Credentials | None) -> Event:
        """Continue after :class:`NeedCredentials`; ``None`` means no such account."""
        if self._finished:
            return self._misuse("credentials after end")
        return self._credentials(creds)

    def cancel(self) -> Failure:
        """End the exchange because the client sent ``*``."""
        return self._fail("authentication cancelled by client")

    # Subclass hooks.
    @abc.abstractmethod
    def _start(self, data: bytes | None) -> Event:
        """The first server step, given the decoded initial response (or None)."""

    def _step(self, data: bytes) -> Event:
        return self._misuse("unexpected client data")

    def _credentials(self, creds: Credentials | None) -> Event:
        return self._misuse("unexpected credentials")

    def _end(self, ev: Failure | Success) -> Failure | Success:
        self._finished = True
        if isinstance(ev, Failure) and not ev.username and self.username:
            ev = Failure(ev.reason, ev.user_error, ev.data, self.username)
        return ev

    def _fail(self, reason: str, *, data: bytes = b"") -> Failure:
        f = self._end(Failure(reason, True, data))
        assert isinstance(f, Failure)
        return f

    def _misuse(self, what: str) -> Failure:
        f = self._end(Failure(f"sasl mechanism misuse: {what}", False))
        assert isinstance(f, Failure)
        return f


def _utf8(b: bytes) -> str | None:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _PasswordMechanism(ServerMechanism):
    expensive_verify = True

    def __init__(self) -> None:
        super().__init__()
        self._authzid = ""
        self._password: str | None = None
        self._waiting_creds = False

    def _need(self, username: str, password: str) -> Event:
        if not username or not password:
            return self._fail("empty username or password")
        self.username = username
        self._password = password
        self._waiting_creds = True
        return NeedCredentials(username)

    def _credentials(self, creds: Credentials | None) -> Event:
        if not self._waiting_creds or self._password is None:
            return self._misuse("unexpected credentials")
        password, self._password = self._password, None
        ok = check_password(creds, password)
        if creds is None:
            return self._fail("unknown user")
        if not ok:
            return self._fail("bad password")
        return self._end(Success(self.username, self._authzid))


class PlainMechanism(_PasswordMechanism):
    """PLAIN (RFC 4616): ``[authzid] NUL authcid NUL passwd`` in one message."""

    name = PLAIN

    def __init__(self) -> None:
        super().__init__()
        self._asked = False

    def _start(self, data: bytes | None) -> Event:
        if data is None:
            self._asked = True
            return Challenge(b"")  # RFC 4616 §2: empty challenge asks for the message
        return self._message(data)

    def _step(self, data: bytes) -> Event:
        if not self._asked:
            return self._misuse("unexpected client data")
        self._asked = False
        return self._message(data)

    def _message(self, data: bytes) -> Event:
        parts = data.split(b"\x00")
        if len(parts) != 3:  # RFC 4616 §2: exactly two NULs
            return self._fail("malformed PLAIN message")
        decoded = [_utf8(p) for p in parts]
        authzid, authcid, passwd = decoded
        if authzid is None or authcid is None or passwd is None:
            return self._fail("PLAIN message is not utf-8")
        # RFC 4616 §2: the server decides whether authcid may act as authzid; we
        # allow only acting as oneself.
        if authzid and authzid != authcid:
            self.username = authcid
            return self._fail("authorization identity differs from authentication identity")
        self._authzid = authzid
        return self._need(authcid, passwd)


class LoginMechanism(_PasswordMechanism):
    """LOGIN (draft-murchison-sasl-login): ``Username:`` then ``Password:`` challenges.

    An initial response, when given, is the username (as several clients send it).
    """

    name = LOGIN

    def __init__(self) -> None:
        super().__init__()
        self._expect = ""  # "user" or "pass"
        self._user = ""

    def _start(self, data: bytes | None) -> Event:
        if data:
            return self._got_user(data)
        self._expect = "user"
        return Challenge(b"Username:")

    def _got_user(self, data: bytes) -> Event:
        user = _utf8(data)
        if not user:
            return self._fail("empty or non-utf-8 username")
        self._user = user
        self.username = user
        self._expect = "pass"
        return Challenge(b"Password:")

    def _step(self, data: bytes) -> Event:
        if self._expect == "user":
            return self._got_user(data)
        if self._expect == "pass":
            self._expect = ""
            password = _utf8(data)
            if password is None:
                return self._fail("password is not utf-8")
            return self._need(self._user, password)
        return self._misuse("unexpected client data")


class CramMD5Mechanism(ServerMechanism):
    """CRAM-MD5 (RFC 2195): challenge ``<random.timestamp@hostname>``, reply ``user SP hex``."""

    name = CRAM_MD5

    def __init__(self, hostname: str, *, challenge: bytes | None = None) -> None:
        super().__init__()
        if challenge is None:
            # RFC 2195 §2: msg-id style, unique per exchange.
            stamp = f"<{secrets.randbits(63)}.{int(time.time())}@{hostname}>"
            challenge = stamp.encode("ascii", "replace")
        self._challenge = challenge
        self._digest = ""
        self._state = ""

    def _start(self, data: bytes | None) -> Event:
        if data:
            return self._fail("CRAM-MD5 takes no initial response")
        self._state = "response"
        return Challenge(self._challenge)

    def _step(self, data: bytes) -> Event:
        if self._state != "response":
            return self._misuse("unexpected client data")
        text = _utf8(data)
        if text is None:
            return self._fail("CRAM-MD5 response is not utf-8")
        user, sep, digest = text.rpartition(" ")
        if not sep or not user or len(digest) != 32:
            return self._fail("malformed CRAM-MD5 response")
        self.username = user
        self._digest = digest
        self._state = "creds"
        return NeedCredentials(user)

    def _credentials(self, creds: Credentials | None) -> Event:
        if self._state != "creds":
            return self._misuse("unexpected credentials")
        self._state = ""
        if creds is None:
            return self._fail("unknown user")
        if creds.cram_md5 is None:
            return self._fail("account has no CRAM-MD5 verifier")
        if not cram_md5_verify(creds, self._challenge, self._digest):
            return self._fail("bad password")
        return self._end(Success(self.username, ""))


class ScramMechanism(ServerMechanism):
    """SCRAM-SHA-1/-256 and their -PLUS variants (RFC 5802, RFC 7677)."""

    def __init__(
        self,
        name: str,
        *,
        channel_binding: ChannelBinding | None,
        fake_salt_secret: bytes | None = None,
        fake_iterations: int = DEFAULT_SCRAM_ITERATIONS,
        server_nonce: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        hash_name = scram.SHA256 if name.startswith(SCRAM_SHA_256) else scram.SHA1
        self._server = scram.ScramServer(
            hash_name,
            channel_binding=channel_binding,
            plus=name.endswith("-PLUS"),
            server_nonce=server_nonce,
        )
        # Without a configured secret the fake salt for unknown users differs per
        # attempt; pass the server's persistent secret to make it stable.
        self._fake_secret = fake_salt_secret or secrets.token_bytes(32)
        self._fake_iterations = fake_iterations
        self._state = ""
        self._unknown = False

    def _start(self, data: bytes | None) -> Event:
        if not data:
            self._state = "first"
            return Challenge(b"")  # SCRAM is client-first: ask for the message
        return self._client_first(data)

    def _step(self, data: bytes) -> Event:
        if self._state == "first":
            return self._client_first(data)
        if self._state == "final":
            return self._client_final(data)
        return self._misuse("unexpected client data")

    def _scram_fail(self, e: AuthError) -> Failure:
        err = e.scram_error or scram.E_OTHER_ERROR
        return self._fail(f"scram: {e.detail}", data=b"e=" + err.encode("ascii"))

    def _client_first(self, data: bytes) -> Event:
        try:
            self._server.client_first(data)
        except AuthError as e:
            return self._scram_fail(e)
        self.username = self._server.username
        authzid = self._server.authzid
        if authzid and authzid != self.username:
            return self._fail(
                "authorization identity differs from authentication identity",
                data=b"e=" + scram.E_OTHER_ERROR.encode("ascii"),
            )
        self._state = "creds"
        return NeedCredentials(self.username)

    def _credentials(self, creds: Credentials | None) -> Event:
        if self._state != "creds":
            return self._misuse("unexpected credentials")
        if creds is None:
            # Carry on with fake keys so the exchange does not reveal the user is unknown.
            self._unknown = True
            keys = self._server.fake_keys(self._fake_secret, self._fake_iterations)
        else:
            keys = creds.scram_keys(self._server.hash_name)
        self._state = "final"
        return Challenge(self._server.server_first(keys))

    def _client_final(self, data: bytes) -> Event:
        self._state = ""
        try:
            final = self._server.client_final(data)
        except AuthError as e:
            if self._unknown:
                e = AuthError("scram", "unknown user", scram_error=e.scram_error)
            return self._scram_fail(e)
        if self._unknown:  # cannot happen: fake keys match no proof
            return self._fail("unknown user", data=b"e=" + scram.E_INVALID_PROOF.encode())
        return self._end(Success(self.username, self._server.authzid, final))


def new_server_mechanism(
    name: str,
    *,
    channel_binding: ChannelBinding | None,
    hostname: str,
    fake_salt_secret: bytes | None = None,
    scram_fake_iterations: int = DEFAULT_SCRAM_ITERATIONS,
) -> ServerMechanism:
    """Create the server side of mechanism ``name`` (case-insensitive).

    ``channel_binding`` is this connection's binding data when the ``-PLUS``
    mechanisms were advertised (see :func:`mechanisms_for`), else None.
    ``hostname`` goes into the CRAM-MD5 challenge. ``fake_salt_secret`` (a
    persistent server secret) keeps SCRAM salts for unknown users stable across
    attempts. Raises :class:`AuthError` (``kind="mechanism"``) for an unknown name.
    """
    upper = name.upper()
    if upper == PLAIN:
        return PlainMechanism()
    if upper == LOGIN:
        return LoginMechanism()
    if upper == CRAM_MD5:
        return CramMD5Mechanism(hostname)
    if upper in (SCRAM_SHA_1, SCRAM_SHA_256, SCRAM_SHA_1_PLUS, SCRAM_SHA_256_PLUS):
        return ScramMechanism(
            upper,
            channel_binding=channel_binding,
            fake_salt_secret=fake_salt_secret,
            fake_iterations=scram_fake_iterations,
        )
    raise AuthError("mechanism", "unsupported sasl mechanism")
