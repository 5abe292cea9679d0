"""The DER reader against certificates and keys built by ``cryptography`` and ``openssl``."""

import base64
import datetime
import ipaddress
import random
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from app.tls.der import (
    DERError,
    _children,
    _same_point,
    certificate_facts,
    key_matches_certificate,
    pem_certificates,
)


def build(
    cn: str | None,
    sans: list[x509.GeneralName] | None,
    not_after: datetime.datetime,
    key_kind: str = "ec",
) -> bytes:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if key_kind == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org")]
    if cn is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    name = x509.Name(attrs)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if sans is not None:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_san_dns_names_in_order_lower_case_and_ip_entries_ignored() -> None:
    when = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    pem = build(
        "ignored.example",
        [
            x509.DNSName("Mail.Example.ORG"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("*.example.org"),
        ],
        when,
    )
    facts = certificate_facts(pem_certificates(pem)[0])
    assert facts.names == ("mail.example.org", "*.example.org")
    assert facts.not_after == when


def test_common_name_when_there_is_no_san_and_rsa_key() -> None:
    when = datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
    facts = certificate_facts(pem_certificates(build("Host.Example", None, when, "rsa"))[0])
    assert facts.names == ("host.example",)
    assert facts.not_after == when


def test_generalized_time_after_2049() -> None:
    # RFC 5280 4.1.2.5: dates from 2050 on are GeneralizedTime, before as UTCTime.
    when = datetime.datetime(2060, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
    facts = certificate_facts(pem_certificates(build(None, [x509.DNSName("a.example")], when))[0])
    assert facts.not_after == when
    assert facts.names == ("a.example",)


def test_matches_cryptography_for_a_chain_file() -> None:
    leaf = build(
        "leaf.example",
        [x509.DNSName("leaf.example")],
        datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
    )
    other = build("ca.example", None, datetime.datetime(2035, 1, 1, tzinfo=datetime.UTC))
    ders = pem_certificates(leaf + b"\n" + other)
    assert len(ders) == 2
    for der in ders:
        ours = certificate_facts(der)
        theirs = x509.load_der_x509_certificate(der)
        assert ours.not_after == theirs.not_valid_after_utc


def test_garbage_is_an_error() -> None:
    with pytest.raises(DERError):
        certificate_facts(b"\x30\x82\xff\xff\x01")
    with pytest.raises(DERError):
        certificate_facts(b"\x04\x01\x00")
    with pytest.raises(DERError):
        pem_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n")


# key_matches_certificate: private key files against the certificate's public key.

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1


def tlv(tag: int, contents: bytes) -> bytes:
    """One DER element (definite length), to build the forms no library writes."""
    n = len(contents)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | (n.bit_length() + 7) // 8])
    if n >= 0x80:
        length += n.to_bytes(length[0] & 0x7F, "big")
    return bytes([tag]) + length + contents


def pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def self_signed(key: Key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "key.example")])
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC))
        .sign(key, algorithm)
        .public_bytes(serialization.Encoding.DER)
    )


def pkcs8(key: Key, encryption: serialization.KeySerializationEncryption | None = None) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


def traditional(key: Key) -> bytes:
    """PKCS#1 ``RSA PRIVATE KEY`` or SEC1 ``EC PRIVATE KEY``, as OpenSSL writes them."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def sec1_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def sec1_with_public(der: bytes, point: bytes | None) -> bytes:
    """The SEC1 key ``der`` with its [1] publicKey dropped (None) or replaced by ``point``."""
    (_tag, body), *_ = _children(der)
    fields = [tlv(t, v) for t, v in _children(body) if t != 0xA1]
    if point is not None:
        fields.append(tlv(0xA1, tlv(0x03, b"\x00" + point)))
    return tlv(0x30, b"".join(fields))


def ed25519_v2(key: ed25519.Ed25519PrivateKey) -> bytes:
    """RFC 5958 OneAsymmetricKey v2 with the [1] publicKey (RFC 8410 10.3's example form)."""
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return tlv(
        0x30,
        tlv(0x02, b"\x01")
        + tlv(0x30, tlv(0x06, bytes([0x2B, 0x65, 0x70])))
        + tlv(0x04, tlv(0x04, seed))
        + tlv(0x81, b"\x00" + public),
    )


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[Key, Key]]:
    """Two keys of each kind: ``[kind][0]`` has a certificate, ``[kind][1]`` is another key."""
    return {
        "rsa": (
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ),
        "p256": (ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())),
        "p384": (ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())),
        "ed25519": (ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()),
    }


@pytest.fixture(scope="module")
def certs(keys: dict[str, tuple[Key, Key]]) -> dict[str, bytes]:
    return {kind: self_signed(pair[0]) for kind, pair in keys.items()}


def key_forms(key: Key) -> list[bytes]:
    """Every PEM form that applies to ``key`` and records its public half."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return [pem("PRIVATE KEY", ed25519_v2(key))]
    return [pkcs8(key), traditional(key)]


KINDS = ["rsa", "p256", "p384", "ed25519"]


@pytest.mark.parametrize("kind", KINDS)
def test_matching_key_in_each_form(
    kind: str, keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    for form in key_forms(keys[kind][0]):
        assert key_matches_certificate(form, certs[kind]) is True, form.splitlines()[0]


@pytest.mark.parametrize("kind", KINDS)
def test_another_key_of_the_same_kind(
    kind: str, keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    for form in key_forms(keys[kind][1]):
        assert key_matches_certificate(form, certs[kind]) is False, form.splitlines()[0]


@pytest.mark.parametrize("kind", KINDS)
def test_key_of_another_kind(
    kind: str, keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    for other in KINDS:
        if other != kind:
            for form in key_forms(keys[other][0]):
                assert key_matches_certificate(form, certs[kind]) is False, (other, kind)


def test_ec_key_without_its_public_key_tells_only_the_curve(
    keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    key = keys["p256"][0]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    bare = pem("EC PRIVATE KEY", sec1_with_public(sec1_der(key), None))
    # The stripped key is still one OpenSSL reads, and the same key.
    loaded = serialization.load_pem_private_key(bare, None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()
    assert key_matches_certificate(bare, certs["p256"]) is None
    assert key_matches_certificate(bare, certs["p384"]) is False  # another curve
    assert key_matches_certificate(bare, certs["rsa"]) is False


def test_ed25519_without_its_public_key_cannot_be_told(
    keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    # What cryptography and OpenSSL write: PKCS#8 v1, the seed only (RFC 8410 7).
    v1 = pkcs8(keys["ed25519"][0])
    assert key_matches_certificate(v1, certs["ed25519"]) is None
    assert key_matches_certificate(v1, certs["p256"]) is False


# RFC 8410 10.3: an Ed25519 OneAsymmetricKey v2 with attributes and the public key. Neither
# OpenSSL 3.0 nor cryptography reads this form, so it is the reference for ed25519_v2().
RFC8410_V2 = b"""-----BEGIN PRIVATE KEY-----
MHICAQEwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
oB8wHQYKKoZIhvcNAQkJFDEPDA1DdXJkbGUgQ2hhaXJzgSEAGb9ECWmEzf6FQbrB
Z9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PRIVATE KEY-----
"""


def test_rfc8410_example_key(certs: dict[str, bytes]) -> None:
    der = base64.b64decode(b"".join(RFC8410_V2.splitlines()[1:-1]))
    key = ed25519.Ed25519PrivateKey.from_private_bytes(der[16:48])
    (_tag, body), *_ = _children(der)
    without_attributes = tlv(0x30, b"".join(tlv(t, v) for t, v in _children(body) if t != 0xA0))
    assert ed25519_v2(key) == without_attributes
    assert key_matches_certificate(RFC8410_V2, self_signed(key)) is True
    assert key_matches_certificate(RFC8410_V2, certs["ed25519"]) is False
    assert key_matches_certificate(RFC8410_V2, certs["rsa"]) is False


def test_encrypted_keys_cannot_be_told(
    keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    key = keys["p256"][0]
    encrypted = pkcs8(key, serialization.BestAvailableEncryption(b"secret"))
    assert b"ENCRYPTED PRIVATE KEY" in encrypted
    assert key_matches_certificate(encrypted, certs["p256"]) is None
    legacy = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert b"Proc-Type: 4,ENCRYPTED" in legacy
    assert key_matches_certificate(legacy, certs["p256"]) is None


def test_key_file_holding_the_certificate_too(
    keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    combined = pem("CERTIFICATE", certs["rsa"]) + traditional(keys["rsa"][0])
    assert key_matches_certificate(combined, certs["rsa"]) is True
    # Only the first private key counts.
    two = traditional(keys["rsa"][1]) + traditional(keys["rsa"][0])
    assert key_matches_certificate(two, certs["rsa"]) is False


@pytest.fixture(scope="module")
def openssl_ec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """From the openssl tool: ``ecparam -genkey`` output (EC PARAMETERS, then the key),
    the same key with its point compressed, and a certificate holding the compressed point.
    """
    assert shutil.which("openssl"), "openssl is not installed (the CI script installs it)"
    d = tmp_path_factory.mktemp("openssl-ec")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("ecparam", "-name", "prime256v1", "-genkey", "-out", "key.pem")
    run("ec", "-in", "key.pem", "-conv_form", "compressed", "-out", "compressed.pem")
    run("req", "-new", "-x509", "-key", "compressed.pem", "-subj", "/CN=c.example",
        "-days", "1", "-outform", "DER", "-out", "cert.der")  # fmt: skip
    return {name.split(".")[0]: (d / name).read_bytes() for name in
            ("key.pem", "compressed.pem", "cert.der")}  # fmt: skip


def test_ec_parameters_block_before_the_key(
    openssl_ec: dict[str, bytes], certs: dict[str, bytes]
) -> None:
    key = openssl_ec["key"]
    assert key.startswith(b"-----BEGIN EC PARAMETERS-----")
    assert key_matches_certificate(key, openssl_ec["cert"]) is True
    assert key_matches_certificate(key, certs["p256"]) is False
    assert key_matches_certificate(key, certs["p384"]) is False


def test_compressed_point_in_certificate_or_key(openssl_ec: dict[str, bytes]) -> None:
    cert = openssl_ec["cert"]
    spki_point = (
        x509.load_der_x509_certificate(cert)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    )
    assert spki_point in cert  # the certificate really holds 02/03 || x
    # Key uncompressed (ecparam -genkey), certificate compressed.
    assert key_matches_certificate(openssl_ec["key"], cert) is True
    # Key compressed, certificate uncompressed (as cryptography writes it).
    loaded = serialization.load_pem_private_key(openssl_ec["key"], None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert key_matches_certificate(openssl_ec["compressed"], self_signed(loaded)) is True
    # The negated point -P = (x, p - y) shares x but not y's parity: another key.
    numbers = loaded.public_key().public_numbers()
    negated = b"\x04" + numbers.x.to_bytes(32, "big") + (P256_PRIME - numbers.y).to_bytes(32, "big")
    forged = pem("EC PRIVATE KEY", sec1_with_public(sec1_der(loaded), negated))
    assert key_matches_certificate(forged, cert) is False
    assert key_matches_certificate(forged, self_signed(loaded)) is False


def test_point_comparison() -> None:
    x, y = bytes(range(1, 33)), bytes(range(41, 73))  # y even
    assert _same_point(b"\x04" + x + y, b"\x02" + x)
    assert _same_point(b"\x02" + x, b"\x04" + x + y)
    assert not _same_point(b"\x04" + x + y, b"\x03" + x)
    assert _same_point(b"\x06" + x + y, b"\x04" + x + y)  # hybrid form
    assert not _same_point(b"\x04" + x + y, b"\x04" + x + y[:-1] + b"\x00")
    assert not _same_point(b"\x02" + x, b"\x02" + x[:-1] + b"\x00")
    for bad in (b"", b"\x00", b"\x02", b"\x04" + x + y[:-1], b"\x07" + x + y, b"\x05" + x):
        with pytest.raises(DERError):
            _same_point(bad, b"\x02" + x)


def test_malformed_input_is_an_error(
    keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    good = traditional(keys["rsa"][0])
    for key_pem, cert in [
        (good, b""),
        (good, b"\x30\x82\xff\xff\x01"),
        (good, certs["rsa"] + b"\x00"),
        (b"", certs["rsa"]),
        (pem("CERTIFICATE", certs["rsa"]), certs["rsa"]),  # no private key
        (good.replace(b"-----END RSA", b"-----END EC"), certs["rsa"]),  # unterminated
        (good[:40] + b"!" + good[41:], certs["rsa"]),  # not base64
        (good[:40] + good[41:], certs["rsa"]),  # bad padding
        (pem("EC PRIVATE KEY", b"\x30\x03\x02\x01\x01"), certs["p256"]),
        (pem("PRIVATE KEY", b"\x30\x00"), certs["p256"]),
        (pem("RSA PRIVATE KEY", b"\x02\x01\x00"), certs["rsa"]),
    ]:
        with pytest.raises(DERError):
            key_matches_certificate(key_pem, cert)


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8-ec", "sec1", "ed25519-v2", "certificate"])
def test_truncated_and_flipped_bytes(
    form: str, keys: dict[str, tuple[Key, Key]], certs: dict[str, bytes]
) -> None:
    """Damaged files give an answer or DERError, never another exception."""
    rsa_key, p256, ed_key = keys["rsa"][0], keys["p256"][0], keys["ed25519"][0]
    assert isinstance(p256, ec.EllipticCurvePrivateKey)
    assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
    key_der, label, cert = {
        "pkcs1": (
            rsa_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
            "RSA PRIVATE KEY",
            certs["rsa"],
        ),
        "pkcs8-ec": (
            p256.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "PRIVATE KEY",
            certs["p256"],
        ),
        "sec1": (sec1_der(p256), "EC PRIVATE KEY", certs["p256"]),
        "ed25519-v2": (ed25519_v2(ed_key), "PRIVATE KEY", certs["ed25519"]),
        "certificate": (sec1_der(p256), "EC PRIVATE KEY", certs["p256"]),
    }[form]
    rng = random.Random(form)

    def damaged(data: bytes) -> list[bytes]:
        out = [data[:n] for n in range(0, len(data), max(1, len(data) // 150))]
        for _ in range(250):
            b = bytearray(data)
            for _ in range(rng.randint(1, 3)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            out.append(bytes(b))
        return out

    cases = (
        [(pem(label, key_der), c) for c in damaged(cert)]
        if form == "certificate"
        else [(pem(label, k), cert) for k in damaged(key_der)]
    )
    answers: set[bool | str | None] = set()
    for key_pem, c in cases:
        try:
            answers.add(key_matches_certificate(key_pem, c))
        except DERError:
            answers.add("error")
    assert answers <= {True, False, None, "error"}
    assert "error" in answers
