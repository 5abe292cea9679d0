"""Certificates from PEM files with SNI selection, reload, and self-signed generation."""

import socket
import ssl
import threading
from pathlib import Path

import pytest

from app.tls.certs import CertStore, TLSError, generate_self_signed


def names_seen(store: CertStore, server_name: str | None) -> str:
    """The subject CN the server presents to a client asking for ``server_name``."""
    a, b = socket.socketpair()
    result: list[str] = []

    def serve() -> None:
        with store.context.wrap_socket(a, server_side=True) as s:
            s.recv(1)

    t = threading.Thread(target=serve)
    t.start()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(b, server_hostname=server_name) as c:
        der = c.getpeercert(binary_form=True)
        assert der is not None
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        result.append(cert.subject.rfc4514_string())
        c.send(b"x")
    t.join(10)
    return result[0]


@pytest.fixture
def two(tmp_path: Path) -> CertStore:
    generate_self_signed(["mail.a.example"], tmp_path / "a.crt", tmp_path / "a.key")
    generate_self_signed(["*.b.example"], tmp_path / "b.crt", tmp_path / "b.key")
    return CertStore(
        [
            (str(tmp_path / "a.crt"), str(tmp_path / "a.key")),
            (str(tmp_path / "b.crt"), str(tmp_path / "b.key")),
        ]
    )


def test_sni_selects_the_matching_certificate_and_wildcards(two: CertStore) -> None:
    assert names_seen(two, "mail.a.example") == "CN=mail.a.example"
    assert names_seen(two, "imap.b.example") == "CN=*.b.example"
    assert names_seen(two, "MAIL.A.EXAMPLE.") == "CN=mail.a.example"


def test_unknown_or_missing_name_gets_the_first_certificate(two: CertStore) -> None:
    assert names_seen(two, "other.example") == "CN=mail.a.example"
    assert names_seen(two, None) == "CN=mail.a.example"


def test_reload_picks_up_renewed_files_and_keeps_old_on_error(tmp_path: Path) -> None:
    generate_self_signed(["old.example"], tmp_path / "c.crt", tmp_path / "c.key")
    store = CertStore([(str(tmp_path / "c.crt"), str(tmp_path / "c.key"))])
    generate_self_signed(["new.example"], tmp_path / "c.crt", tmp_path / "c.key")
    store.reload()
    assert store.infos[0].names == ("new.example",)
    (tmp_path / "c.crt").write_text("not a certificate")
    with pytest.raises(TLSError):
        store.reload()
    assert store.infos[0].names == ("new.example",)
    assert names_seen(store, "new.example") == "CN=new.example"


def test_missing_files_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TLSError, match="cannot load"):
        CertStore([(str(tmp_path / "none.crt"), str(tmp_path / "none.key"))])


def test_self_signed_key_is_private(tmp_path: Path) -> None:
    generate_self_signed(["h.example"], tmp_path / "h.crt", tmp_path / "h.key")
    assert (tmp_path / "h.key").stat().st_mode & 0o777 == 0o600


def test_files_are_checked_at_once_but_contexts_wait_for_the_first_handshake(
    tmp_path: Path,
) -> None:
    """Without a handshake, a store reads its files with the DER reader only: a child
    interpreter that makes one has not loaded OpenSSL."""
    import json
    import subprocess
    import sys

    generate_self_signed(["mail.a.example"], tmp_path / "a.crt", tmp_path / "a.key")
    code = (
        "import json, sys\n"
        "from app.tls.certs import CertStore\n"
        "store = CertStore([(sys.argv[1], sys.argv[2])])\n"
        "before = [store.loaded, '_ssl' in sys.modules, '_hashlib' in sys.modules]\n"
        "store.on_demand().load()\n"
        "print(json.dumps([before, [store.loaded, '_ssl' in sys.modules], store.infos[0].names]))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "a.crt"), str(tmp_path / "a.key")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [[False, False, False], [True, True], ["mail.a.example"]]


def test_a_key_of_another_certificate_is_refused_when_the_store_is_made(tmp_path: Path) -> None:
    generate_self_signed(["a.example"], tmp_path / "a.crt", tmp_path / "a.key")
    generate_self_signed(["b.example"], tmp_path / "b.crt", tmp_path / "b.key")
    with pytest.raises(TLSError, match="does not belong") as e:
        CertStore([(str(tmp_path / "a.crt"), str(tmp_path / "b.key"))])
    assert e.value.path == str(tmp_path / "b.key")
    (tmp_path / "bad.key").write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(TLSError, match="cannot read private key"):
        CertStore([(str(tmp_path / "a.crt"), str(tmp_path / "bad.key"))])


def test_a_key_the_der_reader_cannot_check_is_loaded_at_once(tmp_path: Path) -> None:
    """Ed25519 key files carry no public key: OpenSSL checks the pair, at start-up."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    def write(
        name: str, key: ed25519.Ed25519PrivateKey, cert_key: ed25519.Ed25519PrivateKey
    ) -> None:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ed.example")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(cert_key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("ed.example")]), False)
            .sign(cert_key, None)
        )
        (tmp_path / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp_path / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    k1, k2 = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    write("good", k1, k1)
    write("bad", k2, k1)  # the key is not the certificate's
    store = CertStore([(str(tmp_path / "good.crt"), str(tmp_path / "good.key"))])
    assert store.loaded
    assert names_seen(store, "ed.example") == "CN=ed.example"
    with pytest.raises(TLSError, match="cannot load"):
        CertStore([(str(tmp_path / "bad.crt"), str(tmp_path / "bad.key"))])


def test_reload_after_the_first_handshake_serves_the_renewed_certificate(tmp_path: Path) -> None:
    generate_self_signed(["old.example"], tmp_path / "c.crt", tmp_path / "c.key")
    store = CertStore([(str(tmp_path / "c.crt"), str(tmp_path / "c.key"))])
    assert names_seen(store, "old.example") == "CN=old.example"
    listening = store.context
    generate_self_signed(["new.example"], tmp_path / "c.crt", tmp_path / "c.key")
    store.reload()
    assert store.context is listening  # listeners keep their context object
    assert names_seen(store, "new.example") == "CN=new.example"
    assert names_seen(store, None) == "CN=new.example"
