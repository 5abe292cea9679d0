"""Administrative commands through the real CLI: offline on the database, and on a running
server through the control socket, where they take effect at once."""

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess, run_cli, write_config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def ok(args: list[str], config: Path, stdin: str = "") -> str:
    r = run_cli(args, config=config, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout


def setup_accounts(config: Path) -> None:
    ok(["config", "domain", "add", "example.com"], config)
    ok(["config", "account", "add", "you", "you@example.com"], config)


def test_domain_account_address_alias_offline(config: Path) -> None:
    setup_accounts(config)
    ok(["config", "address", "add", "@example.com", "you"], config)
    ok(["config", "alias", "add", "team@example.com", "you@example.com"], config)
    ok(["config", "address", "add", "you2@example.com", "you"], config)
    ok(["config", "alias", "addmember", "team@example.com", "you2@example.com"], config)
    aliases = json.loads(ok(["config", "alias", "list", "--json"], config))
    assert aliases == [
        {
            "alias": "team@example.com",
            "list_members": False,
            "members": ["you@example.com", "you2@example.com"],
            "post_public": False,
        }
    ]
    ok(["config", "alias", "rmmember", "team@example.com", "you@example.com"], config)
    accounts = json.loads(ok(["config", "account", "list", "--json"], config))
    assert accounts[0]["addresses"] == ["@example.com", "you2@example.com", "you@example.com"]
    r = run_cli(["config", "account", "rm", "you"], config=config)
    assert r.returncode == 1 and "still a member of team@example.com" in r.stderr
    ok(["config", "address", "rm", "@example.com"], config)
    ok(["config", "alias", "rm", "team@example.com"], config)
    ok(["config", "account", "rm", "you"], config)
    ok(["config", "domain", "rm", "example.com"], config)
    assert json.loads(ok(["config", "domain", "list", "--json"], config)) == []


def test_mistakes_are_explained_without_traceback(config: Path) -> None:
    r = run_cli(["config", "account", "add", "you", "you@nowhere.example"], config=config)
    assert r.returncode == 1
    assert "nowhere.example is not configured" in r.stderr
    assert "Traceback" not in r.stderr
    setup_accounts(config)
    r = run_cli(["config", "domain", "rm", "example.com"], config=config)
    assert r.returncode == 1 and "still has addresses" in r.stderr


def test_export_import_round_trip(config: Path, tmp_path: Path) -> None:
    setup_accounts(config)
    ok(["config", "account", "quota", "you", "123456"], config)
    ok(["config", "alias", "add", "list@example.com", "you@example.com"], config)
    exported = ok(["config", "export"], config)
    other = write_config(tmp_path / "other")
    ok(["config", "import", "-"], other, stdin=exported)
    assert ok(["config", "export"], other) == exported
    assert "quota = 123456" in exported


def test_passwords_are_stored_hashed(config: Path) -> None:
    setup_accounts(config)
    ok(["setaccountpassword", "you"], config, stdin="s3cret-Pässword\n")
    ok(["setadminpassword"], config, stdin="admin-secret\n")
    raw = (config.parent / "data" / "admin.db").read_bytes()
    wal = config.parent / "data" / "admin.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert b"s3cret" not in raw and "Pässword".encode() not in raw
    assert b"admin-secret" not in raw
    r = run_cli(["setaccountpassword", "nobody"], config=config, stdin="x\n")
    assert r.returncode == 1 and "no such account" in r.stderr


@pytest.fixture
def server(config: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(["serve"], config=config)
    s.wait_for("pillarbox started")
    yield s
    s.kill()


def test_changes_reach_the_running_server_at_once(config: Path, server: ServerProcess) -> None:
    setup_accounts(config)
    # The server logs the reload of its snapshot for each change it applied itself.
    server.wait_for(lambda s: "dynamic settings loaded" in s and "accounts=1" in s)
    ok(["config", "account", "rm", "you"], config)
    server.wait_for(lambda s: "dynamic settings loaded" in s and "accounts=0" in s)


def test_status_stop_and_graceful_exit(config: Path, server: ServerProcess) -> None:
    assert "running" in ok(["status"], config)
    assert ok(["stop"], config).strip() == "stopped"
    assert server.proc.wait(timeout=30) == 0
    assert not (config.parent / "data" / "ctl").exists()
    assert run_cli(["status"], config=config).returncode == 3
    assert server.tracebacks() == []


def test_sigterm_exits_zero(server: ServerProcess) -> None:
    server.signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    assert any('msg="pillarbox stopped"' in line for line in server.lines)


def test_sighup_reloads_settings_changed_behind_its_back(
    config: Path, server: ServerProcess
) -> None:
    from app.store.admin import AdminDB

    db = AdminDB(config.parent / "data" / "admin.db")
    db.change(lambda b: b.add_domain("direct.example"))
    db.close()
    server.signal(signal.SIGHUP)
    server.wait_for(lambda s: "dynamic settings loaded" in s and "domains=1" in s)


def test_second_server_on_same_data_refuses_to_start(config: Path, server: ServerProcess) -> None:
    r = run_cli(["serve"], config=config, timeout=60)
    assert r.returncode == 1
    assert "another server is running" in r.stdout + r.stderr


def test_config_test_lists_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('hostname = "x..y"\n[limits]\nmax_recipients = 0\n')
    r = run_cli(["config", "test", str(bad)])
    assert r.returncode == 1
    assert "hostname:" in r.stderr and "limits.max_recipients:" in r.stderr
    assert "data_dir:" in r.stderr
    good = tmp_path / "good.toml"
    good.write_text(run_cli(["config", "describe"]).stdout)
    assert run_cli(["config", "test", str(good)]).returncode == 0


def test_config_from_environment_and_flag(tmp_path: Path) -> None:
    a = write_config(tmp_path / "a")
    b = write_config(tmp_path / "b")
    ok(["config", "domain", "add", "a.example"], a)
    r = run_cli(["--config", str(b), "config", "domain", "list", "--json"], config=a)
    assert json.loads(r.stdout) == []


def test_dkim_keys_are_created_listed_and_removed(config: Path) -> None:
    out = json.loads(ok(["config", "domain", "add", "example.com", "--json"], config))
    first = out["dkim_selector"]
    added = json.loads(
        ok(["config", "dkim", "add", "example.com", "--algorithm", "ed25519", "--json"], config)
    )
    assert added["txt"].startswith("v=DKIM1; k=ed25519; p=")
    keys = json.loads(ok(["config", "dkim", "list", "example.com", "--json"], config))
    assert [(k["selector"], k["algorithm"]) for k in keys] == [
        (first, "rsa"),
        (added["selector"], "ed25519"),
    ]
    assert "._domainkey.example.com. TXT" in ok(["config", "dkim", "list"], config)
    ok(["config", "dkim", "rm", "example.com", first], config)
    r = run_cli(["config", "dkim", "rm", "example.com", first], config=config)
    assert r.returncode == 1 and "no selector" in r.stderr
    raw = (config.parent / "data" / "admin.db").read_bytes()
    assert b"PRIVATE KEY" not in ok(["config", "export"], config).encode()
    assert raw  # keys are kept in the admin database, not in the exported settings
