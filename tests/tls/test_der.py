"""The certificate facts reader against certificates built by ``cryptography``."""

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from app.tls.der import DERError, certificate_facts, pem_certificates


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
