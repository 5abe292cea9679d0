"""FETCH and UID FETCH (RFC 9051 6.4.5 and 7.5.2; RFC 3516 BINARY; RFC 7162 CONDSTORE/QRESYNC).

:func:`cmd_fetch` resolves the message set against the session's view. When only
metadata is asked for (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ: the resync
every client runs on a whole folder), stored rows are read in blocks of BLOCK and
turned straight into wire text with one format per command and flag lists
rendered once per distinct flag set, queued one block at a time. Otherwise it
loads message metadata in chunks of CHUNK (with the cached MIME tree only when an
attribute needs it), marks messages ``\\Seen`` for non-PEEK body fetches in one
store write per chunk, and emits one ``* n FETCH (...)`` per message. Both ways
give the same bytes.

Memory: a response is handed to ``ctx.untagged`` whole, so ``BODY[]`` of a large
message is built in memory (one message at a time). Partial fetches, headers and
single parts read only their byte range from the store.

Messages expunged by another session after this session's view was made are
skipped silently (RFC 9051 7.5.1 allows either that or NO; mox answers
``OK [EXPUNGEISSUED]``, which the shell cannot express through this interface).
"""

import bisect
import dataclasses
import json
import logging
import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from app.imap import protocol
from app.imap.bodystructure import body, envelope
from app.imap.commands import Fetch, FetchAtt, NumSet, Partial, Section
from app.imap.context import CommandContext, resolve_uids
from app.imap.errors import IMAPBad, IMAPNo
from app.imap.sections import (
    NoSuchPart,
    Source,
    UnknownCTE,
    binary_section,
    binary_size,
    body_section,
    slice_partial,
)
from app.message.envelope import Envelope
from app.message.errors import StructureError
from app.message.part import Part, parse
from app.store.account import MetadataRow
from app.store.errors import MessageGone
from app.store.types import Flag, MessageInfo, bits_to_flags, text_to_keywords

log = logging.getLogger(__name__)

CHUNK = 200  # messages per metadata read (the store answers <= 200 rows on the loop)
BLOCK = 1000  # messages per metadata-only read, rendered and queued at once (~60 KiB)

_SYSTEM_ORDER = (Flag.SEEN, Flag.ANSWERED, Flag.FLAGGED, Flag.DELETED, Flag.DRAFT)
_SIMPLE = frozenset(
    {"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ", "ENVELOPE", "BODYSTRUCTURE"}
)
_KNOWN = _SIMPLE | {"RFC822", "RFC822.HEADER", "RFC822.TEXT", "BODY", "BINARY", "BINARY.SIZE"}


# --- rendering ---------------------------------------------------------------------------


def flags_value(msg: MessageInfo) -> bytes:
    """``(\\Seen kw)``: system flags in a fixed order, then keywords sorted."""
    return _flag_list(msg.flags, msg.keywords)


def _flag_list(flags: frozenset[Flag], keywords: frozenset[str], recent: bool = False) -> bytes:
    words = [f.value for f in _SYSTEM_ORDER if f in flags]
    if recent:  # IMAP4rev1 sessions only (RFC 3501 2.3.2); after the system flags
        words.append("\\Recent")
    return protocol.flag_list(words + sorted(keywords))


def _never(uid: int) -> bool:
    return False


def _row_flags_value(bits: int, keywords: str, recent: bool = False) -> bytes:
    """:func:`flags_value` from the stored flag bit mask and keywords text."""
    return _flag_list(bits_to_flags(bits), text_to_keywords(keywords), recent)


def _internal_date(received_us: int) -> bytes:
    """INTERNALDATE from stored microseconds, as :class:`MessageInfo` converts them."""
    return protocol.date_time(datetime.fromtimestamp(received_us / 1_000_000, UTC))


def _seq_numbers(view: Sequence[int], uids: Sequence[int]) -> dict[int, int]:
    """Sequence number by UID for ``uids``, ascending UIDs all in ``view``."""
    if len(uids) == len(view):  # every message: the usual ``1:*``
        return dict(zip(view, range(1, len(view) + 1), strict=True))
    return {u: bisect.bisect_left(view, u) + 1 for u in uids}


def _section_name(a: FetchAtt) -> bytes:
    """``BODY[1.HEADER.FIELDS (To)]``/``BINARY[1]`` as echoed in the response."""
    if a.name in ("BINARY", "BINARY.SIZE"):
        spec = ".".join(str(n) for n in a.binary_section or ())
        return a.name.encode() + b"[" + spec.encode() + b"]"
    sec = a.section or Section()
    parts = [str(n) for n in sec.part]
    if sec.text:
        parts.append(sec.text)
    wire = ".".join(parts).encode()
    if sec.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        wire += b" (" + b" ".join(protocol.astring(h) for h in sec.headers) + b")"
    return b"BODY[" + wire + b"]"


def _origin(p: Partial | None) -> bytes:
    return b"" if p is None else b"<%d>" % p.offset


def _sets_seen(a: FetchAtt) -> bool:
    """Whether fetching ``a`` sets \\Seen (RFC 9051 6.4.5: non-PEEK body data)."""
    if a.name in ("BODY", "BINARY"):
        return not a.peek and (a.section is not None or a.binary_section is not None)
    return a.name in ("RFC822", "RFC822.TEXT")


def _needs_structure(a: FetchAtt) -> bool:
    if a.name in ("ENVELOPE", "BODYSTRUCTURE", "RFC822.HEADER", "RFC822.TEXT", "BINARY.SIZE"):
        return True
    if a.name == "BODY":
        return a.section is None or a.section != Section()
    return a.name == "BINARY"


# --- the command ---------------------------------------------------------------------------


_WHOLE = Section()  # BODY[]: the whole message
METADATA_ONLY = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"})

# Metadata attribute -> its item as a format and the index of its value in the
# (seq, uid, flags, size, modseq, date) tuple a row becomes.
_ROW_ITEMS: dict[str, tuple[bytes, int]] = {
    "UID": (b"UID %d", 1),
    "FLAGS": (b"FLAGS %s", 2),
    "RFC822.SIZE": (b"RFC822.SIZE %d", 3),
    "MODSEQ": (b"MODSEQ (%d)", 4),
    "INTERNALDATE": (b"INTERNALDATE %s", 5),
}


class _Fetcher:
    """Per-command state: what to send, and how."""

    def __init__(self, ctx: CommandContext, cmd: Fetch) -> None:
        self.ctx = ctx
        self.cmd = cmd
        atts = list(cmd.attributes)
        for a in atts:
            if a.name not in _KNOWN:
                raise IMAPBad("unknown fetch attribute")
        self.atts = atts
        self.with_structure = any(_needs_structure(a) for a in atts)
        self.mark_seen = any(_sets_seen(a) for a in atts) and not ctx.view.readonly
        names = {a.name for a in atts}
        self.names = names
        self.send_uid = cmd.uid or "UID" in names
        # RFC 7162 3.1.4.1 (CHANGEDSINCE) and 3.2.4 (QRESYNC: every UID FETCH); the
        # context has no QRESYNC property, so a session without one counts as off.
        qresync = ctx.qresync
        self.send_modseq = (
            "MODSEQ" in names or cmd.changedsince is not None or (qresync and cmd.uid)
        )
        self.send_flags = "FLAGS" in names
        # Attributes answered from the message row alone: the common "what changed"
        # fetch of every client sync (FLAGS UID RFC822.SIZE ...) takes the row path.
        self.metadata_only = names <= METADATA_ONLY
        self._flags_cache: dict[tuple[frozenset[Flag], frozenset[str], bool], bytes] = {}
        self._row_flags: dict[tuple[int, str, bool], bytes] = {}
        # \Recent exists in IMAP4rev1 only (RFC 9051 removed it).
        self._recent: Callable[[int], bool] = _never if ctx.rev2 else ctx.is_recent

    def flags(self, m: MessageInfo) -> bytes:
        """:func:`flags_value`, rendered once per distinct flag set in a command."""
        recent = self._recent(m.uid)
        key = (m.flags, m.keywords, recent)
        value = self._flags_cache.get(key)
        if value is None:
            value = self._flags_cache[key] = _flag_list(m.flags, m.keywords, recent)
        return value

    async def run(self, uids: Sequence[int]) -> None:
        """Send the responses for ``uids`` (ascending, all in the view)."""
        if self.metadata_only:
            self._run_rows(uids)
        else:
            await self._run_messages(uids)

    # Metadata only (the FLAGS UID RFC822.SIZE resync of every client): stored rows
    # straight to wire text, one format per command, no MessageInfo per message.

    def _run_rows(self, uids: Sequence[int]) -> None:
        ctx = self.ctx
        view = ctx.view
        seqs = _seq_numbers(view.uids, uids)
        line, pick = self._row_format()
        for i in range(0, len(uids), BLOCK):
            rows = ctx.store.message_metadata(
                view.mailbox_id, uids[i : i + BLOCK], changed_since=self.cmd.changedsince
            )
            block = self._render_rows(rows, seqs, line, pick)
            if block:
                ctx.untagged_block(block)

    def _row_format(self) -> tuple[bytes, Callable[[tuple[object, ...]], object]]:
        """The response as a format, and the getter of its values from a row tuple.

        Items in the order asked, MODSEQ appended and UID put first when implied
        (the same rules as :meth:`_one`).
        """
        items = [_ROW_ITEMS[a.name] for a in self.atts]
        if self.send_modseq and "MODSEQ" not in self.names:
            items.append(_ROW_ITEMS["MODSEQ"])
        if self.send_uid and "UID" not in self.names:
            items.insert(0, _ROW_ITEMS["UID"])
        line = b"* %d FETCH (" + b" ".join(f for f, _ in items) + b")\r\n"
        return line, operator.itemgetter(0, *(i for _, i in items))

    def _render_rows(
        self,
        rows: list[MetadataRow],
        seqs: dict[int, int],
        line: bytes,
        pick: Callable[[tuple[object, ...]], object],
    ) -> bytes:
        """The responses for ``rows`` (skipping messages not in the view), CRLF ended."""
        cache = self._row_flags
        is_recent = self._recent
        dates = "INTERNALDATE" in self.names
        out: list[bytes] = []
        append = out.append
        for uid, bits, keywords, size, modseq, received in rows:
            seq = seqs.get(uid)
            if seq is None:
                continue
            key = (bits, keywords, is_recent(uid))
            flags = cache.get(key)
            if flags is None:
                flags = cache[key] = _row_flags_value(*key)
            date = _internal_date(received) if dates else b""
            append(line % pick((seq, uid, flags, size, modseq, date)))
        return b"".join(out)

    # Everything else: message by message, with the MIME structure and content
    # read as the attributes need.

    async def _run_messages(self, uids: Sequence[int]) -> None:
        mbid = self.ctx.view.mailbox_id
        for i in range(0, len(uids), CHUNK):
            chunk = uids[i : i + CHUNK]
            msgs = await self.ctx.store.messages(mbid, chunk, with_structure=self.with_structure)
            if self.cmd.changedsince is not None:
                msgs = [m for m in msgs if m.modseq > self.cmd.changedsince]
            seen_set: set[int] = set()
            if self.mark_seen:
                msgs, seen_set = await self._mark_seen(msgs)
            for m in msgs:
                await self._one(m, m.uid in seen_set)

    async def _mark_seen(self, msgs: list[MessageInfo]) -> tuple[list[MessageInfo], set[int]]:
        """Set \\Seen on the unseen ones; returns messages with updated flags."""
        unseen = [m.uid for m in msgs if Flag.SEEN not in m.flags]
        if not unseen:
            return msgs, set()
        result = await self.ctx.store.set_flags(
            self.ctx.view.mailbox_id, unseen, add=[Flag.SEEN.value]
        )
        changed = {c.uid: c for c in result.changed}
        out: list[MessageInfo] = []
        for m in msgs:
            c = changed.get(m.uid)
            if c is None:
                out.append(m)
                continue
            out.append(_with_flags(m, c.flags, c.keywords, c.modseq))
        return out, set(changed)

    async def _one(self, m: MessageInfo, seen_changed: bool) -> None:
        view = self.ctx.view.uids
        i = bisect.bisect_left(view, m.uid)
        if i == len(view) or view[i] != m.uid:
            return
        seq = i + 1
        try:
            items = await self._items(m)
        except MessageGone:
            return  # expunged by another session while we were reading it
        if seen_changed and not self.send_flags:
            items.append(b"FLAGS " + self.flags(m))
        # Only the MODSEQ and UID attributes render items starting "MODSEQ "/"UID ".
        modseq = self.send_modseq or (seen_changed and self.ctx.condstore)
        if modseq and "MODSEQ" not in self.names:
            items.append(b"MODSEQ (%d)" % m.modseq)
        if self.send_uid and "UID" not in self.names:
            items.insert(0, b"UID %d" % m.uid)
        self.ctx.untagged(b"* %d FETCH (" % seq + b" ".join(items) + b")")

    async def _items(self, m: MessageInfo) -> list[bytes]:
        store = self.ctx.store
        root: Part | None = None
        src = Source(lambda off, n: store.read_range(m, off, n))
        items: list[bytes] = []
        for a in self.atts:
            name = a.name
            if name == "UID":
                items.append(b"UID %d" % m.uid)
            elif name == "FLAGS":
                items.append(b"FLAGS " + self.flags(m))
            elif name == "INTERNALDATE":
                items.append(b"INTERNALDATE " + protocol.date_time(m.received))
            elif name == "RFC822.SIZE":
                items.append(b"RFC822.SIZE %d" % m.size)
            elif name == "MODSEQ":
                items.append(b"MODSEQ (%d)" % m.modseq)
            elif name == "RFC822":
                items.append(b"RFC822 " + protocol.literal(await store.read_message(m)))
            elif name == "BODY" and a.section == _WHOLE:
                if a.partial is None:
                    data = await store.read_range(m, 0, m.size)
                else:
                    data = await src.get_partial(None, 0, m.size, a.partial)
                items.append(b"BODY[]" + _origin(a.partial) + b" " + protocol.literal(data))
            elif name == "ENVELOPE" and root is None:
                items.append(b"ENVELOPE " + envelope(_envelope(m), utf8=self.ctx.utf8))
            else:
                if root is None:
                    root = await self._structure(m)
                items.append(await self._structured(a, m, root, src))
        return items

    async def _structure(self, m: MessageInfo) -> Part:
        """The cached MIME tree; a bad cache entry is rebuilt from the message."""
        try:
            return Part.from_json(m.structure)
        except StructureError:
            log.warning("bad cached structure", extra={"message": m.id})
            return parse(await self.ctx.store.read_message(m))

    async def _structured(self, a: FetchAtt, m: MessageInfo, root: Part, src: Source) -> bytes:
        utf8 = self.ctx.utf8
        name = a.name
        if name == "ENVELOPE":
            return b"ENVELOPE " + envelope(root.envelope, utf8=utf8)
        if name == "BODYSTRUCTURE":
            return b"BODYSTRUCTURE " + body(root, extensions=True, utf8=utf8)
        if name == "BODY" and a.section is None:
            return b"BODY " + body(root, extensions=False, utf8=utf8)
        if name == "RFC822.HEADER":
            data = await src.get(None, 0, root.body_start)
            return b"RFC822.HEADER " + protocol.literal(data)
        if name == "RFC822.TEXT":
            data = await src.get(None, root.body_start, m.size)
            return b"RFC822.TEXT " + protocol.literal(data)
        key = _section_name(a)
        try:
            if name == "BINARY.SIZE":
                return key + b" %d" % await binary_size(src, root, a.binary_section or ())
            if name == "BINARY":
                data = await binary_section(src, root, a.binary_section or ())
                data = slice_partial(data, a.partial)
                lit = protocol.literal8(data) if b"\x00" in data else protocol.literal(data)
                return key + _origin(a.partial) + b" " + lit
            assert a.section is not None
            data = await body_section(src, root, a.section, a.partial)
        except NoSuchPart:
            return key + _origin(a.partial) + b" NIL"
        except UnknownCTE:
            raise IMAPNo("unknown content-transfer-encoding", code="UNKNOWN-CTE") from None
        return key + _origin(a.partial) + b" " + protocol.literal(data)


def _envelope(m: MessageInfo) -> Envelope | None:
    """Just the envelope from the cached structure: 5x cheaper than the whole tree."""
    try:
        env = json.loads(m.structure).get("env")
        return Envelope.from_list(env) if isinstance(env, list) else None
    except (ValueError, TypeError, AttributeError):
        return None


def _with_flags(
    m: MessageInfo, flags: frozenset[Flag], keywords: frozenset[str], modseq: int
) -> MessageInfo:
    return dataclasses.replace(m, flags=flags, keywords=keywords, modseq=modseq)


async def cmd_fetch(ctx: CommandContext, cmd: Fetch) -> None:
    """Answer FETCH / UID FETCH with untagged FETCH (and VANISHED) responses.

    Raises IMAPBad for invalid sequence numbers, unknown attributes and misuse of
    VANISHED; IMAPNo ``[UNKNOWN-CTE]`` for BINARY of an undecodable part.
    """
    if cmd.vanished and (not cmd.uid or cmd.changedsince is None):
        # RFC 7162 3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
        raise IMAPBad("VANISHED needs UID FETCH and CHANGEDSINCE")
    if cmd.vanished and not ctx.qresync:
        raise IMAPBad("VANISHED needs QRESYNC enabled")
    fetcher = _Fetcher(ctx, cmd)
    uids = resolve_uids(ctx, cmd.numbers, cmd.uid)
    if cmd.changedsince is not None or "MODSEQ" in fetcher.names:
        ctx.enable_condstore()  # RFC 7162 3.1: CONDSTORE-enabling
    if cmd.vanished and cmd.changedsince is not None:
        _send_vanished(ctx, cmd.numbers, cmd.changedsince)
    await fetcher.run(uids)


def _send_vanished(ctx: CommandContext, numbers: NumSet, modseq: int) -> None:
    """RFC 7162 3.2.6: ``* VANISHED (EARLIER)`` for requested UIDs expunged since modseq,
    before the FETCH responses."""
    gone = ctx.store.vanished_since(ctx.view.mailbox_id, modseq)
    if numbers.saved:
        wanted = set(ctx.searchres)
        gone = [u for u in gone if u in wanted]
    else:
        largest = max(ctx.view.uids[-1] if ctx.view.uids else 0, gone[-1] if gone else 0)
        gone = [u for u in gone if numbers.contains(u, largest)]
    if gone:
        ctx.untagged(b"* VANISHED (EARLIER) " + protocol.number_set(gone))
