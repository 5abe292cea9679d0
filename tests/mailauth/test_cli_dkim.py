"""``pillarbox dkim ...`` in a real subprocess, with keys served by a loopback DNS server."""

import json
import subprocess
import sys
from pathlib import Path

from app.dns.loopback import LoopbackDNSServer

ROOT = Path(__file__).resolve().parent.parent.parent
MSG = b"From: Joe <joe@example.org>\r\nTo: s@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "dkim", *args],
        input=stdin, capture_output=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_keys_txt_sign_verify_lookup(dns_server: LoopbackDNSServer, tmp_path: Path) -> None:
    for gen, ktype in ((["genrsa", "--bits", "1024"], "rsa"), (["gened25519"], "ed25519")):
        p = run(*gen)
        assert p.returncode == 0 and p.stdout.startswith(b"-----BEGIN PRIVATE KEY-----")
        key = tmp_path / f"{ktype}.pem"
        key.write_bytes(p.stdout)
        txt = run("txt", str(key)).stdout.decode().strip()
        assert txt.startswith(f"v=DKIM1; k={ktype}; p=")
        assert json.loads(run("txt", "--json", str(key)).stdout)["txt"] == txt
        dns_server.add(f"{ktype}._domainkey.example.org", "TXT", txt)

        msg = tmp_path / "msg.eml"
        msg.write_bytes(MSG)
        signed = run("sign", "--domain", "example.org", "--selector", ktype, "--key", str(key),
                     str(msg))  # fmt: skip
        assert signed.returncode == 0, signed.stderr
        assert signed.stdout.startswith(b"DKIM-Signature:") and signed.stdout.endswith(MSG)
        (tmp_path / "signed.eml").write_bytes(signed.stdout)

        out = run("verify", "--json", "--dns", dns_server.address, str(tmp_path / "signed.eml"))
        assert out.returncode == 0, out.stderr
        sigs = json.loads(out.stdout)["signatures"]
        assert [(s["domain"], s["selector"], s["status"], s["trusted"]) for s in sigs] == [
            ("example.org", ktype, "pass", True)
        ]
        human = run("verify", "--dns", dns_server.address, "-", stdin=signed.stdout + b"x")
        assert human.stdout.decode().startswith(f"fail  d=example.org s={ktype}")

        looked = run("lookup", "--json", "--dns", dns_server.address, ktype, "example.org")
        info = json.loads(looked.stdout)
        assert info["status"] == "pass" and info["key_type"] == ktype and info["txt"] == txt


def test_errors_are_short_and_exit_1(dns_server: LoopbackDNSServer, tmp_path: Path) -> None:
    p = run("lookup", "--dns", dns_server.address, "nope", "example.org")
    assert p.returncode == 1 and b"permerror" in p.stderr and b"Traceback" not in p.stderr
    p = run("txt", str(tmp_path / "missing.pem"))
    assert p.returncode == 1 and b"Traceback" not in p.stderr
    (tmp_path / "bad.pem").write_bytes(b"garbage")
    p = run("sign", "--domain", "d.example", "--selector", "s", "--key", str(tmp_path / "bad.pem"),
            "-", stdin=MSG)  # fmt: skip
    assert p.returncode == 1 and p.stderr.startswith(b"pillarbox: ")
    p = run("genrsa", "--bits", "512")
    assert p.returncode == 1 and b"RFC 8301" in p.stderr
    out = run("verify", "--dns", dns_server.address, "-", stdin=MSG)
    assert out.stdout.strip() == b"no dkim signatures"
