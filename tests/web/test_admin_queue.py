"""The admin queue page: list, hold, release, retry now and drop, as `pillarbox queue`."""

import pytest

from tests.mailserver import setup_server, start
from tests.queue.servers import cli, closed_port_transport, message, submit
from tests.serverproc import run_cli
from tests.web.helpers import Client


def test_queue_page_holds_releases_retries_and_drops(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = setup_server(
        tmp_path_factory.mktemp("webqueue"),
        services=("submission", "admin_http"),
        extra_config=closed_port_transport(),
    )
    r = run_cli(["setadminpassword"], config=server.config, stdin="admin-pw\n")
    assert r.returncode == 0, r.stderr
    start(server)
    try:
        submit(server, ["one@remote.example"], message("first", "one@remote.example"))
        submit(server, ["two@remote.example"], message("second", "two@remote.example"))
        base = f"http://127.0.0.1:{server.ports['admin_http']}/admin/"
        c = Client()
        page = c.get(base)
        page = c.post(base + "login", {"csrf": page.csrf, "password": "admin-pw"})
        page = c.get(base + "queue")
        assert page.status == 200
        assert "one@remote.example" in page.body and "two@remote.example" in page.body
        rows = {r["to"]: r["id"] for r in cli(server, "list")}
        page = c.post(
            base + "queue",
            {"csrf": page.csrf, "id": str(rows["one@remote.example"]), "action": "hold"},
        )
        assert "Done." in page.body and "held" in page.body
        assert {r["to"]: r["hold"] for r in cli(server, "list")} == {
            "one@remote.example": True,
            "two@remote.example": False,
        }
        page = c.post(
            base + "queue",
            {"csrf": page.csrf, "id": str(rows["one@remote.example"]), "action": "unhold"},
        )
        page = c.post(
            base + "queue",
            {"csrf": page.csrf, "id": str(rows["two@remote.example"]), "action": "retry"},
        )
        assert "Done." in page.body
        page = c.post(
            base + "queue",
            {"csrf": page.csrf, "id": str(rows["two@remote.example"]), "action": "drop"},
        )
        assert [r["to"] for r in cli(server, "list")] == ["one@remote.example"]
        no_csrf = c.post(base + "queue", {"id": str(rows["one@remote.example"]), "action": "drop"})
        assert no_csrf.status == 403
        assert len(cli(server, "list")) == 1
    finally:
        assert server.stop() == 0
