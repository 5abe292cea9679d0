import hashlib
import hmac
import json

import pytest

from app.auth.base import AuthError
from app.auth.credentials import (
    SCRYPT_N,
    Credentials,
    check_password,
    cram_md5_verify,
)
from app.auth.scram import SHA1, SHA256, derive_keys
from tests.auth.conftest import PASSWORD, cheap_credentials


def test_check_password_true_and_false(creds: Credentials) -> None:
    assert check_password(creds, PASSWORD)
    assert not check_password(creds, PASSWORD + "x")
    assert not check_password(creds, "")
    assert not check_password(None, PASSWORD)


def test_default_parameters_work() -> None:
    c = Credentials.from_password("pw-default")
    assert c.scrypt.n == SCRYPT_N
    assert c.scram_sha256.iterations == 4096 and c.scram_sha1.iterations == 8192
    assert check_password(c, "pw-default")
    assert not c.needs_upgrade()
    assert c.needs_upgrade(scram_iterations=10000)


def test_saslprep_equivalent_passwords() -> None:
    # U+00AD (soft hyphen) maps to nothing, U+2168 (ROMAN NUMERAL NINE) NFKC's to "IX",
    # U+00A0 is a non-ASCII space that maps to SPACE.
    c = cheap_credentials("I\u00adX pass")
    assert check_password(c, "IX pass")
    assert check_password(c, "\u2168\u00a0pass")
    assert not check_password(c, "ix pass")
    # The SCRAM verifier is derived from the prepared form too.
    k = derive_keys(SHA256, "IX pass", c.scram_sha256.salt, c.scram_sha256.iterations)
    assert k.stored_key == c.scram_sha256.stored_key


def test_prohibited_password_is_refused() -> None:
    with pytest.raises(AuthError):
        cheap_credentials("bell\u0007")
    with pytest.raises(AuthError):
        cheap_credentials("")


def test_serialisation_round_trip(creds: Credentials) -> None:
    text = creds.to_json()
    again = Credentials.from_json(text)
    assert again == creds
    assert again.to_json() == text
    assert json.loads(text)["v"] == 1


def test_no_plaintext_in_json_or_repr() -> None:
    c = cheap_credentials("Sup3rSecretPassw0rd")
    text = c.to_json()
    assert "Sup3rSecret" not in text
    assert b"Sup3rSecret".hex() not in text
    assert "Sup3rSecret" not in repr(c)
    import base64

    assert base64.b64encode(b"Sup3rSecretPassw0rd").decode() not in text


def test_without_cram_md5() -> None:
    c = cheap_credentials(cram_md5=False)
    assert c.cram_md5 is None
    assert Credentials.from_json(c.to_json()).cram_md5 is None
    assert not cram_md5_verify(c, b"<1.2@x>", "0" * 32)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "[]",
        '{"v": 2}',
        '{"v": 1}',
        '{"v": 1, "scrypt": {"n": 3, "r": 8, "p": 1, "salt": "AA==", "hash": "AA=="}}',
    ],
)
def test_from_json_rejects_garbage(bad: str) -> None:
    with pytest.raises(AuthError) as ei:
        Credentials.from_json(bad)
    assert ei.value.kind == "credentials-format"


def test_from_json_rejects_bad_key_length(creds: Credentials) -> None:
    obj = json.loads(creds.to_json())
    obj["scram-sha-1"]["stored_key"] = "AAAA"
    with pytest.raises(AuthError):
        Credentials.from_json(json.dumps(obj))


def test_cram_md5_verify(creds: Credentials) -> None:
    challenge = b"<12345.678@mail.example>"
    good = hmac.new(PASSWORD.encode(), challenge, "md5").hexdigest()
    assert cram_md5_verify(creds, challenge, good)
    assert cram_md5_verify(creds, challenge, good.upper())
    assert not cram_md5_verify(creds, challenge, "0" * 32)
    assert not cram_md5_verify(creds, challenge, "zz" * 16)
    assert not cram_md5_verify(creds, challenge, good[:-1])
    assert not cram_md5_verify(None, challenge, good)


def test_scram_keys_match_rfc_definition(creds: Credentials) -> None:
    for h, k in ((SHA1, creds.scram_sha1), (SHA256, creds.scram_sha256)):
        name = "sha1" if h == SHA1 else "sha256"
        salted = hashlib.pbkdf2_hmac(name, PASSWORD.encode(), k.salt, k.iterations)
        client_key = hmac.new(salted, b"Client Key", name).digest()
        assert hashlib.new(name, client_key).digest() == k.stored_key
        assert hmac.new(salted, b"Server Key", name).digest() == k.server_key
        assert creds.scram_keys(h) is k
