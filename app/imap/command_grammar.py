"""Command-level IMAP grammar: one framed command line -> a typed :class:`Command`.

Each command has a small function taking a :class:`Reader` positioned after the
command name (and its SP, when the command has arguments). ``UID`` prefixes
are resolved into the ``uid`` field. APPEND message literals are handled by the
framing in :mod:`app.imap.parser`; only the pieces it needs are here.
"""

import base64
import binascii
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass

from app.imap import commands as c
from app.imap.grammar import (
    TAG_CHARS,
    Pending,
    Reader,
    SearchParser,
    Syntax,
    xfetch_atts,
)

STATUS_ITEMS = (
    "MESSAGES",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "DELETED-STORAGE",  # RFC 9208 4.2
    "DELETED",
    "SIZE",  # RFC 8438
    "RECENT",  # RFC 3501
    "HIGHESTMODSEQ",  # RFC 7162 3.1.6
    "APPENDLIMIT",  # RFC 7889
)
SEARCH_RETURN = ("MIN", "MAX", "ALL", "COUNT", "SAVE")  # RFC 4731 3.1, RFC 5182 2.2
MAX_LIST_PATTERNS = 100


def xtag(r: Reader) -> str:
    """RFC 9051 9: tag = 1*<any ASTRING-CHAR except "+">."""
    raw = r.chars(TAG_CHARS)
    if not raw or not (r.peek() == 0x20 or r.at_end()):
        raise Syntax("invalid tag")
    return raw.decode("ascii")


def peek_tag(line: bytes) -> str | None:
    """The tag of a (possibly partial or over-long) line, or None when invalid."""
    n = 0
    while n < len(line) and n < 256 and line[n] in TAG_CHARS:
        n += 1
    if n == 0 or (n < len(line) and line[n] != 0x20) or n == 256:
        return None
    return line[:n].decode("ascii")


_COMMAND_NAME = re.compile(rb"[A-Z]+")


def xcommand_name(r: Reader) -> str:
    m = _COMMAND_NAME.match(r.u, r.i)
    if m is None:
        raise Syntax("expected command")
    r.i = m.end()
    return m.group().decode("ascii")


# --- simple commands ---------------------------------------------------------

_NOARG: dict[str, Callable[[str], c.Command]] = {
    "CAPABILITY": c.Capability,
    "NOOP": c.Noop,
    "LOGOUT": c.Logout,
    "STARTTLS": c.StartTLS,
    "NAMESPACE": c.Namespace,
    "IDLE": c.Idle,
    "CHECK": c.Check,
    "CLOSE": c.Close,
    "UNSELECT": c.Unselect,
    "EXPUNGE": c.Expunge,
}


def p_authenticate(r: Reader, tag: str) -> c.Command:
    """RFC 9051 6.2.2; SASL-IR initial response (RFC 4959 7)."""
    mech = r.xatom().upper()
    initial: bytes | None = None
    if r.space():
        raw = r.xchars(
            frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
            "base64",
        )
        if raw == b"=":
            initial = b""  # RFC 4959 7: "=" is an empty initial response
        else:
            try:
                initial = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise Syntax("invalid base64") from None
    return c.Authenticate(tag, mech, initial)


def p_login(r: Reader, tag: str) -> c.Command:
    user = r.xastring()
    r.xspace()
    return c.Login(tag, user, r.xastring())


def p_enable(r: Reader, tag: str) -> c.Command:
    """RFC 5161 3: ENABLE 1*(SP capability)."""
    caps = [r.xatom().upper()]
    while r.space():
        caps.append(r.xatom().upper())
    return c.Enable(tag, tuple(caps))


def _xparenthesised(r: Reader, item: Callable[[], object]) -> None:
    r.xtake(b"(")
    item()
    while not r.take(b")"):
        r.xspace()
        item()


def p_select(r: Reader, tag: str, readonly: bool) -> c.Command:
    """RFC 9051 6.3.2; select-params per RFC 7162 3.1.8 / 3.2.5."""
    mailbox = r.xmailbox()
    condstore = False
    qresync: c.QResync | None = None
    if r.space():
        r.xtake(b"(")
        while True:
            if r.take_word(("CONDSTORE",)):
                condstore = True
            elif r.take_word(("QRESYNC",)):
                if qresync is not None:
                    raise Syntax("duplicate QRESYNC")
                r.xspace()
                qresync = _xqresync(r)
            else:
                raise Syntax("unknown select parameter")
            if r.take(b")"):
                break
            r.xspace()
    return c.Select(tag, mailbox, readonly, condstore, qresync)


def _xqresync(r: Reader) -> c.QResync:
    # RFC 7162 7: "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
    r.xtake(b"(")
    uidvalidity = r.xnznumber()
    r.xspace()
    modseq = r.xnumber64()
    known: c.NumSet | None = None
    match: tuple[c.NumSet, c.NumSet] | None = None
    if r.space():
        if r.peek() != 0x28:
            known = r.xuid_set()
            if not r.space():
                r.xtake(b")")
                return c.QResync(uidvalidity, modseq, known, None)
        r.xtake(b"(")
        seqs = r.xnumset(allow_saved=False)
        r.xspace()
        uids = r.xuid_set()
        r.xtake(b")")
        match = (seqs, uids)
    r.xtake(b")")
    return c.QResync(uidvalidity, modseq, known, match)


def p_create(r: Reader, tag: str) -> c.Command:
    """RFC 9051 6.3.4; CREATE-SPECIAL-USE: SP "(" "USE" SP "(" flags ")" ")" (RFC 6154 3)."""
    mailbox = r.xmailbox()
    uses: list[str] = []
    if r.space():
        r.xtake(b"(")
        r.xtake(b"USE ", "USE")
        r.xtake(b"(")
        while True:
            r.xtake(b"\\", "special-use flag")
            uses.append("\\" + r.xatom())
            if r.take(b")"):
                break
            r.xspace()
        r.xtake(b")")
    return c.Create(tag, mailbox, tuple(uses))


def p_rename(r: Reader, tag: str) -> c.Command:
    old = r.xmailbox()
    r.xspace()
    return c.Rename(tag, old, r.xmailbox())


def p_list(r: Reader, tag: str) -> c.Command:
    """RFC 9051 6.3.9; LIST-EXTENDED (RFC 5258 6), LIST-STATUS (RFC 5819 4)."""
    selection: list[str] = []
    extended = False
    if r.take(b"("):
        extended = True
        if not r.take(b")"):
            selection.append(r.xatom().upper())
            while not r.take(b")"):
                r.xspace()
                selection.append(r.xatom().upper())
        r.xspace()
    reference = r.xmailbox()
    r.xspace()
    patterns: list[str] = []
    if r.take(b"("):
        extended = True
        patterns.append(r.xlist_mailbox())
        while not r.take(b")"):
            r.xspace()
            patterns.append(r.xlist_mailbox())
            if len(patterns) > MAX_LIST_PATTERNS:
                raise Syntax("too many patterns")
    else:
        patterns.append(r.xlist_mailbox())
    options: list[str] = []
    status: tuple[str, ...] | None = None
    if r.space():
        extended = True
        r.xtake(b"RETURN", "RETURN")
        r.xspace()
        r.xtake(b"(")
        while not r.take(b")"):
            if options or status is not None:
                r.xspace()
            opt = r.xatom().upper()
            if opt == "STATUS":
                r.xspace()
                status = _xstatus_items(r)
            else:
                options.append(opt)
    return c.List(
        tag, reference, tuple(patterns), tuple(selection), tuple(options), status, extended
    )


def p_lsub(r: Reader, tag: str) -> c.Command:
    reference = r.xmailbox()
    r.xspace()
    return c.Lsub(tag, reference, r.xlist_mailbox())


def _xstatus_items(r: Reader) -> tuple[str, ...]:
    """RFC 9051 9: "(" status-att *(SP status-att) ")"."""
    items: list[str] = []

    def one() -> None:
        w = r.take_word(STATUS_ITEMS)
        if w is None:
            raise Syntax("unknown status attribute")
        items.append(w)

    _xparenthesised(r, one)
    return tuple(items)


def p_status(r: Reader, tag: str) -> c.Command:
    mailbox = r.xmailbox()
    r.xspace()
    return c.Status(tag, mailbox, _xstatus_items(r))


def _xsearch_program(r: Reader) -> tuple[tuple[str, ...] | None, str | None, c.SearchKey]:
    returns: tuple[str, ...] | None = None
    if r.take(b"RETURN "):
        # RFC 4731 3.1: search-return-opts = SP "RETURN" SP "(" [opt *(SP opt)] ")"
        opts: list[str] = []
        r.xtake(b"(")
        while not r.take(b")"):
            if opts:
                r.xspace()
            w = r.take_word(SEARCH_RETURN)
            if w is None:
                raise Syntax("unknown search return option")
            opts.append(w)
        returns = tuple(opts)
        r.xspace()
    charset: str | None = None
    if r.take(b"CHARSET "):
        charset = r.xastring().upper()
        r.xspace()
    sp = SearchParser(r, charset)
    return returns, charset, sp.keys()


def p_search(r: Reader, tag: str, uid: bool) -> c.Command:
    returns, charset, key = _xsearch_program(r)
    return c.Search(tag, uid, key, charset, returns)


def p_fetch(r: Reader, tag: str, uid: bool) -> c.Command:
    """RFC 9051 6.4.5; fetch-modifiers per RFC 7162 3.1.4.1 and 3.2.6."""
    numbers = r.xnumset()
    r.xspace()
    atts = xfetch_atts(r)
    changedsince: int | None = None
    vanished = False
    if r.space():
        r.xtake(b"(")
        while True:
            if r.take_word(("CHANGEDSINCE",)):
                r.xspace()
                changedsince = r.xnznumber(2**63 - 1)
            elif r.take_word(("VANISHED",)):
                vanished = True
            else:
                raise Syntax("unknown fetch modifier")
            if r.take(b")"):
                break
            r.xspace()
    if vanished and (not uid or changedsince is None):
        # RFC 7162 3.2.6: VANISHED only with UID FETCH and CHANGEDSINCE.
        raise Syntax("VANISHED requires UID FETCH with CHANGEDSINCE")
    return c.Fetch(tag, uid, numbers, atts, changedsince, vanished)


def p_store(r: Reader, tag: str, uid: bool) -> c.Command:
    """RFC 9051 6.4.6; UNCHANGEDSINCE per RFC 7162 3.1.3."""
    numbers = r.xnumset()
    r.xspace()
    unchanged: int | None = None
    if r.take(b"("):
        r.xtake(b"UNCHANGEDSINCE ", "UNCHANGEDSINCE")
        unchanged = r.xnumber64()
        r.xtake(b")")
        r.xspace()
    mode = "+" if r.take(b"+") else "-" if r.take(b"-") else ""
    r.xtake(b"FLAGS", "FLAGS")
    silent = r.take(b".SILENT")
    r.xspace()
    if r.peek() == 0x28:
        flags = r.xflag_list()
    else:
        # RFC 9051 9: store-att-flags = ... (flag-list / (flag *(SP flag)))
        fl = [r.xflag()]
        while r.space():
            fl.append(r.xflag())
        flags = tuple(fl)
    return c.Store(tag, uid, numbers, mode, silent, flags, unchanged)


def p_copy_move(r: Reader, tag: str, uid: bool, move: bool) -> c.Command:
    numbers = r.xnumset()
    r.xspace()
    mailbox = r.xmailbox()
    return (c.Move if move else c.Copy)(tag, uid, numbers, mailbox)


def p_setquota(r: Reader, tag: str) -> c.Command:
    """RFC 9208 4.3: SETQUOTA quota-root SP "(" [setquota-resource *(SP ...)] ")"."""
    root = r.xastring()
    r.xspace()
    r.xtake(b"(")
    limits: list[tuple[str, int]] = []
    while not r.take(b")"):
        if limits:
            r.xspace()
        name = r.xatom().upper()
        r.xspace()
        limits.append((name, r.xnumber64()))
    return c.SetQuota(tag, root, tuple(limits))


def p_id(r: Reader, tag: str) -> c.Command:
    """RFC 2971 4: "ID" SP ( "(" [string SP nstring *(SP string SP nstring)] ")" / nil )."""
    if r.take_word(("NIL",)):
        return c.Id(tag, None)
    r.xtake(b"(")
    params: list[tuple[str, str | None]] = []
    while not r.take(b")"):
        if params:
            r.xspace()
        key = r.xstring()
        r.xspace()
        params.append((key, r.xnstring()))
        if len(params) > 30:  # RFC 2971 3.3: at most 30 pairs
            raise Syntax("too many ID parameters")
    return c.Id(tag, tuple(params))


def p_sort(r: Reader, tag: str, uid: bool) -> c.Command:
    """RFC 5256 BNF: SORT SP sort-criteria SP search-criteria (charset required)."""
    crit: list[str] = []

    def one() -> None:
        word = r.xatom().upper()
        if word == "REVERSE":
            r.xspace()
            word += " " + r.xatom().upper()
        crit.append(word)

    _xparenthesised(r, one)
    r.xspace()
    charset = r.xastring().upper()
    r.xspace()
    return c.Sort(tag, uid, tuple(crit), charset, SearchParser(r, charset).keys())


def p_thread(r: Reader, tag: str, uid: bool) -> c.Command:
    algorithm = r.xatom().upper()
    r.xspace()
    charset = r.xastring().upper()
    r.xspace()
    return c.Thread(tag, uid, algorithm, charset, SearchParser(r, charset).keys())


_WITH_ARGS: dict[str, Callable[[Reader, str], c.Command]] = {
    "AUTHENTICATE": p_authenticate,
    "LOGIN": p_login,
    "ENABLE": p_enable,
    "SELECT": lambda r, t: p_select(r, t, False),
    "EXAMINE": lambda r, t: p_select(r, t, True),
    "CREATE": p_create,
    "DELETE": lambda r, t: c.Delete(t, r.xmailbox()),
    "RENAME": p_rename,
    "SUBSCRIBE": lambda r, t: c.Subscribe(t, r.xmailbox()),
    "UNSUBSCRIBE": lambda r, t: c.Unsubscribe(t, r.xmailbox()),
    "LIST": p_list,
    "LSUB": p_lsub,
    "STATUS": p_status,
    "SEARCH": lambda r, t: p_search(r, t, False),
    "FETCH": lambda r, t: p_fetch(r, t, False),
    "STORE": lambda r, t: p_store(r, t, False),
    "COPY": lambda r, t: p_copy_move(r, t, False, False),
    "MOVE": lambda r, t: p_copy_move(r, t, False, True),
    "GETQUOTA": lambda r, t: c.GetQuota(t, r.xastring()),
    "GETQUOTAROOT": lambda r, t: c.GetQuotaRoot(t, r.xmailbox()),
    "SETQUOTA": p_setquota,
    "ID": p_id,
    "SORT": lambda r, t: p_sort(r, t, False),
    "THREAD": lambda r, t: p_thread(r, t, False),
}
_UID_ARGS: dict[str, Callable[[Reader, str], c.Command]] = {
    "SEARCH": lambda r, t: p_search(r, t, True),
    "FETCH": lambda r, t: p_fetch(r, t, True),
    "STORE": lambda r, t: p_store(r, t, True),
    "COPY": lambda r, t: p_copy_move(r, t, True, False),
    "MOVE": lambda r, t: p_copy_move(r, t, True, True),
    "EXPUNGE": lambda r, t: c.Expunge(t, r.xuid_set()),  # RFC 4315 2.1
    "SORT": lambda r, t: p_sort(r, t, True),
    "THREAD": lambda r, t: p_thread(r, t, True),
}


def parse_head(r: Reader) -> tuple[str, str]:
    """Tag and upper-case command name (``UID FETCH`` for UID commands)."""
    tag = xtag(r)
    r.xspace()
    name = xcommand_name(r)
    if name == "UID":
        r.xspace()
        name = "UID " + xcommand_name(r)
    return tag, name


def parse_command(r: Reader) -> c.Command:
    """Parse a complete non-APPEND command; raises :class:`Syntax` on any error."""
    tag, name = parse_head(r)
    return parse_body(r, tag, name)


def parse_body(r: Reader, tag: str, name: str) -> c.Command:
    if name in _NOARG:
        r.xend()
        return _NOARG[name](tag)
    if name.startswith("UID "):
        fn = _UID_ARGS.get(name[4:])
    else:
        fn = _WITH_ARGS.get(name)
    if fn is None:
        if name == "APPEND":
            raise Syntax("expected message literal")
        raise Syntax("unknown command")
    r.xspace()
    cmd = fn(r, tag)
    r.xend()
    return cmd


# --- APPEND ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppendPrefix:
    """What precedes one APPEND message literal (RFC 9051 9: append-opts, RFC 6855 4)."""

    flags: tuple[str, ...]
    date: datetime.datetime | None
    utf8: bool
    pending: Pending


def xappend_message_prefix(r: Reader) -> AppendPrefix:
    """``SP [flag-list SP] [date-time SP] (literal / literal8 / "UTF8" SP "(" literal8 ")")``.

    The reader must be at the pending literal after the prefix; anything else
    is a syntax error (flags and dates contain no literals).
    """
    r.xspace()
    flags: tuple[str, ...] = ()
    date: datetime.datetime | None = None
    if r.peek() == 0x28:
        flags = r.xflag_list()
        r.xspace()
    if r.peek() == 0x22:
        date = r.xdate_time()
        r.xspace()
    utf8 = False
    if r.take(b"UTF8 ("):
        utf8 = True  # RFC 6855 4: append-data =/ "UTF8" SP "(" literal8 ")"
    if not r.at_literal():
        raise Syntax("expected message literal")
    piece = r.literals[r.k]
    if not isinstance(piece, Pending):
        raise Syntax("expected message literal")
    return AppendPrefix(flags, date, utf8, piece)
