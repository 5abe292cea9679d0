"""Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB,
NAMESPACE, STATUS.

Names: the store keeps ``Inbox`` and ``/`` as the hierarchy separator; clients see
``INBOX`` (:func:`~app.imap.session.imap_name`), in modified UTF-7 until they
enable UTF8=ACCEPT or IMAP4rev2. Names may contain ``*`` and ``%``: in a LIST
pattern they are wildcards, which also match themselves.
"""

import re
from collections.abc import Iterable, Sequence

from app.imap import protocol as p
from app.imap.commands import (
    Create,
    Delete,
    List,
    Lsub,
    Namespace,
    Rename,
    Select,
    Status,
    Subscribe,
    Unsubscribe,
)
from app.imap.context import MailboxView
from app.imap.errors import IMAPBad, IMAPNo
from app.imap.session import PERMANENT_FLAGS, Reply, Session, flags_text, imap_name
from app.store import (
    Mailbox,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotAllowed,
    SpecialUse,
)
from app.store.types import Flag

SEP = "/"
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})
_SPECIAL_BY_UPPER = {s.value.upper(): s for s in SpecialUse}


# --- SELECT / EXAMINE ---------------------------------------------------------------


async def select(s: Session, cmd: Select) -> Reply:
    """RFC 9051 6.3.2/6.3.3, RFC 7162 3.1.8 (CONDSTORE) and 3.2.5 (QRESYNC)."""
    if cmd.qresync is not None and not s.qresync:
        raise IMAPBad("QRESYNC is not enabled")  # RFC 7162 3.2.5
    if s.selected:
        s.deselect()
        if s.rev2 or s.condstore:
            s.untagged(b"* OK [CLOSED] previous mailbox closed")  # RFC 7162 3.2.11
    store = s.store
    mb = store.mailbox(cmd.mailbox)
    if cmd.condstore:
        s.enable_condstore()
    sub = store.subscribe()
    try:
        uids, keywords = await store.uids_and_keywords(mb.id)
        mb = store.mailbox_by_id(mb.id)
    except BaseException:
        store.unsubscribe(sub)
        raise
    view = MailboxView(mb.id, mb.name, mb.uidvalidity, uids, readonly=cmd.readonly)
    s.select(view, sub, _recent_at_select(s, mb, uids, cmd.readonly))
    _select_responses(s, mb, len(uids), sorted(keywords), cmd.readonly)
    if cmd.qresync is not None and cmd.qresync.uidvalidity == mb.uidvalidity:
        await _qresync(s, mb, cmd)
    name = "EXAMINE" if cmd.readonly else "SELECT"
    return Reply(f"{name} done", p.READ_ONLY if cmd.readonly else p.READ_WRITE)


def _recent_at_select(s: Session, mb: Mailbox, uids: Sequence[int], readonly: bool) -> set[int]:
    mark = s.shared.recent_mark(s.account, mb.id)
    recent = set() if mark is None else {u for u in uids if u >= mark}
    if not readonly:
        s.shared.set_recent_mark(s.account, mb.id, mb.uidnext)
    return recent


def _select_responses(
    s: Session, mb: Mailbox, exists: int, keywords: list[str], readonly: bool
) -> None:
    system = [f.value for f in (Flag.SEEN, Flag.ANSWERED, Flag.FLAGGED, Flag.DELETED, Flag.DRAFT)]
    s.untagged(b"* FLAGS " + p.flag_list(system + keywords))
    perm = [] if readonly else [*PERMANENT_FLAGS[:-1], *keywords, "\\*"]
    s.untagged(b"* OK " + p.permanentflags(perm).render() + b" flags")
    s.untagged(b"* %d EXISTS" % exists)
    if not s.rev2:
        s.untagged(b"* %d RECENT" % len(s.recent))
    s.untagged(b"* OK " + p.uidvalidity(mb.uidvalidity).render() + b" uidvalidity")
    s.untagged(b"* OK " + p.uidnext(mb.uidnext).render() + b" next uid")
    s.untagged(b"* OK " + p.highestmodseq(max(1, mb.highest_modseq)).render() + b" modseq")
    if s.rev2:
        # RFC 9051 6.3.2: a LIST response with the mailbox name.
        s.untagged(b'* LIST () "/" ' + s.mailbox_wire(mb.name))


async def _qresync(s: Session, mb: Mailbox, cmd: Select) -> None:
    """RFC 7162 3.2.5.1: VANISHED (EARLIER) and FETCH for what changed since modseq."""
    q = cmd.qresync
    assert q is not None
    largest = max(1, mb.uidnext - 1)
    gone = s.store.vanished_since(mb.id, q.modseq)
    if q.known_uids is not None:
        known = q.known_uids
        gone = [u for u in gone if known.contains(u, largest)]
    if gone:
        s.untagged(b"* VANISHED (EARLIER) " + p.number_set(gone))
    view = s.view
    for m in await s.store.changes_since(mb.id, q.modseq):
        seq = view.seq_of(m.uid)
        if seq is None:
            continue
        fl = flags_text(m.flags, m.keywords, not s.rev2 and m.uid in s.recent)
        s.untagged(b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))" % (seq, m.uid, fl, m.modseq))


# --- CREATE / DELETE / RENAME / SUBSCRIBE ------------------------------------------------


def _strip(name: str) -> str:
    # RFC 9051 6.3.4: a trailing separator only says that children are intended.
    stripped = name.rstrip(SEP)
    return stripped or name


async def create(s: Session, cmd: Create) -> Reply | None:
    """RFC 9051 6.3.4; CREATE-SPECIAL-USE (RFC 6154 3)."""
    name = _strip(cmd.mailbox)
    if name.upper() == "INBOX":
        raise IMAPNo("INBOX exists", "ALREADYEXISTS")
    special: SpecialUse | None = None
    if cmd.special_use:
        uses = [_SPECIAL_BY_UPPER.get(u.upper()) for u in cmd.special_use]
        if len(uses) != 1 or uses[0] is None:
            raise IMAPNo("special-use attribute not supported", "USEATTR")
        special = uses[0]
    try:
        await s.store.create_mailbox(name, special)
    except MailboxExists:
        raise IMAPNo("mailbox exists", "ALREADYEXISTS") from None
    return None


async def delete(s: Session, cmd: Delete) -> Reply | None:
    """RFC 9051 6.3.5: children must be deleted first; INBOX cannot be."""
    try:
        await s.store.delete_mailbox(cmd.mailbox)
    except MailboxHasChildren:
        raise IMAPNo("mailbox has children, delete them first", "HASCHILDREN") from None
    except MailboxNotAllowed as e:
        raise IMAPNo(e.reason, "CANNOT") from None
    return None


async def rename(s: Session, cmd: Rename) -> Reply | None:
    """RFC 9051 6.3.6; renaming INBOX moves its messages."""
    new = _strip(cmd.new)
    try:
        await s.store.rename_mailbox(cmd.old, new)
    except MailboxExists:
        raise IMAPNo("destination mailbox exists", "ALREADYEXISTS") from None
    except MailboxNotAllowed as e:
        raise IMAPNo(e.reason, "CANNOT") from None
    if s.rev2:
        # RFC 9051 7.3.1: OLDNAME tells the client which mailbox this was.
        old = p.mailbox(cmd.old, utf8=s.utf8)
        s.untagged(b'* LIST () "/" ' + p.mailbox(new, utf8=s.utf8) + b' ("OLDNAME" (' + old + b"))")
    return None


async def subscribe(s: Session, cmd: Subscribe) -> Reply | None:
    """RFC 9051 6.3.7; the name need not exist."""
    await s.store.set_subscribed(cmd.mailbox, True)
    return None


async def unsubscribe(s: Session, cmd: Unsubscribe) -> Reply | None:
    """RFC 9051 6.3.8."""
    await s.store.set_subscribed(cmd.mailbox, False)
    return None


async def namespace(s: Session, cmd: Namespace) -> Reply | None:
    """RFC 2342: one personal namespace, no others."""
    s.untagged(b'* NAMESPACE (("" "/")) NIL NIL')
    return None


# --- LIST / LSUB -------------------------------------------------------------------------


def pattern_matcher(reference: str, patterns: Iterable[str]) -> re.Pattern[str]:
    """RFC 9051 6.3.9: ``*`` matches anything, ``%`` anything but the separator."""
    alts = []
    for pat in patterns:
        full = reference + pat
        if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in "/*%"):
            full = "INBOX" + full[5:]
        rx = "".join(".*" if ch == "*" else "[^/]*" if ch == "%" else re.escape(ch) for ch in full)
        alts.append(rx)
    return re.compile("(?:" + "|".join(alts) + r")\Z", re.DOTALL)


def _children_of(names: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for n in names:
        parts = n.split(SEP)
        for i in range(1, len(parts)):
            out.add(SEP.join(parts[:i]))
    return out


def _list_options(cmd: List) -> tuple[set[str], set[str]]:
    sel = set(cmd.selection)
    ret = set(cmd.return_options)
    if sel - LIST_SELECTION:
        raise IMAPBad("unknown LIST selection option")  # RFC 5258 3
    if ret - LIST_RETURN:
        raise IMAPBad("unknown LIST return option")
    if "RECURSIVEMATCH" in sel and not sel & {"SUBSCRIBED", "SPECIAL-USE"}:
        raise IMAPBad("RECURSIVEMATCH needs another selection option")  # RFC 5258 3.1
    return sel, ret


async def list_(s: Session, cmd: List) -> Reply | None:
    """LIST with LIST-EXTENDED (RFC 5258), SPECIAL-USE (RFC 6154), LIST-STATUS (RFC 5819)."""
    sel, ret = _list_options(cmd)
    if not cmd.extended and cmd.reference == "" and cmd.patterns == ("",):
        s.untagged(b'* LIST (\\Noselect) "/" ""')  # RFC 9051 6.3.9: the hierarchy separator
        return None
    patterns = [x for x in cmd.patterns if x] if cmd.extended else list(cmd.patterns)
    if not patterns:
        return None
    rx = pattern_matcher(cmd.reference, patterns)
    boxes = {imap_name(m.name): m for m in s.store.list_mailboxes()}
    subs = {imap_name(n) for n in s.store.subscriptions()}
    has_child = _children_of(boxes)
    want_subscribed = "SUBSCRIBED" in sel
    want_special = "SPECIAL-USE" in sel
    if want_subscribed:
        selected = set(subs)
    elif want_special:
        selected = {n for n, m in boxes.items() if m.special_use is not None}
    else:
        selected = set(boxes)
    childinfo = _children_of(selected) if "RECURSIVEMATCH" in sel else set()
    for name in sorted(selected | childinfo, key=lambda n: (n != "INBOX", n)):
        if not rx.match(name):
            continue
        mb = boxes.get(name)
        attrs: list[str] = []
        if name in selected:
            if want_subscribed or "SUBSCRIBED" in ret:
                attrs += ["\\Subscribed"] if name in subs else []
            if mb is None:
                attrs.append("\\NonExistent")
        elif mb is None:
            attrs.append("\\NonExistent")
        if mb is not None:
            attrs.append("\\HasChildren" if name in has_child else "\\HasNoChildren")
            if mb.special_use is not None:
                attrs.append(mb.special_use.value)
        extended = b""
        if name in childinfo and name not in selected:
            what = b'"SUBSCRIBED"' if want_subscribed else b'"SPECIAL-USE"'
            extended = b'("CHILDINFO" (' + what + b"))"
        elif name in childinfo:
            extended = b'("CHILDINFO" ("SUBSCRIBED"))' if want_subscribed else b""
        s.emit(s.builder().list_item(attrs, SEP, name, extended=extended))
        if cmd.return_status is not None and mb is not None:
            await _status_line(s, mb, cmd.return_status)
    return None


async def lsub(s: Session, cmd: Lsub) -> Reply | None:
    """RFC 3501 6.3.9: subscribed names matching the pattern."""
    rx = pattern_matcher(cmd.reference, [cmd.pattern])
    boxes = {imap_name(m.name) for m in s.store.list_mailboxes()}
    for name in sorted(imap_name(n) for n in s.store.subscriptions()):
        if rx.match(name):
            attrs = [] if name in boxes else ["\\Noselect"]
            s.emit(s.builder().list_item(attrs, SEP, name, kind="LSUB"))
    return None


# --- STATUS ----------------------------------------------------------------------------


async def status(s: Session, cmd: Status) -> Reply | None:
    """RFC 9051 6.3.11, RFC 8438 (SIZE), RFC 7162 (HIGHESTMODSEQ), RFC 7889 (APPENDLIMIT)."""
    mb = s.store.mailbox(cmd.mailbox)
    await _status_line(s, mb, cmd.items)
    return None


async def _status_line(s: Session, mb: Mailbox, items: Sequence[str]) -> None:
    values: list[tuple[str, int]] = []
    for item in items:
        values.append((item, await _status_value(s, mb, item)))
    s.emit(s.builder().status(imap_name(mb.name), values))


async def _status_value(s: Session, mb: Mailbox, item: str) -> int:
    simple = {
        "MESSAGES": mb.total,
        "UIDNEXT": mb.uidnext,
        "UIDVALIDITY": mb.uidvalidity,
        "UNSEEN": mb.unseen,
        "DELETED": mb.deleted,
        "SIZE": mb.size,
        "APPENDLIMIT": s.services.config.limits.max_message_size,
    }
    if item in simple:
        return simple[item]
    if item == "HIGHESTMODSEQ":
        s.enable_condstore()  # RFC 7162 3.1.2
        return max(1, mb.highest_modseq)
    if item == "RECENT":
        if s.selected and s.view.mailbox_id == mb.id:
            return len(s.recent)
        mark = s.shared.recent_mark(s.account, mb.id)
        return 0 if mark is None else max(0, mb.uidnext - mark)
    if item == "DELETED-STORAGE":
        if not mb.deleted:
            return 0
        msgs = await s.store.messages(mb.id)
        return sum(m.size for m in msgs if Flag.DELETED in m.flags)
    raise IMAPBad("unknown status item")
