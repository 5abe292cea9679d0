"""Our DKIM signatures against independent implementations, and theirs against ours.

- dkimpy (test dependency; Ed25519 in dkimpy needs PyNaCl, else those cases skip).
- OpenDKIM (Debian package opendkim-tools). ``opendkim-testmsg`` signs with a key file
  without DNS, so its signatures are verified by us through the loopback DNS server.
  To verify it looks keys up through the system resolver, which cannot be pointed at
  a port: the check runs it in a private user, mount and network namespace
  (``unshare -rnm``) where /etc/resolv.conf is bind-mounted to name 127.0.0.1 and a
  tiny UDP responder on 127.0.0.1:53 answers from a LoopbackDNSServer's data. It is
  skipped where unprivileged namespaces are unavailable. Nothing leaves the host.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.dns.loopback import LoopbackDNSServer
from app.dns.resolver import Resolver
from app.mailauth import dkim
from app.mailauth.dkim_keys import load_private_key

dkimpy = pytest.importorskip("dkim")

ROOT = Path(__file__).resolve().parent.parent.parent
NOW = 1_700_000_000.0
# opendkim-testmsg 2.11 reports "dkim_chunk(): Syntax error" for some messages whose
# first field is not Date (seen with From, Received, X-); starting with Date avoids it.
MSG = (
    b"Date: Mon, 01 Jan 2011 01:02:03 +0400\r\n"
    b"From: Joe <joe@example.org>\r\n"
    b"To: Suzie <suzie@example.net>\r\n"
    b"Subject: dinner  \r\n\tplans\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"Hi.  \r\n\r\nWe  lost the game.\r\n\r\n\r\n"
)


def have_nacl() -> bool:
    try:
        import nacl  # noqa: F401
    except ImportError:
        return False
    return True


KEYGENS = [
    pytest.param(dkim.generate_rsa, id="rsa"),
    pytest.param(
        dkim.generate_ed25519,
        id="ed25519",
        marks=pytest.mark.skipif(not have_nacl(), reason="dkimpy needs PyNaCl for ed25519"),
    ),
]


@pytest.mark.parametrize("keygen", KEYGENS)
def test_dkimpy_verifies_our_signatures(keygen: object) -> None:
    pem = keygen()  # type: ignore[operator]
    txt = dkim.txt_record(pem).encode()
    sel = dkim.Selector("example.org", "sel", load_private_key(pem), expiration=86400)
    signed = dkim.sign(MSG, selectors=[sel]) + MSG

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel._domainkey.example.org."
        return txt

    assert dkimpy.verify(signed, dnsfunc=dnsfunc)
    assert not dkimpy.verify(signed.replace(b"game", b"match"), dnsfunc=dnsfunc)


@pytest.mark.parametrize("canon", [(b"simple", b"simple"), (b"relaxed", b"relaxed"),
                                   (b"simple", b"relaxed"), (b"relaxed", b"simple")])  # fmt: skip
async def test_we_verify_dkimpy_signatures(
    dns_server: LoopbackDNSServer, resolver: Resolver, canon: tuple[bytes, bytes]
) -> None:
    pem = dkim.generate_rsa()
    dns_server.add("sel._domainkey.example.org", "TXT", dkim.txt_record(pem))
    sig = dkimpy.sign(
        MSG, b"sel", b"example.org", pem, canonicalize=canon,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"from"],
    )  # fmt: skip
    results = await dkim.verify(resolver, sig + MSG, now=NOW)
    assert [(r.status, r.trusted) for r in results] == [(dkim.Status.PASS, True)]
    bad = await dkim.verify(resolver, sig + MSG.replace(b"Joe", b"Jim"), now=NOW)
    assert bad[0].status is dkim.Status.FAIL


@pytest.mark.skipif(not have_nacl(), reason="dkimpy needs PyNaCl for ed25519")
async def test_we_verify_dkimpy_ed25519(dns_server: LoopbackDNSServer, resolver: Resolver) -> None:
    seed = (ROOT / "tests/data/dkim/dkimpy/rfc8032_7_1.key").read_bytes()
    dns_server.add("sel._domainkey.example.org", "TXT", dkim.txt_record(load_private_key(seed)))
    sig = dkimpy.sign(MSG, b"sel", b"example.org", seed, signature_algorithm=b"ed25519-sha256")
    results = await dkim.verify(resolver, sig + MSG, now=NOW)
    assert [r.status for r in results] == [dkim.Status.PASS]


# -- OpenDKIM ----------------------------------------------------------------------

TESTMSG = shutil.which("opendkim-testmsg")
needs_opendkim = pytest.mark.skipif(TESTMSG is None, reason="apt package opendkim-tools")


@needs_opendkim
async def test_we_verify_opendkim_signatures(
    dns_server: LoopbackDNSServer, resolver: Resolver, tmp_path: Path
) -> None:
    pem = dkim.generate_rsa()
    keyfile = tmp_path / "key.pem"
    keyfile.write_bytes(pem)
    dns_server.add("sel._domainkey.example.org", "TXT", dkim.txt_record(pem))
    p = subprocess.run(
        [TESTMSG or "", "-C", "-d", "example.org", "-s", "sel", "-k", str(keyfile)],
        input=MSG, capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    signed = p.stdout
    assert signed.startswith(b"DKIM-Signature:")
    results = await dkim.verify(resolver, signed, now=NOW)
    # OpenDKIM 2.11 signs rsa-sha1 relaxed/simple by default: it verifies, but RFC 8301
    # says not to trust it.
    assert [(r.status, r.algorithm, r.trusted) for r in results] == [
        (dkim.Status.PASS, "rsa-sha1", False)
    ]
    changed = await dkim.verify(resolver, signed.replace(b"lost", b"won"), now=NOW)
    assert changed[0].status is dkim.Status.FAIL


NS_SCRIPT = r"""
import socket, subprocess, sys, threading
from app.dns.loopback import LoopbackDNSServer
name, txt, msgfile, conf = sys.argv[1:5]
with open(conf, "w") as f:
    f.write("nameserver 127.0.0.1\n")
subprocess.run(["mount", "--bind", conf, "/etc/resolv.conf"], check=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
server = LoopbackDNSServer()
server.add(name, "TXT", txt)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
def serve():
    while True:
        data, addr = sock.recvfrom(4096)
        out = server.respond(data, False)
        if out:
            sock.sendto(out, addr)
threading.Thread(target=serve, daemon=True).start()
with open(msgfile, "rb") as f:
    p = subprocess.run(["opendkim-testmsg"], stdin=f, capture_output=True, timeout=30)
sys.stdout.write(f"{p.returncode} {p.stderr.decode(errors='replace').strip()}")
"""


def opendkim_verify(tmp_path: Path, name: str, txt: str, message: bytes) -> tuple[int, str]:
    msgfile = tmp_path / "msg.eml"
    msgfile.write_bytes(message)
    cmd = ["unshare", "-rnm", sys.executable, "-c", NS_SCRIPT, name, txt, str(msgfile),
           str(tmp_path / "resolv.conf")]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, timeout=60, cwd=ROOT, text=True,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)})  # fmt: skip
    if p.returncode != 0 or not p.stdout:
        pytest.skip(f"cannot run opendkim in a private namespace: {p.stderr.strip()[-200:]}")
    rc, _, err = p.stdout.partition(" ")
    return int(rc), err


@needs_opendkim
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_opendkim_verifies_our_rsa_signature(tmp_path: Path) -> None:
    pem = dkim.generate_rsa()
    sel = dkim.Selector("example.org", "sel", load_private_key(pem))
    signed = dkim.sign(MSG, selectors=[sel]) + MSG
    name = "sel._domainkey.example.org"
    assert opendkim_verify(tmp_path, name, dkim.txt_record(pem), signed) == (0, "")
    rc, err = opendkim_verify(tmp_path, name, dkim.txt_record(pem), signed + b"extra\r\n")
    assert rc != 0 and "Bad signature" in err
