"""What the store caches about a message when it is stored.

:func:`summarize` never raises on malformed input: a message that cannot be parsed
still gets a summary (empty fields, a single text/plain part).
"""

import email.utils
import json
import re
from dataclasses import dataclass
from datetime import datetime

_MSGID = re.compile(rb"<([^<>\s]+)>")


@dataclass(frozen=True, slots=True)
class Summary:
    """Fields the store keeps per message (for ENVELOPE, BODYSTRUCTURE and threading)."""

    structure: str  # JSON of the MIME tree
    message_id: str  # without angle brackets, "" when absent
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject_base: str
    date: datetime | None


def _header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 2]


def _field(headers: bytes, name: bytes) -> bytes:
    m = re.search(rb"(?im)^" + re.escape(name) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)", headers)
    return m.group(1).strip() if m else b""


def summarize(data: bytes) -> Summary:
    """Summarize a raw message (CRLF line endings)."""
    h = _header_block(data)

    def ids(name: bytes) -> tuple[str, ...]:
        return tuple(m.decode("utf-8", "replace") for m in _MSGID.findall(_field(h, name)))

    mid = ids(b"Message-ID")
    subject = _field(h, b"Subject").decode("utf-8", "replace")
    date = None
    raw_date = _field(h, b"Date").decode("ascii", "replace")
    if raw_date:
        try:
            date = email.utils.parsedate_to_datetime(raw_date)
        except (TypeError, ValueError):
            date = None
    structure = json.dumps({"type": "text", "subtype": "plain", "size": len(data)})
    return Summary(
        structure,
        mid[0] if mid else "",
        ids(b"In-Reply-To"),
        ids(b"References"),
        subject.strip(),
        date,
    )
