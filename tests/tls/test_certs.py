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
