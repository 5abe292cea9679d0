"""Channel binding on real in-memory TLS handshakes (no network, no sleeps)."""

import hashlib
import hmac
import socket
import ssl
import struct
import threading
from pathlib import Path

import pytest

from app.auth.channelbinding import (
    ChannelBinding,
    channel_binding_for,
    memory_tls_pair,
    tls_exporter,
    tls_exporter_available,
)
from app.auth.scram import SHA256, ScramClient, ScramServer, derive_keys
from app.tls.certs import generate_self_signed


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("cert")
    generate_self_signed(["selftest.invalid"], d / "cert.pem", d / "key.pem")
    return str(d / "cert.pem"), str(d / "key.pem")


def test_self_test_passes_here() -> None:
    # The development and CI machines have a CPython linked to a system libssl.
    assert tls_exporter_available()


def test_tls13_exporter_equal_on_both_ends_and_unique_per_connection(
    cert: tuple[str, str],
) -> None:
    values = []
    for _ in range(2):
        client, server = memory_tls_pair(*cert, version=ssl.TLSVersion.TLSv1_3)
        cb_c, cb_s = channel_binding_for(client), channel_binding_for(server)
        assert cb_c is not None and cb_s is not None
        assert cb_c.type == cb_s.type == "tls-exporter"
        assert cb_c.data == cb_s.data and len(cb_c.data) == 32
        values.append(cb_c.data)
    assert values[0] != values[1]


def _hkdf_expand_label(h: str, secret: bytes, label: str, context: bytes, length: int) -> bytes:
    # RFC 8446 §7.1.
    full = b"tls13 " + label.encode()
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), h).digest()
        out += block
        i += 1
    return out[:length]


def test_exporter_matches_rfc8446_from_keylog(cert: tuple[str, str], tmp_path: Path) -> None:
    """Recompute RFC 9266 tls-exporter independently from the exporter master secret."""
    keylog = tmp_path / "keys.log"
    client, server = memory_tls_pair(
        *cert, version=ssl.TLSVersion.TLSv1_3, client_keylog=str(keylog)
    )
    lines = [ln.split() for ln in keylog.read_text().splitlines() if ln.startswith("EXPORTER")]
    assert len(lines) == 1
    secret = bytes.fromhex(lines[0][2])
    cipher = client.cipher()
    assert cipher is not None
    h = "sha384" if cipher[0].endswith("SHA384") else "sha256"
    # RFC 8446 §7.5: HKDF-Expand-Label(Derive-Secret(S, label, ""), "exporter", Hash(""), L)
    empty_hash = hashlib.new(h, b"").digest()
    derived = _hkdf_expand_label(h, secret, "EXPORTER-Channel-Binding", empty_hash, len(empty_hash))
    expected = _hkdf_expand_label(h, derived, "exporter", empty_hash, 32)
    assert tls_exporter(server) == expected
    assert tls_exporter(client) == expected


def test_tls12_gives_tls_unique(cert: tuple[str, str]) -> None:
    client, server = memory_tls_pair(*cert, version=ssl.TLSVersion.TLSv1_2)
    cb_c, cb_s = channel_binding_for(client), channel_binding_for(server)
    assert cb_c is not None and cb_s is not None
    assert cb_c.type == cb_s.type == "tls-unique"
    assert cb_c.data == cb_s.data and len(cb_c.data) >= 12
    assert tls_exporter(server) is None  # exporter only offered for TLS 1.3


def test_no_binding_before_handshake(cert: tuple[str, str]) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=True)
    assert channel_binding_for(obj) is None


def test_ssl_socket_and_scram_plus_end_to_end(cert: tuple[str, str]) -> None:
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(*cert)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    a, b = socket.socketpair()
    result: dict[str, ChannelBinding | None] = {}

    def serve() -> None:
        with sctx.wrap_socket(a, server_side=True) as s:
            result["server"] = channel_binding_for(s)
            s.recv(1)

    t = threading.Thread(target=serve)
    t.start()
    with cctx.wrap_socket(b) as c:
        client_cb = channel_binding_for(c)
        c.sendall(b"x")
    t.join(timeout=30)
    server_cb = result["server"]
    assert client_cb is not None and client_cb == server_cb
    # SCRAM-SHA-256-PLUS bound to this connection succeeds.
    keys = derive_keys(SHA256, "pw", b"salt1234", 4096)
    cl = ScramClient(SHA256, "u", "pw", channel_binding=client_cb, plus=True)
    sv = ScramServer(SHA256, channel_binding=server_cb, plus=True)
    sv.client_first(cl.client_first())
    cl.server_final(sv.client_final(cl.server_first(sv.server_first(keys))))
    assert cl.done


def test_channel_binding_repr_hides_data() -> None:
    assert "AAAA" not in repr(ChannelBinding("tls-exporter", b"AAAA"))
