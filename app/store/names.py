"""Mailbox names: "/"-separated hierarchy, Unicode NFC, "Inbox" case-insensitive."""

import unicodedata

from app.store.errors import InvalidMailboxName

SEPARATOR = "/"
INBOX = "Inbox"
MAX_NAME = 1000


def normalize_mailbox_name(name: str) -> str:
    """Return the stored form of a mailbox name or raise :class:`InvalidMailboxName`.

    INBOX is case-insensitive (RFC 9051 5.1), including as the first component of a
    child ("INBOX/x" is "Inbox/x"); names are stored in NFC so visually equal
    names are equal (RFC 5198).
    """
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise InvalidMailboxName(name, "empty")
    if len(name) > MAX_NAME:
        raise InvalidMailboxName(name, "too long")
    parts = name.split(SEPARATOR)
    if any(p == "" for p in parts):
        raise InvalidMailboxName(name, "empty hierarchy component")
    for c in name:
        if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0:
            raise InvalidMailboxName(name, "control character")
    if parts[0].lower() == "inbox":
        parts[0] = INBOX
    return SEPARATOR.join(parts)


def parents(name: str) -> list[str]:
    """Superior names of ``name``, shortest first: "a/b/c" -> ["a", "a/b"]."""
    parts = name.split(SEPARATOR)
    return [SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]
