"""Server mechanisms driven by in-memory clients, as SMTP/IMAP shells will drive them."""

import base64
import hmac
from collections.abc import Callable

import pytest

from app.auth import sasl
from app.auth.base import AuthError, ChannelBinding
from app.auth.credentials import Credentials
from app.auth.sasl import (
    Challenge,
    Event,
    Failure,
    NeedCredentials,
    ServerMechanism,
    Success,
    mechanisms_for,
    new_server_mechanism,
)
from app.auth.scram import SHA1, SHA256, ScramClient
from tests.auth.conftest import PASSWORD

USER = "mjl@example.org"
CB = ChannelBinding("tls-exporter", bytes(range(32)))


def b64(b: bytes) -> bytes:
    return base64.b64encode(b)


def run(
    mech: ServerMechanism,
    initial: bytes | None,
    respond: Callable[[bytes], bytes],
    lookup: Callable[[str], Credentials | None],
) -> Event:
    """Drive a mechanism to its end. ``respond`` turns raw challenge data into the
    client's base64 line."""
    ev = mech.start(initial)
    for _ in range(10):
        if isinstance(ev, Challenge):
            ev = mech.step(respond(ev.data))
        elif isinstance(ev, NeedCredentials):
            ev = mech.credentials(lookup(ev.username))
        else:
            return ev
    raise AssertionError("conversation did not end")


def lookup_for(creds: Credentials) -> Callable[[str], Credentials | None]:
    return lambda u: creds if u == USER else None


def new(name: str, cb: ChannelBinding | None = None) -> ServerMechanism:
    return new_server_mechanism(name, channel_binding=cb, hostname="mail.example.org")


# PLAIN


def test_plain_with_initial_response(creds: Credentials) -> None:
    ev = run(new("PLAIN"), b64(f"\0{USER}\0{PASSWORD}".encode()), bytes, lookup_for(creds))
    assert ev == Success(USER, "", b"")


def test_plain_without_initial_response_and_authzid(creds: Credentials) -> None:
    msg = b64(f"{USER}\0{USER}\0{PASSWORD}".encode())
    ev = run(new("plain"), None, lambda ch: msg, lookup_for(creds))
    assert ev == Success(USER, USER, b"")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (f"\0{USER}\0wrong".encode(), "bad password"),
        (f"\0nobody@example.org\0{PASSWORD}".encode(), "unknown user"),
        (f"other@example.org\0{USER}\0{PASSWORD}".encode(), "authorization identity"),
        (f"{USER}\0{PASSWORD}".encode(), "malformed"),
        (f"\0{USER}\0{PASSWORD}\0".encode(), "malformed"),
        (b"\0\xff\xfe\0pw", "utf-8"),
        (f"\0\0{PASSWORD}".encode(), "empty"),
        (f"\0{USER}\0".encode(), "empty"),
    ],
)
def test_plain_failures(creds: Credentials, raw: bytes, reason: str) -> None:
    ev = run(new("PLAIN"), b64(raw), bytes, lookup_for(creds))
    assert isinstance(ev, Failure) and ev.user_error
    assert reason in ev.reason


def test_plain_marks_itself_expensive() -> None:
    assert new("PLAIN").expensive_verify and new("LOGIN").expensive_verify
    assert not new("CRAM-MD5").expensive_verify and not new("SCRAM-SHA-256").expensive_verify


# LOGIN


def _login_client(user: str, password: str) -> Callable[[bytes], bytes]:
    return lambda ch: b64({b"Username:": user, b"Password:": password}[ch].encode())


def test_login(creds: Credentials) -> None:
    assert run(new("LOGIN"), None, _login_client(USER, PASSWORD), lookup_for(creds)) == Success(
        USER, "", b""
    )


def test_login_with_initial_username(creds: Credentials) -> None:
    ev = run(new("LOGIN"), b64(USER.encode()), _login_client(USER, PASSWORD), lookup_for(creds))
    assert ev == Success(USER, "", b"")


def test_login_wrong_password(creds: Credentials) -> None:
    ev = run(new("LOGIN"), None, _login_client(USER, "nope"), lookup_for(creds))
    assert isinstance(ev, Failure) and ev.username == USER


# CRAM-MD5


def _cram_client(user: str, password: str) -> Callable[[bytes], bytes]:
    def respond(ch: bytes) -> bytes:
        assert ch.startswith(b"<") and ch.endswith(b"@mail.example.org>")
        digest = hmac.new(password.encode(), ch, "md5").hexdigest()
        return b64(f"{user} {digest}".encode())

    return respond


def test_cram_md5(creds: Credentials) -> None:
    ev = run(new("CRAM-MD5"), None, _cram_client(USER, PASSWORD), lookup_for(creds))
    assert ev == Success(USER, "", b"")


def test_cram_md5_challenges_are_unique() -> None:
    a, b = new("CRAM-MD5").start(None), new("CRAM-MD5").start(None)
    assert isinstance(a, Challenge) and isinstance(b, Challenge) and a.data != b.data


@pytest.mark.parametrize(
    "client",
    [
        _cram_client(USER, "wrong"),
        _cram_client("nobody", PASSWORD),
        lambda ch: b64(b"nospace"),
        lambda ch: b64(USER.encode() + b" xyz"),
    ],
)
def test_cram_md5_failures(creds: Credentials, client: Callable[[bytes], bytes]) -> None:
    ev = run(new("CRAM-MD5"), None, client, lookup_for(creds))
    assert isinstance(ev, Failure) and ev.user_error


def test_cram_md5_refuses_initial_response() -> None:
    assert isinstance(new("CRAM-MD5").start(b64(b"x")), Failure)


def test_cram_md5_without_stored_verifier() -> None:
    from tests.auth.conftest import cheap_credentials

    c = cheap_credentials(cram_md5=False)
    ev = run(new("CRAM-MD5"), None, _cram_client(USER, PASSWORD), lookup_for(c))
    assert isinstance(ev, Failure)


# SCRAM


def scram_run(
    name: str,
    creds: Credentials,
    *,
    server_cb: ChannelBinding | None = None,
    client_cb: ChannelBinding | None = None,
    plus: bool = False,
    user: str = USER,
    password: str = PASSWORD,
    initial: bool = True,
) -> tuple[Event, ScramClient]:
    h = SHA256 if "256" in name else SHA1
    client = ScramClient(h, user, password, channel_binding=client_cb, plus=plus)
    mech = new(name, server_cb)

    def respond(ch: bytes) -> bytes:
        if ch == b"":
            return b64(client.client_first())
        return b64(client.server_first(ch))

    ev = run(mech, b64(client.client_first()) if initial else None, respond, lookup_for(creds))
    return ev, client


@pytest.mark.parametrize("name", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
@pytest.mark.parametrize("initial", [True, False])
def test_scram(creds: Credentials, name: str, initial: bool) -> None:
    ev, client = scram_run(name, creds, initial=initial)
    assert isinstance(ev, Success) and ev.username == USER
    client.server_final(ev.final)
    assert client.done


@pytest.mark.parametrize("name", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
def test_scram_plus(creds: Credentials, name: str) -> None:
    ev, client = scram_run(name, creds, server_cb=CB, client_cb=CB, plus=True)
    assert isinstance(ev, Success)
    client.server_final(ev.final)


def test_scram_plus_wrong_binding_data(creds: Credentials) -> None:
    other = ChannelBinding("tls-exporter", b"\xff" * 32)
    ev, _ = scram_run("SCRAM-SHA-256-PLUS", creds, server_cb=CB, client_cb=other, plus=True)
    assert isinstance(ev, Failure) and ev.data == b"e=channel-bindings-dont-match"


def test_scram_downgrade_attack(creds: Credentials) -> None:
    # A MitM stripped -PLUS from the list; the client says "y", the server knows better.
    ev, _ = scram_run("SCRAM-SHA-256", creds, server_cb=CB, client_cb=CB, plus=False)
    assert isinstance(ev, Failure) and ev.data == b"e=server-does-support-channel-binding"


def test_scram_plus_without_tls(creds: Credentials) -> None:
    ev, _ = scram_run("SCRAM-SHA-256-PLUS", creds, server_cb=None, client_cb=CB, plus=True)
    assert isinstance(ev, Failure)


def test_scram_wrong_password(creds: Credentials) -> None:
    ev, _ = scram_run("SCRAM-SHA-256", creds, password="wrong")
    assert isinstance(ev, Failure) and ev.data == b"e=invalid-proof" and ev.username == USER


def test_scram_unknown_user_looks_like_wrong_password(creds: Credentials) -> None:
    ev, _ = scram_run("SCRAM-SHA-256", creds, user="nobody@example.org")
    assert isinstance(ev, Failure) and ev.data == b"e=invalid-proof"
    assert "unknown user" in ev.reason


def test_scram_unknown_user_salt_is_stable_with_secret() -> None:
    def salt_for(secret: bytes) -> bytes:
        m = new_server_mechanism(
            "SCRAM-SHA-256", channel_binding=None, hostname="h", fake_salt_secret=secret
        )
        m.start(b64(b"n,,n=ghost,r=abcdefghij"))
        ev = m.credentials(None)
        assert isinstance(ev, Challenge)
        return ev.data.split(b",")[1]

    assert salt_for(b"k" * 32) == salt_for(b"k" * 32)
    assert salt_for(b"k" * 32) != salt_for(b"j" * 32)


def test_scram_authzid_other_user_refused(creds: Credentials) -> None:
    mech = new("SCRAM-SHA-256")
    ev = mech.start(b64(b"n,a=root,n=" + USER.encode() + b",r=abcdefghij"))
    assert isinstance(ev, Failure) and "authorization" in ev.reason


@pytest.mark.parametrize("name", sasl.ALL_MECHANISMS)
@pytest.mark.parametrize("line", [b"!!notbase64!!", b"QQ=", b"*", b"A" * 20000])
def test_bad_client_lines_fail_cleanly(name: str, line: bytes) -> None:
    mech = new(name, CB)
    ev = mech.start(line)
    if isinstance(ev, Challenge):  # CRAM-MD5 etc. tolerate no data; feed the line as a step
        ev = mech.step(line)
    assert isinstance(ev, Failure) and ev.user_error
    # Finished mechanisms keep failing instead of raising.
    assert isinstance(mech.step(b"AAAA"), Failure)


@pytest.mark.parametrize("name", sasl.ALL_MECHANISMS)
def test_garbage_messages_fail_cleanly(creds: Credentials, name: str) -> None:
    for junk in (b"", b"\x00", b"\xff\xfe", b"n,,", b",,,,", b"user", b"a" * 5000):
        mech = new(name, CB)
        ev: Event = mech.start(None)
        steps = 0
        while not isinstance(ev, (Success, Failure)) and steps < 5:
            steps += 1
            if isinstance(ev, NeedCredentials):
                ev = mech.credentials(creds)
            else:
                ev = mech.step(b64(junk))
        assert isinstance(ev, Failure), (name, junk, ev)


def test_cancel_helpers() -> None:
    assert sasl.is_cancel(b"*") and sasl.is_cancel(b"*\r\n") and not sasl.is_cancel(b"*x")
    mech = new("LOGIN")
    assert isinstance(mech.start(None), Challenge)
    f = mech.cancel()
    assert isinstance(f, Failure) and "cancel" in f.reason
    assert isinstance(mech.step(b64(b"x")), Failure)


def test_credentials_out_of_order_is_failure_not_exception(creds: Credentials) -> None:
    for name in sasl.ALL_MECHANISMS:
        f = new(name).credentials(creds)
        assert isinstance(f, Failure) and not f.user_error


def test_unknown_mechanism() -> None:
    with pytest.raises(AuthError) as ei:
        new("GSSAPI")
    assert ei.value.kind == "mechanism"


def test_encode_challenge_and_decode() -> None:
    assert sasl.encode_challenge(b"") == b""
    assert sasl.encode_challenge(b"Username:") == b"VXNlcm5hbWU6"
    assert sasl.decode_response(b"=") == b""
    assert sasl.decode_response(b"VXNlcm5hbWU6\r\n") == b"Username:"


def test_mechanisms_for() -> None:
    assert mechanisms_for(True, True, True) == [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-1",
        "CRAM-MD5",
        "PLAIN",
        "LOGIN",
    ]
    assert mechanisms_for(True, False, True) == [
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "CRAM-MD5",
        "PLAIN",
        "LOGIN",
    ]
    assert mechanisms_for(False, True, False) == ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5"]
