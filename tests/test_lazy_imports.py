"""A started server has not loaded what only some requests need.

``pillarbox serve`` runs in a child interpreter with every service on; once it logs
that it has started, the child lists the heavy modules present, then connects to each
of its ports, reads the greeting, lists the modules again and stops itself. Each of
these costs memory for the life of the process (cryptography alone maps about 9 MiB):
they must load on first use (a DKIM signature, a DNS lookup, a web page), and the
protocol code of each port with its first connection.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from app.tls.certs import generate_self_signed
from tests.serverproc import cli_env, run_cli, write_config

HEAVY = (
    "cryptography",
    "dns",  # dnspython
    "idna",
    "bottle",
    "email",
    "http.client",
    "xml",
    "plistlib",
    "importlib.metadata",
    "tempfile",
    # OpenSSL (about 4.5 MiB): with the first TLS connection, hash or login.
    "ssl",
    "_ssl",
    "hashlib",
    "_hashlib",
    "hmac",
    "secrets",
)
# The code behind the ports: loaded by the first connection to each.
STACKS = ("app.smtp.server", "app.delivery.checks", "app.imap.server", "app.web.routes")

CHILD = textwrap.dedent(
    """
    import json, logging, os, signal, socket, sys, threading

    GREETING = {
        "smtp": b"220 ", "submission": b"220 ", "imap": b"* OK", "imaps": b"* OK",
        "admin_http": b"HTTP/",
    }
    ports = {}

    def visit():
        for service, address in ports.items():
            host, port = address.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=30) as s:
                if service == "imaps":  # the server builds its TLS context now
                    import ssl
                    ctx = ssl.create_default_context(cafile=os.environ["TEST_CA"])
                    s = ctx.wrap_socket(s, server_hostname="mail.test.example")
                if service == "admin_http":
                    s.sendall(b"GET /no-such-page HTTP/1.0\\r\\n\\r\\n")
                reply = s.recv(100)
                print("GREETING " + json.dumps([service, reply.startswith(GREETING[service])]))
        print("AFTER " + json.dumps(sorted(sys.modules)), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    class Started(logging.Handler):
        def emit(self, record):
            if record.getMessage() == "listening":
                ports[record.service] = record.address
            if record.getMessage() == "pillarbox started":
                print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
                threading.Thread(target=visit).start()

    # On the app loggers: start-up replaces the root logger's handlers.
    logging.getLogger("app").addHandler(Started())
    from app.cli import main
    sys.exit(main(["serve"]))
    """
)


def _modules(stdout: str, prefix: str) -> list[str]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith(prefix + " ")]
    assert lines, stdout
    modules: list[str] = json.loads(lines[0].removeprefix(prefix + " "))
    return modules


def test_serve_starts_without_heavy_modules(tmp_path: Path) -> None:
    listeners = textwrap.dedent(
        """
        [listeners.local]
        ips = ["127.0.0.1"]
        smtp = { enabled = true, port = 0 }
        submission = { enabled = true, port = 0 }
        imap = { enabled = true, port = 0 }
        imaps = { enabled = true, port = 0 }
        admin_http = { enabled = true, port = 0 }
        [listeners.local.tls]
        certificates = [{ cert = "cert.pem", key = "key.pem" }]
        """
    )
    generate_self_signed(["mail.test.example"], tmp_path / "cert.pem", tmp_path / "key.pem")
    cfg = write_config(tmp_path, listeners)
    for args in (
        ["config", "domain", "add", "example.com"],
        ["config", "account", "add", "you", "you@example.com"],
    ):
        r = run_cli(args, config=cfg)
        assert r.returncode == 0, r.stderr
    env = cli_env(cfg) | {"TEST_CA": str(tmp_path / "cert.pem")}
    p = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    modules = _modules(p.stdout + p.stderr, "MODULES")
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert loaded == [], loaded
    assert [m for m in STACKS if m in modules] == []
    greetings = [
        json.loads(ln.removeprefix("GREETING "))
        for ln in p.stdout.splitlines()
        if ln.startswith("GREETING ")
    ]
    assert sorted(greetings) == [
        ["admin_http", True],
        ["imap", True],
        ["imaps", True],
        ["smtp", True],
        ["submission", True],
    ]
    after = _modules(p.stdout, "AFTER")
    assert [m for m in STACKS if m not in after] == []


def test_service_map_names_each_modules_starters() -> None:
    import importlib

    from app.serve import SERVICE_MODULES

    for modname in set(SERVICE_MODULES.values()):
        starters = importlib.import_module(modname).STARTERS
        assert {n for n, m in SERVICE_MODULES.items() if m == modname} == set(starters)


def test_command_word_skips_the_config_option() -> None:
    from app.cli import _command_of

    assert _command_of(["--config", "x.toml", "serve"]) == "serve"
    assert _command_of(["serve", "--json"]) == "serve"
    assert _command_of(["--help"]) is None
    assert _command_of(["config", "domain", "add", "serve"]) == "config"
