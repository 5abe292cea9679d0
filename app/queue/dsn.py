"""Delivery status notifications (RFC 3464) for the sender of a queued message.

A DSN is a ``multipart/report; report-type=delivery-status`` message (RFC 6522):
a human-readable text part, a ``message/delivery-status`` part with one
per-message field group and one group per recipient, and the original message's
header as ``text/rfc822-headers``. For messages with non-ASCII addresses the
RFC 6533 types are used (``message/global-delivery-status``,
``message/global-headers``, address type ``utf-8``).

Composition is pure (no I/O): the queue service signs and stores the result.
"""

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.message.dates import format_date

MAX_HEADER_COPY = 256 * 1024


class Action(enum.StrEnum):
    """RFC 3464 2.3.3."""

    FAILED = "failed"
    DELAYED = "delayed"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient's status in a DSN."""

    address: str
    action: Action
    status: str  # enhanced status code, e.g. "5.1.1" (RFC 3463)
    remote_mta: str = ""  # host name (or IP) that gave the reply; "" when none
    diagnostic: str = ""  # the remote SMTP reply, code and text, or our error
    smtp_reply: bool = False  # whether diagnostic is an SMTP reply (type "smtp")
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a DSN says."""

    reporting_mta: str  # our host name
    from_address: str  # the DSN's From (postmaster@hostname)
    to_address: str  # the original envelope sender
    recipients: tuple[Recipient, ...]
    original_head: bytes  # the header section of the original message
    arrival: datetime | None = None
    original_message_id: str = ""
    original_subject: str = ""


def status_for(code: int, secode: str, permanent: bool) -> str:
    """The RFC 3463 status of a failure: the reply's enhanced code when it has one,
    else the class of its code (``5.0.0``/``4.0.0``)."""
    cls = "5" if permanent else "4"
    if secode:
        parts = secode.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            return f"{cls}.{parts[1]}.{parts[2]}" if parts[0] in "45" else secode
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return f"{cls}.{secode}"
    return f"{cls}.0.0"


def smtp_diagnostic(code: int, secode: str, text: str) -> str:
    """An SMTP reply as one line for Diagnostic-Code and the queue listing:
    ``550 5.1.1 text`` (the enhanced code gets the reply's class when given without)."""
    if not code:
        return _one_line(text)
    sec = secode
    if sec and len(sec.split(".")) == 2:
        sec = f"{str(code)[0]}.{sec}"
    return " ".join(p for p in (str(code), sec, _one_line(text)) if p)


def _one_line(text: str) -> str:
    """Field values must not contain line breaks; multi-line replies are joined."""
    return " ".join(part.strip() for part in text.replace("\r", "\n").split("\n") if part.strip())


def _fold(name: str, value: str, width: int = 78) -> str:
    """A header field folded at spaces (RFC 5322 2.2.3), ending in CRLF."""
    words = value.split(" ")
    lines: list[str] = []
    line = f"{name}:"
    for w in words:
        if len(line) + 1 + len(w) > width and line.strip() not in (f"{name}:", ""):
            lines.append(line)
            line = " " + w
        else:
            line += " " + w
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _addr_type(address: str) -> str:
    return "rfc822" if address.isascii() else "utf-8"


def _header_section(head: bytes) -> bytes:
    """The original header section, ending in one CRLF (no body)."""
    head = head[:MAX_HEADER_COPY]
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = head.find(sep)
        if i >= 0:
            head = head[: i + len(sep) // 2]
            break
    if not head.endswith(b"\n"):
        head += b"\r\n"
    return head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def delivery_status(report: Report, now: datetime) -> str:
    """The message/delivery-status body: per-message fields, then per-recipient groups."""
    out = [_fold("Reporting-MTA", f"dns; {report.reporting_mta}")]
    if report.arrival is not None:
        out.append(_fold("Arrival-Date", format_date(report.arrival)))
    for r in report.recipients:
        out.append("\r\n")
        t = _addr_type(r.address)
        out.append(_fold("Final-Recipient", f"{t}; {r.address}"))
        out.append(_fold("Action", str(r.action)))
        out.append(_fold("Status", r.status))
        if r.remote_mta:
            out.append(_fold("Remote-MTA", f"dns; {r.remote_mta}"))
        if r.diagnostic:
            kind = "smtp" if r.smtp_reply else "x-pillarbox"
            out.append(_fold("Diagnostic-Code", f"{kind}; {_one_line(r.diagnostic)}"))
        out.append(_fold("Last-Attempt-Date", format_date(r.last_attempt or now)))
        if r.will_retry_until is not None:
            out.append(_fold("Will-Retry-Until", format_date(r.will_retry_until)))
    return "".join(out)


def _text(report: Report) -> str:
    failed = [r for r in report.recipients if r.action is Action.FAILED]
    delayed = [r for r in report.recipients if r.action is Action.DELAYED]
    lines = []
    subj = _one_line(report.original_subject)
    about = f' with subject "{subj}"' if subj else ""
    if failed:
        lines += [
            f"Delivery of your message{about} has failed permanently for these recipients:",
            "",
        ]
        for r in failed:
            lines += [f"  {r.address}", f"    error: {_one_line(r.diagnostic) or r.status}", ""]
        lines += ["The message will not be delivered to them.", ""]
    if delayed:
        lines += [f"Delivery of your message{about} is delayed for these recipients:", ""]
        for r in delayed:
            lines += [f"  {r.address}", f"    last error: {_one_line(r.diagnostic) or r.status}"]
            if r.will_retry_until is not None:
                lines.append(f"    delivery is retried until {format_date(r.will_retry_until)}")
            lines.append("")
        lines += ["You do not need to do anything now; you will hear if it fails for good.", ""]
    lines += ["The header of your message is attached.", ""]
    return "\r\n".join(lines)


def compose(report: Report, *, now: datetime, message_id_domain: str, boundary: str = "") -> bytes:
    """The complete DSN message (header and body), CRLF line endings."""
    utf8 = (
        not all(r.address.isascii() for r in report.recipients) or not report.to_address.isascii()
    )
    failed = any(r.action is Action.FAILED for r in report.recipients)
    subject = "mail delivery failed" if failed else "mail delivery delayed"
    boundary = boundary or "dsn-" + os.urandom(12).hex()
    status_type = "message/global-delivery-status" if utf8 else "message/delivery-status"
    headers_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    head = (
        f"From: Mail Delivery Subsystem <{report.from_address}>\r\n"
        f"To: <{report.to_address}>\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {format_date(now)}\r\n"
        f"Message-ID: <{os.urandom(12).hex()}@{message_id_domain}>\r\n"
        + (
            f"In-Reply-To: {report.original_message_id}\r\n"
            if report.original_message_id.startswith("<")
            else ""
        )
        + "Auto-Submitted: auto-replied\r\n"  # RFC 3834 5
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type="delivery-status";\r\n'
        f'\tboundary="{boundary}"\r\n'
        "\r\n"
    )
    body = (
        "This is a MIME-formatted delivery status notification.\r\n"
        f"\r\n--{boundary}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{_text(report)}"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: {status_type}\r\n"
        + ("Content-Transfer-Encoding: 8bit\r\n" if utf8 else "")
        + "\r\n"
        f"{delivery_status(report, now)}"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: {headers_type}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    )
    tail = f"\r\n--{boundary}--\r\n"
    return (head + body).encode() + _header_section(report.original_head) + tail.encode()


def recipients_failed(
    entries: Sequence[tuple[str, int, str, str, str, datetime | None]],
) -> tuple[Recipient, ...]:
    """Recipients for a failure DSN from (address, code, secode, error, remote_mta,
    last attempt) tuples; the error is the remote reply when code is set."""
    return tuple(
        Recipient(
            address=a,
            action=Action.FAILED,
            status=status_for(code, secode, True),
            remote_mta=mta,
            diagnostic=err,
            smtp_reply=bool(code),
            last_attempt=last,
        )
        for a, code, secode, err, mta, last in entries
    )
