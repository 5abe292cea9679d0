"""Threading fields: Message-ID, In-Reply-To, References (RFC 5322 3.6.4) and the
base subject of RFC 5256 2.1."""

import re

from app.message.encoded import decode_words

_MSGID = re.compile(r"<([^<>]*)>")
_WS = re.compile(r"\s+")
MAX_SUBJECT = 2000  # longer subjects are cut before the (quadratic) leader removal
# RFC 5256 5: subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB = r"\[[^\[\]]*\]\s*"
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; subj-leader = (*subj-blob subj-refwd) / WSP
_LEADER = re.compile(rf"(?:(?:{_BLOB})*(?:re|fwd?)\s*(?:{_BLOB})?:|\s+)", re.I)
_BLOB_RE = re.compile(_BLOB)


def parse_message_ids(value: str) -> tuple[str, ...]:
    """Message IDs in a Message-ID/In-Reply-To/References value, without angle brackets.

    Whitespace inside an ID (from bad folding) is removed. A value without angle
    brackets that is a single word containing ``@`` is taken as one ID.
    """
    ids = []
    for m in _MSGID.finditer(value):
        s = _WS.sub("", m.group(1))
        if s:
            ids.append(s)
    if not ids:
        v = value.strip()
        if "@" in v and not _WS.search(v) and "<" not in v and ">" not in v:
            ids.append(v)
    return tuple(ids)


def message_id(value: str) -> str:
    """The first message ID in ``value`` without angle brackets, or ``""``."""
    ids = parse_message_ids(value)
    return ids[0] if ids else ""


def subject_base(subject: str) -> str:
    """The base subject of RFC 5256 2.1 (used for THREAD=REFERENCES and sorting).

    Encoded words are decoded first; Re:/Fw:/Fwd: leaders with blobs, ``(fwd)``
    trailers and ``[fwd: ...]`` wrappers are removed. Case is kept.
    """
    # RFC 5256 2.1 (1): decode, turn folding/tabs into spaces, collapse runs.
    s = _WS.sub(" ", decode_words(subject[: MAX_SUBJECT * 4])).strip()[:MAX_SUBJECT]
    while True:
        # (2) remove trailers; RFC 5256 5: subj-trailer = "(fwd)" / WSP
        while True:
            t = s.rstrip()
            if t[-5:].lower() == "(fwd)":
                t = t[:-5]
            if t == s:
                break
            s = t
        # (3)-(5) remove leaders, and a leading blob when something remains
        while True:
            prev = s
            while True:
                m = _LEADER.match(s)
                if not m or not m.group(0):
                    break
                s = s[m.end() :]
            m = _BLOB_RE.match(s)
            if m and s[m.end() :]:
                s = s[m.end() :]
            if s == prev:
                break
        # (6) "[fwd: ...]" wrapper
        if s[:5].lower() == "[fwd:" and s.endswith("]"):
            s = s[5:-1]
            continue
        return s.strip()
