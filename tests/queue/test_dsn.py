"""DSNs (RFC 3464, RFC 6522) parsed back with Python's email package, field by field."""

import email
import email.policy
from datetime import UTC, datetime
from typing import Any

from app.queue import dsn

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
HEAD = (
    b"From: You <you@example.org>\r\nTo: friend@remote.example\r\n"
    b"Subject: plans\r\nMessage-ID: <m1@example.org>\r\n\r\nthe body is not copied\r\n"
)
LONG_REPLY = (
    "550 5.1.1 The email account that you tried to reach does not exist. Please try "
    "double-checking the recipient's email address for typos or unnecessary spaces. "
    "Learn more at https://support.example/mail/?p=NoSuchUser"
)


def report(*rcpts: dsn.Recipient, to: str = "you@example.org") -> dsn.Report:
    return dsn.Report(
        reporting_mta="mail.test.example",
        from_address="postmaster@mail.test.example",
        to_address=to,
        recipients=rcpts,
        original_head=HEAD,
        arrival=datetime(2026, 11, 25, 11, 0, 0, tzinfo=UTC),
        original_message_id="<m1@example.org>",
        original_subject="plans",
    )


def failed(addr: str = "friend@remote.example") -> dsn.Recipient:
    return dsn.Recipient(
        address=addr,
        action=dsn.Action.FAILED,
        status="5.1.1",
        remote_mta="mx.remote.example",
        diagnostic=LONG_REPLY,
        smtp_reply=True,
        last_attempt=datetime(2026, 11, 25, 11, 30, 0, tzinfo=UTC),
    )


def parse(data: bytes) -> Any:
    m = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(m, email.message.EmailMessage)
    return m


def test_failure_dsn_structure_and_fields() -> None:
    data = dsn.compose(report(failed()), now=NOW, message_id_domain="mail.test.example")
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")
    m = parse(data)
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    assert m["To"].addresses[0].addr_spec == "you@example.org"
    assert m["From"].addresses[0].addr_spec == "postmaster@mail.test.example"
    assert m["Subject"] == "mail delivery failed"
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["In-Reply-To"] == "<m1@example.org>"
    assert m["Date"].datetime == NOW
    text, status, headers = m.get_payload()
    assert text.get_content_type() == "text/plain"
    assert "friend@remote.example" in text.get_content()
    assert "does not exist" in text.get_content()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_rcpt = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mail.test.example"
    assert per_message["Arrival-Date"] == "Wed, 25 Nov 2026 11:00:00 +0000"
    assert per_rcpt["Final-Recipient"] == "rfc822; friend@remote.example"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx.remote.example"
    # Folded for the line limit; unfolded it is the whole remote reply.
    assert per_rcpt["Diagnostic-Code"] == f"smtp; {LONG_REPLY}"
    assert per_rcpt["Last-Attempt-Date"] == "Wed, 25 Nov 2026 11:30:00 +0000"
    assert per_rcpt["Will-Retry-Until"] is None
    assert headers.get_content_type() == "text/rfc822-headers"
    copied = headers.get_payload()
    assert "Subject: plans" in copied and "Message-ID: <m1@example.org>" in copied
    assert "the body is not copied" not in copied


def test_delayed_dsn_has_will_retry_until() -> None:
    r = dsn.Recipient(
        address="friend@remote.example",
        action=dsn.Action.DELAYED,
        status=dsn.status_for(451, "4.3.0", False),
        diagnostic="451 4.3.0 later",
        smtp_reply=True,
        will_retry_until=datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC),
    )
    m = parse(dsn.compose(report(r), now=NOW, message_id_domain="x.example"))
    assert m["Subject"] == "mail delivery delayed"
    per_rcpt = m.get_payload()[1].get_payload()[1]
    assert per_rcpt["Action"] == "delayed"
    assert per_rcpt["Status"] == "4.3.0"
    assert per_rcpt["Will-Retry-Until"] == "Thu, 26 Nov 2026 12:00:00 +0000"
    assert "Remote-MTA" not in per_rcpt  # none known: left out (RFC 3464 2.3.5)


def test_several_recipients_in_one_dsn() -> None:
    m = parse(
        dsn.compose(
            report(failed("a@remote.example"), failed("b@remote.example")),
            now=NOW,
            message_id_domain="x.example",
        )
    )
    blocks = m.get_payload()[1].get_payload()
    assert [b["Final-Recipient"] for b in blocks[1:]] == [
        "rfc822; a@remote.example",
        "rfc822; b@remote.example",
    ]


def test_utf8_addresses_use_global_types() -> None:
    m = parse(
        dsn.compose(report(failed("jöran@rëmote.example")), now=NOW, message_id_domain="x.example")
    )
    _, status, headers = m.get_payload()
    assert status.get_content_type() == "message/global-delivery-status"
    assert headers.get_content_type() == "message/global-headers"
    assert b"utf-8; j\xc3\xb6ran@r\xc3\xabmote.example" in status.as_bytes()


def test_status_and_diagnostic_helpers() -> None:
    assert dsn.status_for(550, "5.1.1", True) == "5.1.1"
    assert dsn.status_for(550, "1.1", True) == "5.1.1"
    assert dsn.status_for(451, "4.4.1", True) == "5.4.1"  # failed for good after 4xx
    assert dsn.status_for(0, "", False) == "4.0.0"
    assert dsn.status_for(421, "", True) == "5.0.0"
    assert dsn.smtp_diagnostic(550, "1.1", "no\r\nsuch user") == "550 5.1.1 no such user"
    assert dsn.smtp_diagnostic(0, "", "connection refused") == "connection refused"
