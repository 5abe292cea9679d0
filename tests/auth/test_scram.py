import base64
import json
from pathlib import Path

import pytest

from app.auth.base import AuthError, ChannelBinding
from app.auth.scram import (
    SHA1,
    SHA256,
    ScramClient,
    ScramServer,
    decode_saslname,
    derive_keys,
    encode_saslname,
    keys_from_salted_password,
)

VECTORS = json.loads((Path(__file__).parent.parent / "data/scram/scram-vectors.json").read_text())[
    "vectors"
]


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _hash(mech: str) -> str:
    return SHA256 if mech.startswith("SCRAM-SHA-256") else SHA1


def _binding(v: dict[str, str]) -> tuple[ChannelBinding | None, bool]:
    if "cb_name" in v:
        return ChannelBinding(v["cb_name"], bytes.fromhex(v["cb_data_hex"])), True
    if v["gs2_header"].startswith("y"):
        return ChannelBinding("tls-unique", b"unused"), False
    return None, False


@pytest.mark.parametrize("v", VECTORS, ids=[v["source"][:40] for v in VECTORS])
def test_client_reproduces_every_value(v: dict[str, str]) -> None:
    cb, plus = _binding(v)
    c = ScramClient(
        _hash(v["mechanism"]),
        v["username"],
        v["password"],
        channel_binding=cb,
        plus=plus,
        nonce=v["client_nonce"],
    )
    assert c.client_first().decode() == v["client_first"]
    assert c.server_first(v["server_first"].encode()).decode() == v["client_final"]
    assert c.auth_message == v["auth_message"]
    assert c.salted_password.hex() == v["salted_password_hex"]
    assert b64(c.client_key) == v["client_key"]
    assert b64(c.stored_key) == v["stored_key"]
    assert b64(c.server_key) == v["server_key"]
    assert b64(c.client_proof) == v["client_proof"]
    assert b64(c.server_signature) == v["server_signature"]
    c.server_final(v["server_final"].encode())
    assert c.done


@pytest.mark.parametrize("v", VECTORS, ids=[v["source"][:40] for v in VECTORS])
def test_server_reproduces_every_value(v: dict[str, str]) -> None:
    h = _hash(v["mechanism"])
    keys = derive_keys(h, v["password"], base64.b64decode(v["salt"]), int(v["iterations"]))
    assert b64(keys.stored_key) == v["stored_key"]
    assert b64(keys.server_key) == v["server_key"]
    assert keys == keys_from_salted_password(
        h, bytes.fromhex(v["salted_password_hex"]), keys.salt, keys.iterations
    )
    plus = v["mechanism"].endswith("-PLUS")
    cb = ChannelBinding(v["cb_name"], bytes.fromhex(v["cb_data_hex"])) if plus else None
    s = ScramServer(h, channel_binding=cb, plus=plus, server_nonce=v["server_nonce"])
    s.client_first(v["client_first"].encode())
    assert s.username == v["username"] and s.authzid == ""
    assert s.server_first(keys).decode() == v["server_first"]
    assert s.client_final(v["client_final"].encode()).decode() == v["server_final"]
    assert s.auth_message == v["auth_message"]


def test_saslname_escaping() -> None:
    assert encode_saslname("a,b=c") == "a=2Cb=3Dc"
    assert decode_saslname("a=2Cb=3Dc") == "a,b=c"
    with pytest.raises(AuthError) as ei:
        decode_saslname("a=2Db")
    assert ei.value.scram_error == "invalid-username-encoding"


def _pair(
    *,
    server_cb: ChannelBinding | None,
    server_plus: bool,
    client_cb: ChannelBinding | None,
    client_plus: bool,
    password: str = "pencil",
    authzid: str = "",
) -> str:
    """Run an exchange; return "ok" or the scram error value."""
    keys = derive_keys(SHA256, "pencil", b"saltsaltsalt", 4096)
    c = ScramClient(
        SHA256, "u,ser", password, authzid=authzid, channel_binding=client_cb, plus=client_plus
    )
    s = ScramServer(SHA256, channel_binding=server_cb, plus=server_plus)
    try:
        s.client_first(c.client_first())
        assert s.username == "u,ser"
        final = s.client_final(c.server_first(s.server_first(keys)))
        c.server_final(final)
    except AuthError as e:
        assert e.scram_error
        return e.scram_error
    return "ok"


CB = ChannelBinding("tls-exporter", b"A" * 32)


def test_plus_exchange_and_mismatches() -> None:
    assert _pair(server_cb=CB, server_plus=True, client_cb=CB, client_plus=True) == "ok"
    other = ChannelBinding("tls-exporter", b"B" * 32)
    assert (
        _pair(server_cb=CB, server_plus=True, client_cb=other, client_plus=True)
        == "channel-bindings-dont-match"
    )
    unique = ChannelBinding("tls-unique", b"A" * 12)
    assert (
        _pair(server_cb=CB, server_plus=True, client_cb=unique, client_plus=True)
        == "unsupported-channel-binding-type"
    )
    assert (
        _pair(server_cb=None, server_plus=False, client_cb=CB, client_plus=True)
        == "channel-binding-not-supported"
    )


def test_downgrade_y_flag_is_refused_when_server_offers_binding() -> None:
    assert (
        _pair(server_cb=CB, server_plus=False, client_cb=CB, client_plus=False)
        == "server-does-support-channel-binding"
    )
    # Without binding on the server, "y" is fine.
    assert _pair(server_cb=None, server_plus=False, client_cb=CB, client_plus=False) == "ok"


def test_plus_mechanism_requires_binding() -> None:
    assert (
        _pair(server_cb=CB, server_plus=True, client_cb=None, client_plus=False)
        == "channel-bindings-dont-match"
    )


def test_wrong_password_is_invalid_proof() -> None:
    assert (
        _pair(server_cb=None, server_plus=False, client_cb=None, client_plus=False, password="x")
        == "invalid-proof"
    )


def test_authzid_travels() -> None:
    c = ScramClient(SHA1, "user", "pencil", authzid="adm=in", nonce="abcdefghij")
    assert c.client_first() == b"n,a=adm=3Din,n=user,r=abcdefghij"
    s = ScramServer(SHA1, channel_binding=None, plus=False)
    s.client_first(c.client_first())
    assert s.authzid == "adm=in"


@pytest.mark.parametrize(
    ("msg", "err"),
    [
        (b"", "invalid-encoding"),
        (b"x,,n=user,r=abcdefghij", "invalid-encoding"),
        (b"n,,m=ext,n=user,r=abcdefghij", "extensions-not-supported"),
        (b"n,,n=user", "invalid-encoding"),
        (b"n,,n=,r=abcdefghij", "invalid-username-encoding"),
        (b"n,,n=us=er,r=abcdefghij", "invalid-username-encoding"),
        (b"n,,n=user,r=short", "other-error"),
        (b"n,,r=abcdefghij,n=user", "invalid-encoding"),
        (b"n,b=x,n=user,r=abcdefghij", "invalid-encoding"),
        (b"\xff,,n=user,r=abcdefghij", "invalid-encoding"),
        (b"p=tls-unique,,n=user,r=abcdefghij", "channel-binding-not-supported"),
        (b"p=bad name,,n=user,r=abcdefghij", "invalid-encoding"),
    ],
)
def test_malformed_client_first(msg: bytes, err: str) -> None:
    s = ScramServer(SHA256, channel_binding=None, plus=False)
    with pytest.raises(AuthError) as ei:
        s.client_first(msg)
    assert ei.value.scram_error == err


@pytest.mark.parametrize(
    "final",
    [
        b"",
        b"c=biws",
        b"c=biws,r=abcdefghijNONCE,p=!!!",
        b"c=eSws,r=abcdefghijNONCE,p=AAAA",
        b"c=biws,r=wrongnonce,p=AAAA",
        b"c=biws,r=abcdefghijNONCE,p=AAAA",
        b"r=abcdefghijNONCE,c=biws,p=AAAA",
    ],
)
def test_malformed_client_final(final: bytes) -> None:
    keys = derive_keys(SHA256, "pencil", b"salt", 4096)
    s = ScramServer(SHA256, channel_binding=None, plus=False, server_nonce="NONCE")
    s.client_first(b"n,,n=user,r=abcdefghij")
    s.server_first(keys)
    with pytest.raises(AuthError) as ei:
        s.client_final(final)
    assert ei.value.scram_error


def test_client_rejects_bad_server_first() -> None:
    for bad in (
        b"r=OTHERNONCE,s=c2FsdA==,i=4096",  # does not extend our nonce
        b"r=abcdefghij,s=c2FsdA==,i=4096",  # server added nothing
        b"r=abcdefghijX,s=c2FsdA==,i=1",  # too few iterations
        b"r=abcdefghijX,s=,i=4096",
        b"r=abcdefghijX,s=c2FsdA==,i=x",
        b"m=x,r=abcdefghijX,s=c2FsdA==,i=4096",
    ):
        c = ScramClient(SHA256, "user", "pencil", nonce="abcdefghij")
        with pytest.raises(AuthError):
            c.server_first(bad)


def test_client_rejects_bad_server_final() -> None:
    keys = derive_keys(SHA256, "pencil", b"salt", 4096)
    c = ScramClient(SHA256, "user", "pencil")
    s = ScramServer(SHA256, channel_binding=None, plus=False)
    s.client_first(c.client_first())
    s.client_final(c.server_first(s.server_first(keys)))
    with pytest.raises(AuthError):
        c.server_final(b"v=" + base64.b64encode(b"\x00" * 32))
    with pytest.raises(AuthError) as ei:
        c.server_final(b"e=invalid-proof")
    assert ei.value.scram_error == "invalid-proof"
    assert not c.done


def test_p_flag_with_bare_mechanism_is_accepted_like_mox() -> None:
    # Some cyrus-sasl clients bind while naming the bare mechanism.
    assert _pair(server_cb=CB, server_plus=False, client_cb=CB, client_plus=True) == "ok"
