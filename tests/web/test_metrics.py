"""/metrics counts what the services themselves saw: connections, deliveries by
result, authentication attempts by result, and the queue size."""

import imaplib
import smtplib
import urllib.request

import pytest

from tests.mailserver import PASSWORD, setup_server, start
from tests.queue.servers import closed_port_transport, message, submit


def value(text: str, name: str) -> float:
    """The sample ``name`` (with its labels as rendered) or 0 when absent."""
    for line in text.splitlines():
        if line.rsplit(" ", 1)[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_connections_deliveries_logins_and_queue(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start(
        setup_server(
            tmp_path_factory.mktemp("metrics"),
            services=("smtp", "submission", "imap", "admin_http"),
            extra_config=closed_port_transport(),
        )
    )
    try:
        with smtplib.SMTP(
            "127.0.0.1", server.ports["smtp"], local_hostname="c.example", timeout=30
        ) as c:
            c.sendmail("a@remote.example", ["you@example.org"], b"Subject: m\r\n\r\nm\r\n")
        submit(server, ["far@remote.example"], message("queued", "far@remote.example"))
        imap = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=30)
        imap.starttls(ssl_context=server.client_tls())
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("you@example.org", "wrong")
        imap.login("you@example.org", PASSWORD)
        imap.logout()
        url = f"http://127.0.0.1:{server.ports['admin_http']}/metrics"
        with urllib.request.urlopen(url, timeout=30) as r:
            text = r.read().decode()
        assert value(text, 'pillarbox_connections_total{service="smtp"}') == 1
        assert value(text, 'pillarbox_connections_total{service="submission"}') >= 1
        assert value(text, 'pillarbox_connections_total{service="imap"}') == 1
        assert value(text, 'pillarbox_deliveries_total{result="delivered"}') == 1
        assert value(text, 'pillarbox_auth_attempts_total{protocol="imap",result="badcreds"}') == 1
        assert value(text, 'pillarbox_auth_attempts_total{protocol="imap",result="ok"}') == 1
        assert value(text, 'pillarbox_auth_attempts_total{protocol="smtp",result="ok"}') >= 1
        assert value(text, "pillarbox_queue_size") == 1
    finally:
        assert server.stop() == 0
