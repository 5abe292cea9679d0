"""A started server has not loaded what only some requests need.

``pillarbox serve`` runs in a child interpreter with every service on; once it logs
that it has started, the child lists the heavy modules present and stops itself.
Each of these costs memory for the life of the process (cryptography alone maps
about 9 MiB): they must load on first use (a DKIM signature, a DNS lookup, a web page).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

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
)

CHILD = textwrap.dedent(
    """
    import json, logging, os, signal, sys

    class Started(logging.Handler):
        def emit(self, record):
            if record.getMessage() == "pillarbox started":
                print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    # On the serve module's logger: start-up replaces the root logger's handlers.
    logging.getLogger("app.serve").addHandler(Started())
    from app.cli import main
    sys.exit(main(["serve"]))
    """
)


def test_serve_starts_without_heavy_modules(tmp_path: Path) -> None:
    listeners = textwrap.dedent(
        """
        [listeners.local]
        ips = ["127.0.0.1"]
        smtp = { enabled = true, port = 0 }
        submission = { enabled = true, port = 0 }
        imap = { enabled = true, port = 0 }
        admin_http = { enabled = true, port = 0 }
        """
    )
    cfg = write_config(tmp_path, listeners)
    for args in (
        ["config", "domain", "add", "example.com"],
        ["config", "account", "add", "you", "you@example.com"],
    ):
        r = run_cli(args, config=cfg)
        assert r.returncode == 0, r.stderr
    p = subprocess.run(
        [sys.executable, "-c", CHILD], env=cli_env(cfg), capture_output=True, text=True, timeout=120
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("MODULES ")]
    assert lines, p.stdout + p.stderr
    modules = json.loads(lines[0].removeprefix("MODULES "))
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert loaded == [], loaded
    assert "app.smtp.server" in modules and "app.imap.server" in modules


def test_service_map_names_each_modules_starters() -> None:
    import importlib

    from app.serve import SERVICE_MODULES

    for modname in set(SERVICE_MODULES.values()):
        starters = importlib.import_module(modname).STARTERS
        assert {n for n, m in SERVICE_MODULES.items() if m == modname} == set(starters)


def test_a_server_without_smtp_listeners_does_not_load_the_smtp_server(tmp_path: Path) -> None:
    listeners = textwrap.dedent(
        """
        [listeners.local]
        ips = ["127.0.0.1"]
        imap = { enabled = true, port = 0 }
        """
    )
    cfg = write_config(tmp_path, listeners)
    r = run_cli(["config", "domain", "add", "example.com"], config=cfg)
    assert r.returncode == 0, r.stderr
    p = subprocess.run(
        [sys.executable, "-c", CHILD], env=cli_env(cfg), capture_output=True, text=True, timeout=120
    )
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("MODULES ")]
    assert lines, p.stdout + p.stderr
    modules = set(json.loads(lines[0].removeprefix("MODULES ")))
    assert "app.imap.server" in modules
    for absent in ("app.smtp.server", "app.smtp.session", "app.delivery.checks", "app.web.http"):
        assert absent not in modules


def test_command_word_skips_the_config_option() -> None:
    from app.cli import _command_of

    assert _command_of(["--config", "x.toml", "serve"]) == "serve"
    assert _command_of(["serve", "--json"]) == "serve"
    assert _command_of(["--help"]) is None
    assert _command_of(["config", "domain", "add", "serve"]) == "config"
