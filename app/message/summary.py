"""What the store caches about a message when it is stored.

:func:`summarize` never raises on malformed input: a message that cannot be parsed
still gets a summary (empty fields, a single opaque part).
"""

import json
from dataclasses import dataclass
from datetime import datetime

from app.message.dates import parse_date
from app.message.errors import DateError
from app.message.part import parse_with_header
from app.message.thread import parse_message_ids, subject_base


@dataclass(frozen=True, slots=True)
class Summary:
    """Fields the store keeps per message (for ENVELOPE, BODYSTRUCTURE and threading)."""

    structure: str  # JSON of the MIME tree, see Part.to_json / Part.from_json
    message_id: str  # without angle brackets, "" when absent
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject_base: str
    date: datetime | None


def summarize(data: bytes) -> Summary:
    """Summarize a raw message (CRLF line endings); never raises.

    ``structure`` is :meth:`app.message.part.Part.to_json` of the MIME tree, which
    includes the envelope, so IMAP never reparses the message for BODYSTRUCTURE or
    ENVELOPE.
    """
    try:
        root, header = parse_with_header(data)
        env = root.envelope
        date = None
        raw_date = env.date if env is not None else None
        if raw_date:
            try:
                date = parse_date(raw_date)
            except DateError:
                pass
        mid = parse_message_ids(env.message_id or "") if env is not None else ()
        return Summary(
            root.to_json(),
            mid[0] if mid else "",
            parse_message_ids(env.in_reply_to or "") if env is not None else (),
            parse_message_ids(header.get("references") or ""),
            subject_base(env.subject or "") if env is not None else "",
            date,
        )
    except Exception:  # a summary must always be produced; see module docstring
        structure = json.dumps({"t": "application", "s": "octet-stream", "o": [0, 0, len(data)]})
        return Summary(structure, "", (), (), "", None)
