"""Full-text index of an account (SQLite FTS5) and the message filters SEARCH uses.

Design (schema migration 2, in :mod:`app.store.schema`):

- Two *contentless* FTS5 tables (``content=''``, ``contentless_delete=1``) with the
  ``trigram`` tokenizer (case-insensitive, no diacritic folding), rows keyed by a
  text id:
  ``message_fts_hdr`` (``detail=full``): ``header`` (the top-level header, unfolded,
  encoded words decoded) and the decoded ``From``/``To``/``Cc``/``Bcc``/``Subject``
  values; ``message_fts_body`` (``detail=none``): ``body``, the decoded text of
  every ``text/*`` part and the headers of embedded messages.
- IMAP SEARCH text keys are case-insensitive *substring* matches (RFC 9051 6.4.4).
  Header keys: a trigram phrase query ``"abcd"`` matches exactly the rows whose
  column contains the case-folded string (trigrams ``abc``, ``bcd`` at consecutive
  positions), so the index answers alone. Body: positions of every trigram of a
  4 KiB body made the index larger than the message and delivery 25% slower
  (measured: 2,700/s vs 3,700/s at 32 deliverers), so the body index keeps no
  positions. A 3-character string is one trigram: the index answers exactly.
  Longer strings: rows holding all of its trigrams are *candidates*, and each is
  verified: inline single-part plain-text bodies (US-ASCII/UTF-8, identity
  encoding) by SQLite itself for an ASCII string (``LIKE`` over the raw body bytes,
  ~6 µs per 4 KiB message with no Python work per row), the others by decoding the
  message's text again (~8 µs per 4 KiB single-part message, ~15 µs multipart), so
  a body search costs in proportion to its candidates: ~30 ms for all 5,000.
  Strings shorter than 3 characters, and messages stored before the index existed,
  are verified the same way (a scan). Results are always exact.
- Copies share index rows: ``message_text`` maps a message to a ``text_id`` (the
  FTS rowid). COPY adds a mapping row, MOVE changes nothing (the message row keeps
  its id), expunge removes the mapping and, with the last mapping of a text, its
  FTS rows. A new text gets ``max(text_id) + 1``: ids above the largest live
  mapping have no FTS row left, so they can be reused safely (message ids cannot:
  a copy may still refer to the text of an expunged original).
- Everything is written inside the committer's transaction, in the same savepoint
  as the message row. Text extraction (transfer and charset decoding, ~9 µs for
  4 KiB) happens before, off the committer: on the loop for small messages, in the
  executor for large ones. At most MAX_BODY_TEXT (1 MiB) characters of body text
  and MAX_HEADER_TEXT (64 KiB) of header text are indexed per message; text beyond
  that is not found by SEARCH (a documented limit: it bounds the committer's time
  per message, ~40 ms for 1 MiB of prose).
- :meth:`app.store.account.AccountStore.index_missing` indexes messages stored
  before migration 2, in batches.
"""

import binascii
import json
import mmap
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from app.message.encoded import decode_base64, decode_charset, decode_words
from app.message.headers import header_text

MiB = 1024 * 1024
# Decoded body text indexed per message, in characters (1 MiB of ASCII text costs
# ~40 ms of committer time; a cap keeps one huge message from stalling a batch).
MAX_BODY_TEXT = 1 * MiB
MAX_HEADER_TEXT = 64 * 1024
# Raw (encoded) bytes read per part: base64 is 4/3 of the decoded size.
_MAX_RAW = MAX_BODY_TEXT * 3 // 2 + 1024

HEADER_COLUMNS = ("header", "hfrom", "hto", "hcc", "hbcc", "subject")
COLUMNS = (*HEADER_COLUMNS, "body")


_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
Data = bytes | mmap.mmap


@dataclass(frozen=True, slots=True)
class IndexText:
    """What is indexed for one message (already decoded and size-limited)."""

    header: str
    body: str
    from_: str
    to: str
    cc: str
    bcc: str
    subject: str

    def values(self) -> tuple[str, ...]:
        """Column values in COLUMNS order."""
        return (self.header, self.body, self.from_, self.to, self.cc, self.bcc, self.subject)


EMPTY = IndexText("", "", "", "", "", "", "")


Row = tuple[Any, ...]


def _rows(conn: apsw.Connection, sql: str, args: Sequence[Any] = ()) -> list[Row]:
    rows: list[Row] = conn.execute(sql, args).fetchall()
    return rows


# --- extraction ------------------------------------------------------------------
# This runs for every delivery, on the event loop for small messages: it walks the
# structure JSON as plain dicts (Part.from_json would also rebuild the envelopes,
# twice the cost) and decodes encoded words only when a header has one.

_UNFOLD = re.compile(r"\r?\n(?=[ \t])")
_WANTED = re.compile(r"^(from|to|cc|bcc|subject)[ \t]*:[ \t]*(.*?)\r?$", re.M | re.I)


def _header_text(data: Data, start: int, end: int) -> tuple[str, dict[str, str]]:
    """The unfolded, decoded header block and the first From/To/Cc/Bcc/Subject values."""
    text = header_text(bytes(data[start : min(end, start + MAX_HEADER_TEXT)]))
    text = _UNFOLD.sub("", text)
    if "=?" in text:
        text = decode_words(text)
    first: dict[str, str] = {}
    for m in _WANTED.finditer(text):
        first.setdefault(m.group(1).lower(), m.group(2))
    return text, first


def _decode(data: Data, start: int, end: int, enc: str, charset: str, budget: int) -> str:
    raw = bytes(data[start : min(end, start + min(_MAX_RAW, budget * 3 // 2 + 4))])
    if enc == "base64":
        body = decode_base64(raw)
    elif enc == "quoted-printable":
        body = binascii.a2b_qp(raw)
    else:
        body = raw
    s = decode_charset(body, charset)
    if s is None:
        s = body.decode("utf-8", "replace")
    return s[:budget]


def _charset(o: dict[str, Any]) -> str:
    for k, v in o.get("p", ()):
        if k == "charset":
            return str(v)
    return ""


def _texts(data: Data, o: dict[str, Any]) -> Iterator[str]:
    """Indexable text below structure node ``o`` in document order (embedded headers
    included); see Part.to_json for the keys."""
    children = o.get("c")
    if children:
        for c in children:
            yield from _texts(data, c)
        return
    _, bstart, end = o["o"]
    enc = o.get("e", "")
    inner_o = o.get("m")
    if inner_o is not None:
        inner: Data = data
        if enc not in _IDENTITY:
            # Offsets of a message in base64/QP index its decoded body.
            raw = bytes(data[bstart : min(end, bstart + _MAX_RAW)])
            inner = decode_base64(raw) if enc == "base64" else binascii.a2b_qp(raw)
        ih, ib, _ = inner_o["o"]
        yield _header_text(inner, ih, ib)[0]
        yield from _texts(inner, inner_o)
        return
    if o.get("t") == "text":
        yield _decode(data, bstart, end, enc, _charset(o), MAX_BODY_TEXT)


def extract(data: Data, structure: str, *, header: bool = True) -> IndexText:
    """The index text of a stored message (CRLF repaired) with MIME tree ``structure``
    (:meth:`app.message.part.Part.to_json`); ``header`` False leaves the header
    fields empty (cheaper, for body-only checks).

    Never raises: a message whose structure cannot be read indexes its header only.
    """
    try:
        root: dict[str, Any] | None = json.loads(structure)
        if not isinstance(root, dict):
            root = None
    except ValueError:
        root = None
    try:
        body_start = int(root["o"][1]) if root is not None else len(data)
        htext, first = _header_text(data, 0, body_start) if header else ("", {})
        body: list[str] = []
        left = MAX_BODY_TEXT
        if root is not None:
            for t in _texts(data, root):
                if left <= 0:
                    break
                body.append(t[:left])
                left -= len(t)
        return IndexText(
            htext,
            "\n".join(body),
            first.get("from", ""),
            first.get("to", ""),
            first.get("cc", ""),
            first.get("bcc", ""),
            first.get("subject", ""),
        )
    except Exception:  # indexing must never fail a delivery (bad JSON shapes, bugs)
        return EMPTY


def extract_file(path: Path, structure: str, *, header: bool = True) -> IndexText:
    """:func:`extract` for a stored file, mapped rather than read (executor thread)."""
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            return EMPTY
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return extract(m, structure, header=header)


def _plain_body(data: bytes, structure: str) -> bytes | None:
    """The raw body when it *is* the body text: one text part, identity encoding,
    ASCII/UTF-8 (the common case); None otherwise."""
    if '"c":' in structure or '"m":' in structure or not structure.startswith('{"t":"text"'):
        return None
    o = json.loads(structure)
    if o.get("e", "") not in _IDENTITY or _charset(o).lower() not in ("", "us-ascii", "utf-8"):
        return None
    _, start, end = o["o"]
    return data[start : min(end, start + MAX_BODY_TEXT)]


# --- maintenance (inside the committer's transaction) ---------------------------------


def add(conn: apsw.Connection, message_id: int, text: IndexText) -> None:
    """Index a new message under a fresh text id."""
    r = _rows(conn, "SELECT coalesce(max(text_id), 0) + 1 FROM message_text")
    text_id = int(r[0][0])
    conn.execute(
        "INSERT INTO message_fts_hdr (rowid, header, hfrom, hto, hcc, hbcc, subject) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (text_id, text.header, text.from_, text.to, text.cc, text.bcc, text.subject),
    )
    conn.execute("INSERT INTO message_fts_body (rowid, body) VALUES (?, ?)", (text_id, text.body))
    conn.execute(
        "INSERT INTO message_text (message_id, text_id) VALUES (?, ?)", (message_id, text_id)
    )


def add_copy(conn: apsw.Connection, message_id: int, source_id: int) -> None:
    """Let copy ``message_id`` share the index rows of ``source_id`` (if it has them)."""
    conn.execute(
        "INSERT INTO message_text (message_id, text_id) "
        "SELECT ?, text_id FROM message_text WHERE message_id = ?",
        (message_id, source_id),
    )


def remove(conn: apsw.Connection, message_ids: Sequence[int]) -> None:
    """Drop the mappings of messages about to be deleted, and texts nobody maps to."""
    for mid in message_ids:
        r = _rows(conn, "DELETE FROM message_text WHERE message_id = ? RETURNING text_id", (mid,))
        if not r:
            continue
        text_id = int(r[0][0])
        left = _rows(conn, "SELECT 1 FROM message_text WHERE text_id = ? LIMIT 1", (text_id,))
        if not left:
            conn.execute("DELETE FROM message_fts_hdr WHERE rowid = ?", (text_id,))
            conn.execute("DELETE FROM message_fts_body WHERE rowid = ?", (text_id,))


# --- filters -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlagTest:
    """System flag bits all set (``present``) or none of them set."""

    bits: int
    present: bool


@dataclass(frozen=True, slots=True)
class KeywordTest:
    """A keyword (lower-case) set or not."""

    keyword: str
    present: bool


@dataclass(frozen=True, slots=True)
class SizeTest:
    """``size > n`` (larger) or ``size < n``."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class ReceivedTest:
    """Internal date in microseconds: ``before`` means ``< us``, else ``>= us``."""

    before: bool
    us: int


@dataclass(frozen=True, slots=True)
class SentDateTest:
    """Date header's calendar day (its own zone) compared with ``day`` (ISO); op is <, = or >=.

    Messages without a usable Date header never match.
    """

    op: str
    day: str


@dataclass(frozen=True, slots=True)
class ModSeqTest:
    """``modseq >= n`` (RFC 7162 3.1.5)."""

    modseq: int


@dataclass(frozen=True, slots=True)
class TextTest:
    """Case-insensitive substring ``value`` in any of ``columns`` (see COLUMNS)."""

    columns: tuple[str, ...]
    value: str


@dataclass(frozen=True, slots=True)
class HeaderTest:
    """A header field ``name`` whose decoded value contains ``value`` (RFC 9051 HEADER);
    an empty ``value`` matches any message with the field."""

    name: str
    value: str


Test = (
    FlagTest
    | KeywordTest
    | SizeTest
    | ReceivedTest
    | SentDateTest
    | ModSeqTest
    | TextTest
    | HeaderTest
)

MIN_TEXT = 3  # shortest string the trigram index can look up
MAX_TRIGRAMS = 24  # candidate queries use at most this many of a long string's trigrams
MAX_INDEX_ONLY = 64  # longest header key answered on the caller's thread (see index_only)


def _quote(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def phrase_query(columns: Sequence[str], value: str) -> str:
    """FTS5 query for the phrase ``value`` in one of ``columns`` (header table)."""
    for c in columns:
        if c not in HEADER_COLUMNS:
            raise ValueError(f"unknown column {c}")
    return "{" + " ".join(columns) + "} : " + _quote(value)


def trigram_query(value: str) -> str:
    """FTS5 query for rows holding every trigram of ``value`` (body table, no positions)."""
    grams = list(dict.fromkeys(value[i : i + 3].lower() for i in range(len(value) - 2)))
    if len(grams) > MAX_TRIGRAMS:  # a spread-out sample filters as well as all of them
        step = len(grams) / MAX_TRIGRAMS
        grams = [grams[int(i * step)] for i in range(MAX_TRIGRAMS)]
    return " AND ".join(_quote(g) for g in grams)


def condition(t: Test) -> tuple[str, list[Any]]:
    """SQL condition on ``message`` for a metadata test, with its arguments."""
    if isinstance(t, FlagTest):
        if t.present:
            return "flags & ? = ?", [t.bits, t.bits]
        return "flags & ? = 0", [t.bits]
    if isinstance(t, KeywordTest):
        op = "> 0" if t.present else "= 0"
        return f"instr(' ' || keywords || ' ', ?) {op}", [f" {t.keyword} "]
    if isinstance(t, SizeTest):
        return ("size > ?" if t.larger else "size < ?"), [t.size]
    if isinstance(t, ReceivedTest):
        return ("received < ?" if t.before else "received >= ?"), [t.us]
    if isinstance(t, SentDateTest):
        if t.op not in ("<", "=", ">="):
            raise ValueError("bad operator")
        return f"(date IS NOT NULL AND substr(date, 1, 10) {t.op} ?)", [t.day]
    if isinstance(t, ModSeqTest):
        return "modseq >= ?", [t.modseq]
    raise TypeError("text tests have no plain SQL condition")


def _json_list(values: Iterable[int]) -> str:
    return "[" + ",".join(map(str, values)) + "]"


def _uids(
    conn: apsw.Connection, sql: str, args: list[Any], within: Sequence[int] | None
) -> set[int]:
    if within is not None:
        sql += " AND uid IN (SELECT value FROM json_each(?))"
        args = [*args, _json_list(within)]
    return {int(r[0]) for r in conn.execute(sql, args)}


def _fts_where(table: str) -> str:
    return (
        f"mailbox_id = ? AND id IN (SELECT message_id FROM "
        f"message_text WHERE text_id IN (SELECT rowid FROM {table} WHERE {table} MATCH ?))"
    )


def _fts_uids(
    conn: apsw.Connection, mailbox_id: int, table: str, query: str, within: Sequence[int] | None
) -> set[int]:
    sql = f"SELECT uid FROM message WHERE {_fts_where(table)}"
    # ``within`` is applied here, not in SQL: combined with the MATCH subquery a uid
    # list made SQLite's plan 100x slower (measured).
    found = {int(r[0]) for r in conn.execute(sql, [mailbox_id, query])}
    return found if within is None else found.intersection(within)


def _fts_json(conn: apsw.Connection, mailbox_id: int, table: str, query: str) -> str:
    """:func:`_fts_uids` without ``within``, as the JSON list the verifying queries take.

    Built by SQLite: a Python set of every candidate costs a few hundred KiB of int
    objects per concurrent search, which pinned allocator arenas long after a burst
    of body searches.
    """
    sql = f"SELECT json_group_array(uid) FROM message WHERE {_fts_where(table)}"
    return str(_rows(conn, sql, [mailbox_id, query])[0][0])


def select_uids(
    conn: apsw.Connection,
    files: Path,
    mailbox_id: int,
    t: Test,
    within: Sequence[int] | None,
) -> list[int]:
    """UIDs in the mailbox passing ``t`` (among ``within`` when given), ascending.

    ``files`` is the account's ``msg/`` directory (for verifying file-backed messages).
    """
    if isinstance(t, TextTest):
        return sorted(_text_uids(conn, files, mailbox_id, t, within))
    if isinstance(t, HeaderTest):
        return sorted(_header_uids(conn, files, mailbox_id, t, within))
    cond, args = condition(t)
    sql = f"SELECT uid FROM message WHERE mailbox_id = ? AND {cond}"
    return sorted(_uids(conn, sql, [mailbox_id, *args], within))


def _all_uids(conn: apsw.Connection, mailbox_id: int, within: Sequence[int] | None) -> set[int]:
    return _uids(conn, "SELECT uid FROM message WHERE mailbox_id = ?", [mailbox_id], within)


def _text_uids(
    conn: apsw.Connection, files: Path, mailbox_id: int, t: TextTest, within: Sequence[int] | None
) -> set[int]:
    v = t.value
    if not v:
        return _all_uids(conn, mailbox_id, within)  # the empty string is in every text
    if len(v) < MIN_TEXT:
        candidates = _all_uids(conn, mailbox_id, within)
        needle = v if t.columns == ("body",) else None
        return _verify(conn, files, mailbox_id, candidates, lambda x: _text_has(x, t), needle)
    body_only = t.columns == ("body",) and len(v) > MIN_TEXT
    if body_only and within is None and not unindexed_uids(conn, mailbox_id):
        # The usual BODY key: candidates go from the index to the verifying query
        # without passing through Python.
        listed = _fts_json(conn, mailbox_id, "message_fts_body", trigram_query(v))
        return _verify_json(conn, files, mailbox_id, listed, lambda x: _text_has(x, t), v)
    hdr_cols = [c for c in t.columns if c != "body"]
    found: set[int] = set()
    if hdr_cols:
        found = _fts_uids(conn, mailbox_id, "message_fts_hdr", phrase_query(hdr_cols, v), within)
    candidates = set(unindexed_uids(conn, mailbox_id))
    if within is not None and candidates:
        candidates &= set(within)
    if "body" in t.columns:
        body = _fts_uids(conn, mailbox_id, "message_fts_body", trigram_query(v), within) - found
        if len(v) == MIN_TEXT:
            found |= body  # one trigram: presence is the answer
        else:
            candidates |= body
    candidates -= found
    if candidates:
        needle = v if t.columns == ("body",) else None
        found |= _verify(conn, files, mailbox_id, candidates, lambda x: _text_has(x, t), needle)
    return found


def _text_has(x: IndexText, t: TextTest) -> bool:
    v = t.value.lower()
    return any(v in getattr(x, _ATTR[c]).lower() for c in t.columns)


_ATTR = {
    "header": "header",
    "body": "body",
    "hfrom": "from_",
    "hto": "to",
    "hcc": "cc",
    "hbcc": "bcc",
    "subject": "subject",
}


def _header_uids(
    conn: apsw.Connection,
    files: Path,
    mailbox_id: int,
    t: HeaderTest,
    within: Sequence[int] | None,
) -> set[int]:
    # The header column holds "Name: value" lines: the longer of name and value
    # finds candidates, each verified field by field.
    probe = t.value if len(t.value) >= len(t.name) else t.name
    if len(probe) >= MIN_TEXT:
        q = phrase_query(["header"], probe)
        candidates = _fts_uids(conn, mailbox_id, "message_fts_hdr", q, within)
        extra = set(unindexed_uids(conn, mailbox_id))
        candidates |= extra & set(within) if within is not None else extra
    else:
        candidates = _all_uids(conn, mailbox_id, within)
    name = t.name.strip().lower()
    value = t.value.lower()

    def has(x: IndexText) -> bool:
        for line in x.header.split("\n"):
            k, colon, val = line.partition(":")
            if colon and k.strip().lower() == name and value in val.lower():
                return True
        return False

    return _verify(conn, files, mailbox_id, candidates, has)


def _verify(
    conn: apsw.Connection,
    files: Path,
    mailbox_id: int,
    candidates: set[int],
    pred: Callable[[IndexText], bool],
    body_needle: str | None = None,
) -> set[int]:
    """Candidates whose freshly extracted text satisfies ``pred`` (one message at a time).

    ``body_needle`` marks a body-only test (``pred`` ignores the header): the header is
    then not decoded, and for an ASCII needle the plain single-part messages stored
    inline are searched by SQLite in their raw bytes (:func:`_plain_matches`); only
    the others are extracted here.
    """
    if not candidates:
        return set()
    return _verify_json(conn, files, mailbox_id, _json_list(candidates), pred, body_needle)


def _verify_json(
    conn: apsw.Connection,
    files: Path,
    mailbox_id: int,
    candidates: str,
    pred: Callable[[IndexText], bool],
    body_needle: str | None = None,
) -> set[int]:
    """:func:`_verify` for candidates given as a JSON list of UIDs."""
    raw_needle = None
    if body_needle and body_needle.isascii():
        # bytes.lower() folds ASCII only, which is all an ASCII needle can match
        raw_needle = body_needle.lower().encode()
    out: set[int] = set()
    if raw_needle is not None and len(raw_needle) <= _MAX_LIKE:
        out, rest = _plain_matches(conn, mailbox_id, candidates, raw_needle)
        if not rest:
            return out
        candidates = _json_list(rest)
    sql = (
        "SELECT m.uid, m.file, m.structure, c.data FROM message m "
        "LEFT JOIN content c ON c.message_id = m.id WHERE m.mailbox_id = ? "
        "AND m.uid IN (SELECT value FROM json_each(?))"
    )
    need_header = body_needle is None
    for uid, file, structure, data in conn.execute(sql, (mailbox_id, candidates)):
        if raw_needle is not None and file is None and data is not None:
            plain = _plain_body(data, structure)
            if plain is not None:
                if raw_needle in plain.lower():
                    out.add(int(uid))
                continue
        try:
            if file is None:
                x = extract(data or b"", structure, header=need_header)
            else:
                x = extract_file(files / file, structure, header=need_header)
        except OSError:  # expunged meanwhile: its file is gone
            continue
        if pred(x):
            out.add(int(uid))
    return out


# The body offset of an inline message whose raw body *is* its text, only when
# :func:`_plain_body` would return that body (NULL when unsure: such messages are
# extracted in Python): one text part, no parts or embedded message, no or an
# identity transfer encoding, integer offsets, parameters absent or exactly one
# ``charset`` of US-ASCII or UTF-8 (other parameter lists are left to Python). One
# JSON parse per row (SQLite caches it across the calls); ``s`` is the structure,
# which is written by Part.to_json (json_extract raises on invalid JSON, like the
# json.loads it replaces).
_PLAIN_START = (
    "CASE WHEN typeof(data) = 'blob' AND file IS NULL "
    'AND substr(s, 1, 11) = \'{"t":"text"\' '
    "AND instr(s, '\"c\":') = 0 AND instr(s, '\"m\":') = 0 "
    "AND (json_type(s, '$.e') IS NULL "
    "OR json_extract(s, '$.e') IN ('', '7bit', '8bit', 'binary')) "
    "AND json_array_length(s, '$.o') = 3 "
    "AND typeof(json_extract(s, '$.o[1]')) = 'integer' "
    "AND typeof(json_extract(s, '$.o[2]')) = 'integer' AND json_extract(s, '$.o[1]') >= 0 "
    "AND (json_type(s, '$.p') IS NULL OR lower(json_extract(s, '$.p')) IN "
    '(\'[["charset",""]]\', \'[["charset","us-ascii"]]\', \'[["charset","utf-8"]]\')) '
    "THEN json_extract(s, '$.o[1]') END"
)
# Per candidate: 1 when the plain body holds the needle, 0 when not, NULL when the
# message must be extracted. LIKE folds ASCII case only (as bytes.lower() does) and
# reads an ASCII byte as one character whatever surrounds it, so ``%needle%`` (the
# needle escaped) is a byte substring test; it stops at a NUL, so a miss in a body
# holding one is left to Python. ``OFFSET 0`` keeps SQLite from flattening the
# subqueries, which would evaluate the shape test once per use of its result.
_PLAIN_SQL = (
    "SELECT uid, CASE WHEN st IS NULL THEN NULL "
    "WHEN CAST(body AS TEXT) LIKE ? ESCAPE '\\' THEN 1 "
    "WHEN instr(body, x'00') = 0 THEN 0 END FROM ("
    "SELECT uid, st, CASE WHEN st IS NOT NULL THEN substr(data, st + 1, "
    "max(0, min(json_extract(s, '$.o[2]'), st + ?) - st)) END AS body FROM ("
    f"SELECT uid, data, s, {_PLAIN_START} AS st FROM ("
    "SELECT m.uid AS uid, m.file AS file, m.structure AS s, c.data AS data FROM message m "
    "LEFT JOIN content c ON c.message_id = m.id WHERE m.mailbox_id = ? "
    "AND m.uid IN (SELECT value FROM json_each(?))) LIMIT -1 OFFSET 0) LIMIT -1 OFFSET 0)"
)
# Longer needles are searched in Python (SQLite limits LIKE patterns to 50,000 bytes).
_MAX_LIKE = 1000


def _like_pattern(needle: bytes) -> str:
    """``%needle%`` for LIKE with escape character backslash (``needle`` is ASCII)."""
    s = needle.decode("ascii")
    s = s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + s + "%"


def _plain_matches(
    conn: apsw.Connection, mailbox_id: int, candidates: str, raw_needle: bytes
) -> tuple[set[int], set[int]]:
    """Search the plain bodies among ``candidates`` (a JSON list of UIDs) for
    ``raw_needle`` (lower-case ASCII, at most _MAX_LIKE bytes) inside SQLite:
    (matching uids, uids SQLite could not decide).

    The same test as ``raw_needle in _plain_body(...).lower()``, without copying
    each 4 KiB body into Python and parsing its structure there (that dominated
    body searches matching most of a mailbox).
    """
    found: set[int] = set()
    rest: set[int] = set()
    args = (_like_pattern(raw_needle), MAX_BODY_TEXT, mailbox_id, candidates)
    for uid, hit in conn.execute(_PLAIN_SQL, args):
        if hit is None:
            rest.add(int(uid))
        elif hit:
            found.add(int(uid))
    return found, rest


def index_only(t: Test) -> bool:
    """Whether the header index alone answers ``t`` once every message is indexed
    (no candidate is decoded): a FROM/TO/CC/BCC/SUBJECT key of MIN_TEXT to
    MAX_INDEX_ONLY characters (a phrase query costs ~1 ms for 5,000 messages)."""
    return (
        isinstance(t, TextTest)
        and all(c in HEADER_COLUMNS for c in t.columns)
        and MIN_TEXT <= len(t.value) <= MAX_INDEX_ONLY
    )


def any_unindexed(conn: apsw.Connection) -> bool:
    """Whether some message of the account has no index row yet."""
    r = _rows(conn, "SELECT (SELECT count(*) FROM message) - (SELECT count(*) FROM message_text)")
    return bool(r) and int(r[0][0]) > 0


def unindexed_uids(conn: apsw.Connection, mailbox_id: int) -> list[int]:
    """UIDs of messages without an index row (stored before the index existed)."""
    if not any_unindexed(conn):
        return []
    q = (
        "SELECT uid FROM message m WHERE mailbox_id = ? AND NOT EXISTS "
        "(SELECT 1 FROM message_text t WHERE t.message_id = m.id) ORDER BY uid"
    )
    return [int(x[0]) for x in conn.execute(q, (mailbox_id,))]


def max_modseq(conn: apsw.Connection, mailbox_id: int, uids: Sequence[int]) -> int:
    """Highest modseq among the given messages (0 for none)."""
    r = _rows(
        conn,
        "SELECT coalesce(max(modseq), 0) FROM message WHERE mailbox_id = ? "
        "AND uid IN (SELECT value FROM json_each(?))",
        (mailbox_id, _json_list(uids)),
    )
    return int(r[0][0])


# --- consistency ------------------------------------------------------------------------


def check(conn: apsw.Connection) -> list[tuple[str, str]]:
    """Index problems as (subject, detail): FTS5's own integrity check, mappings to
    missing texts; messages without a mapping are reported as unindexed."""
    out: list[tuple[str, str]] = []
    for table in ("message_fts_hdr", "message_fts_body"):
        try:
            conn.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")
        except apsw.Error as e:
            out.append((table, f"integrity-check failed: {e}"))
    q = (
        "SELECT t.message_id, t.text_id FROM message_text t WHERE NOT EXISTS "
        "(SELECT 1 FROM message_fts_hdr f WHERE f.rowid = t.text_id) OR NOT EXISTS "
        "(SELECT 1 FROM message_fts_body f WHERE f.rowid = t.text_id)"
    )
    for mid, tid in _rows(conn, q):
        out.append((f"message {mid}", f"text {tid} has no index row"))
    (n,) = _rows(
        conn,
        "SELECT count(*) FROM message m WHERE NOT EXISTS "
        "(SELECT 1 FROM message_text t WHERE t.message_id = m.id)",
    )[0]
    if n:
        out.append(("account", f"{n} messages not in the full-text index"))
    return out
