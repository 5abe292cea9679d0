"""``pillarbox queue ...`` as a real subprocess against a running server."""

import email
import email.policy
from collections.abc import Iterator
from typing import Any

import pytest

from tests.mailserver import MailServer, start
from tests.queue.servers import (
    cli,
    closed_port_transport,
    message,
    sender_server,
    submit,
    wait_count,
)
from tests.serverproc import run_cli


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailServer]:
    extra = '[queue.transports.relay]\nkind = "smarthost"\nhost = "127.0.0.1"\n'
    s = start(sender_server(tmp_path_factory.mktemp("cli"), closed_port_transport() + extra))
    assert s.proc is not None
    for i in range(3):
        submit(s, [f"r{i}@remote{i}.example"], message(f"cli {i}", f"r{i}@remote{i}.example"))
    wait_count(s.proc, 'msg="delivery attempt done"', 3)
    yield s
    assert s.stop() == 0
    assert not s.proc.tracebacks()


def ids(rows: object) -> list[int]:
    assert isinstance(rows, list)
    return [r["id"] for r in rows]


def test_list_filters_hold_unhold_schedule(server: MailServer) -> None:
    rows = cli(server, "list")
    assert isinstance(rows, list) and len(rows) == 3
    first = rows[0]
    assert first["from"] == "you@example.org" and first["account"] == "you"
    assert ids(cli(server, "list", "--to", "remote1")) == [rows[1]["id"]]
    assert ids(cli(server, "list", "--account", "nobody")) == []
    assert cli(server, "hold", "--id", str(first["id"]))["count"] == 1
    assert [r["hold"] for r in cli(server, "list")] == [True, False, False]
    assert cli(server, "unhold", "--all")["count"] == 3
    before = first["next_attempt"]
    cli(server, "schedule", "--id", str(first["id"]), "1h")
    (after,) = cli(server, "list", "--id", str(first["id"]))
    assert after["next_attempt"] == pytest.approx(before + 3600)
    text = run_cli(["queue", "list"], config=server.config)
    assert text.returncode == 0 and "r0@remote0.example" in text.stdout


def test_schedule_now_makes_an_attempt(server: MailServer) -> None:
    assert server.proc is not None
    first = ids(cli(server, "list"))[0]
    cli(server, "schedule", "--now", "--id", str(first), "0")
    wait_count(server.proc, 'msg="delivery attempt done"', 4)
    (row,) = cli(server, "list", "--id", str(first))
    assert row["attempts"] == 2


def test_transport_dump_fail_drop(server: MailServer) -> None:
    rows = cli(server, "list")
    a, b, _ = ids(rows)
    bad = run_cli(["queue", "transport", "nosuch", "--id", str(a)], config=server.config)
    assert bad.returncode == 1 and "no transport named 'nosuch'" in bad.stderr
    nofilter = run_cli(["queue", "drop"], config=server.config)
    assert nofilter.returncode == 1 and "filter" in nofilter.stderr
    assert cli(server, "transport", "relay", "--id", str(a))["count"] == 1
    assert cli(server, "list", "--id", str(a))[0]["transport"] == "relay"
    dump = run_cli(["queue", "dump", str(a)], config=server.config)
    assert dump.returncode == 0
    assert "Subject: cli 0" in dump.stdout and "DKIM-Signature:" in dump.stdout
    assert cli(server, "fail", "--id", str(a))["count"] == 1
    (dsn,) = [m for m in server.messages("you") if b"multipart/report" in m]
    m: Any = email.message_from_bytes(dsn, policy=email.policy.default)
    per_rcpt = m.get_payload()[1].get_payload()[1]
    assert per_rcpt["Final-Recipient"] == "rfc822; r0@remote0.example"
    assert per_rcpt["Action"] == "failed"
    assert cli(server, "drop", "--all")["count"] == 2
    assert len([m for m in server.messages("you") if b"multipart/report" in m]) == 1
    assert cli(server, "list") == []
    empty = run_cli(["queue", "list"], config=server.config)
    assert "queue is empty" in empty.stdout
    assert b


def test_queue_needs_a_running_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = sender_server(tmp_path_factory.mktemp("down"), "")
    r = run_cli(["queue", "list"], config=s.config)
    s.dns.stop()
    assert r.returncode == 1 and "no server running" in r.stderr


def test_duration_parsing() -> None:
    from app.ops.queue_cli import CLIError, parse_duration

    assert parse_duration("90") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("-2h") == -7200
    assert parse_duration("1d") == 86400
    with pytest.raises(CLIError):
        parse_duration("soon")
