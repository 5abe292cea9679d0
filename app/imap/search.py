"""SEARCH and UID SEARCH (RFC 9051 6.4.4; RFC 3501 6.4.4; RFC 4731 ESEARCH; RFC 5182
SEARCHRES; RFC 7162 3.1.5 MODSEQ; RFC 5032 OLDER/YOUNGER).

Evaluation is set algebra over UIDs of the session's view. Every leaf key becomes
one store query (:meth:`AccountStore.select_uids`) answered from SQL: flags,
keywords, sizes, dates and modseqs from the small message rows; FROM/TO/CC/BCC/
SUBJECT/HEADER/BODY/TEXT from the full-text index (:mod:`app.store.fts`, exact
case-insensitive substring semantics). An AND evaluates its cheap keys first and
hands the shrinking candidate set to the text keys, so an expensive key only looks
at messages that can still match. Sequence sets, UID sets and the session keys
(RECENT/NEW/OLD) are evaluated here without the store.

Internal dates are compared by their UTC calendar day (the store keeps UTC);
``SENT*`` keys compare the Date header's day in its own zone (RFC 9051 6.4.4:
"disregarding time and timezone"). RECENT, NEW and OLD (and ``\\Recent`` as a flag)
use the session's ``\\Recent`` marks in IMAP4rev1 sessions (RFC 3501 6.4.4); with
IMAP4rev2 enabled nothing is recent.
"""

import bisect
import datetime
import time
from collections.abc import Sequence

from app.imap import protocol
from app.imap.commands import (
    Search,
    SearchAge,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchState,
    SearchText,
)
from app.imap.context import CommandContext, resolve_uids
from app.imap.errors import IMAPBad, IMAPNo
from app.store import fts
from app.store.errors import InvalidFlag
from app.store.types import split_flags

CHARSETS = ("UTF-8", "US-ASCII")

_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "BODY": ("body",),
    "TEXT": ("header", "body"),
    "FROM": ("hfrom",),
    "TO": ("hto",),
    "CC": ("hcc",),
    "BCC": ("hbcc",),
    "SUBJECT": ("subject",),
}


def _day_us(d: datetime.date) -> int:
    """Microseconds since the epoch of ``d`` 00:00 UTC (the store's received unit)."""
    return int(datetime.datetime(d.year, d.month, d.day, tzinfo=datetime.UTC).timestamp()) * (
        1_000_000
    )


def _cost(key: SearchKey) -> int:
    """Rough evaluation cost, to order the keys of an AND (cheap first)."""
    if isinstance(key, SearchSet | SearchAll | SearchState):
        return 0
    if isinstance(key, SearchText | SearchHeader):
        return 3
    if isinstance(key, SearchNot):
        return _cost(key.key)
    if isinstance(key, SearchOr):
        return max(_cost(key.left), _cost(key.right))
    if isinstance(key, SearchAnd):
        return max((_cost(k) for k in key.keys), default=0)
    return 1


class _Evaluator:
    """Evaluates a search key tree against one mailbox view."""

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.mailbox_id = ctx.view.mailbox_id
        self.used_modseq = False

    async def eval(self, key: SearchKey, cand: set[int]) -> set[int]:
        """The UIDs in ``cand`` matching ``key``."""
        if not cand:
            return set()
        if isinstance(key, SearchAll):
            return cand
        if isinstance(key, SearchAnd):
            for k in sorted(key.keys, key=_cost):
                cand = await self.eval(k, cand)
                if not cand:
                    break
            return cand
        if isinstance(key, SearchOr):
            left = await self.eval(key.left, cand)
            return left | await self.eval(key.right, cand - left)
        if isinstance(key, SearchNot):
            return cand - await self.eval(key.key, cand)
        if isinstance(key, SearchSet):
            return cand & set(resolve_uids(self.ctx, key.numbers, key.uid))
        if isinstance(key, SearchState):
            recent = self._recent(cand)
            if key.name == "OLD":
                return cand - recent
            if key.name == "RECENT":
                return recent
            # NEW: recent and not \Seen (RFC 3501 6.4.4)
            return await self._leaf(fts.FlagTest(_SEEN_BITS, False), recent)
        if isinstance(key, SearchFlag) and key.flag.lower() == "\\recent":
            recent = self._recent(cand)
            return recent if key.present else cand - recent
        if isinstance(key, SearchDate) and key.field == "ON":
            # ON d: since d 00:00 and before d+1 00:00 (UTC days)
            since = await self._leaf(fts.ReceivedTest(False, _day_us(key.date)), cand)
            nxt = key.date + datetime.timedelta(days=1)
            return await self._leaf(fts.ReceivedTest(True, _day_us(nxt)), since)
        test = self._test(key)
        if test is None:
            return set()
        return await self._leaf(test, cand)

    def _recent(self, cand: set[int]) -> set[int]:
        ctx = self.ctx
        if ctx.rev2:
            return set()
        return {uid for uid in cand if ctx.is_recent(uid)}

    async def _leaf(self, test: fts.Test, cand: set[int]) -> set[int]:
        if not cand:
            return set()
        # Metadata tests scan a covering index: cheaper in full than with a uid list.
        # Text tests verify candidates by decoding, so they get the narrowed set.
        text = isinstance(test, fts.TextTest | fts.HeaderTest)
        narrow = text and len(cand) < len(self.ctx.view.uids)
        within = sorted(cand) if narrow else None
        found = await self.ctx.store.select_uids(self.mailbox_id, test, within)
        return cand.intersection(found)

    def _test(self, key: SearchKey) -> fts.Test | None:
        """The store filter for a leaf key; None when nothing can match."""
        if isinstance(key, SearchFlag):
            return _flag_test(key)
        if isinstance(key, SearchText):
            return fts.TextTest(_TEXT_COLUMNS[key.field], key.value)
        if isinstance(key, SearchHeader):
            return fts.HeaderTest(key.name, key.value)
        if isinstance(key, SearchSize):
            return fts.SizeTest(key.larger, key.size)
        if isinstance(key, SearchDate):
            return _date_test(key)
        if isinstance(key, SearchModSeq):
            self.used_modseq = True
            return fts.ModSeqTest(key.modseq)
        if isinstance(key, SearchAge):
            # RFC 5032: OLDER n = internal date more than n seconds ago.
            edge = int((time.time() - key.seconds) * 1_000_000)
            return fts.ReceivedTest(before=key.older, us=edge)
        raise IMAPBad("unsupported search key")


_SEEN_BITS = split_flags(["\\Seen"])[0]


def _flag_test(key: SearchFlag) -> fts.Test | None:
    if key.flag.startswith("\\"):
        try:
            bits, _ = split_flags([key.flag])
        except InvalidFlag:
            return None if key.present else fts.FlagTest(0, False)
        return fts.FlagTest(bits, key.present)
    try:
        _, kws = split_flags([key.flag])
    except InvalidFlag:
        return None if key.present else fts.FlagTest(0, False)
    return fts.KeywordTest(next(iter(kws)), key.present)


def _date_test(key: SearchDate) -> fts.Test:
    """BEFORE/SINCE on the internal date, SENT* on the Date header (ON is handled apart)."""
    d = key.date
    if key.field == "BEFORE":
        return fts.ReceivedTest(True, _day_us(d))
    if key.field == "SINCE":
        return fts.ReceivedTest(False, _day_us(d))
    op = {"SENTBEFORE": "<", "SENTON": "=", "SENTSINCE": ">="}[key.field]
    return fts.SentDateTest(op, d.isoformat())


# --- responses ---------------------------------------------------------------------------


def _check_charset(cmd: Search) -> None:
    if cmd.charset is not None and cmd.charset.upper() not in CHARSETS:
        raise IMAPNo(
            "unsupported charset", code="BADCHARSET (" + " ".join(CHARSETS) + ")"
        )  # RFC 9051 6.4.4


def _numbers(ctx: CommandContext, uids: Sequence[int], uid: bool) -> list[int]:
    """UIDs, or their sequence numbers (``uids`` are all in the view)."""
    if uid:
        return list(uids)
    view = ctx.view.uids
    if len(uids) < 64:
        return [bisect.bisect_left(view, u) + 1 for u in uids]
    seq = {u: i for i, u in enumerate(view, 1)}
    return [seq[u] for u in uids]


async def cmd_search(ctx: CommandContext, cmd: Search) -> None:
    """Answer SEARCH / UID SEARCH with ``* SEARCH`` or ``* ESEARCH`` (and SAVE).

    Raises IMAPNo ``[BADCHARSET (UTF-8 US-ASCII)]`` for other charsets, IMAPBad for
    an invalid sequence set.
    """
    _check_charset(cmd)
    ev = _Evaluator(ctx)
    matched = sorted(await ev.eval(cmd.key, set(ctx.view.uids)))
    modseq: int | None = None
    if ev.used_modseq:
        ctx.enable_condstore()  # RFC 7162 3.1: MODSEQ search is CONDSTORE-enabling
        modseq = ctx.store.max_modseq(ctx.view.mailbox_id, matched) if matched else None
    options = cmd.return_options
    if options is None and not ctx.rev2:
        nums = _numbers(ctx, matched, cmd.uid)
        ctx.untagged(_search_line(nums, modseq))
        return
    opts = set(options or ())
    if not opts - {"SAVE"} and options is not None and "SAVE" in opts:
        # RFC 5182 2.1: SAVE alone saves the result and sends no ESEARCH.
        ctx.set_searchres(matched)
        return
    if not opts - {"SAVE"}:
        opts.add("ALL")  # RFC 4731 3.1: RETURN () means ALL; rev2 plain SEARCH too
    if "SAVE" in opts:
        ctx.set_searchres(_saved(matched, opts))
    ctx.untagged(_esearch_line(ctx, cmd, matched, opts, modseq))


def _saved(matched: list[int], opts: set[str]) -> list[int]:
    """RFC 5182 2.1: with only MIN and/or MAX, just those are saved."""
    if not matched or opts & {"ALL", "COUNT"} or not opts & {"MIN", "MAX"}:
        return matched
    out = set()
    if "MIN" in opts:
        out.add(matched[0])
    if "MAX" in opts:
        out.add(matched[-1])
    return sorted(out)


def _search_line(nums: Sequence[int], modseq: int | None) -> bytes:
    line = b"* SEARCH" + b"".join(b" %d" % n for n in nums)
    if modseq is not None:
        line += b" (MODSEQ %d)" % modseq
    return line


def _esearch_line(
    ctx: CommandContext, cmd: Search, matched: list[int], opts: set[str], modseq: int | None
) -> bytes:
    # RFC 4731 3.1 / RFC 9051 7.3.4: ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set
    line = b"* ESEARCH (TAG " + protocol.quoted(cmd.tag) + b")"
    if cmd.uid:
        line += b" UID"
    nums = _numbers(ctx, matched, cmd.uid)
    if nums:
        if "MIN" in opts:
            line += b" MIN %d" % min(nums)
        if "MAX" in opts:
            line += b" MAX %d" % max(nums)
    if "COUNT" in opts:
        line += b" COUNT %d" % len(nums)
    if nums and "ALL" in opts:
        line += b" ALL " + protocol.number_set(nums)
    if modseq is not None and nums:
        line += b" MODSEQ %d" % modseq  # RFC 7162 3.1.5
    return line
