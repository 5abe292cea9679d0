"""APPEND (RFC 9051 6.3.12, UIDPLUS RFC 4315, APPENDLIMIT RFC 7889, BINARY RFC 3516).

A message literal is never held in memory: the parser hands it over in chunks
(:class:`~app.imap.parser.AppendData`) which go straight to a spool file under
``DATA/tmp``; when the command is complete, the store takes the file
(``deliver(mailbox, path)``, durable before our OK) and the spool file is removed.
A refused or broken APPEND (no such mailbox, over quota, a parse error, the
client going away mid-literal) removes its spool files at once.

Before a synchronising literal is accepted the mailbox and quota are checked,
so a client is told ``NO [TRYCREATE]`` / ``NO [OVERQUOTA]`` without sending the
message; literals over APPENDLIMIT are refused by the parser (``[TOOBIG]``).
"""

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from app.imap import protocol as p
from app.imap.commands import Append
from app.imap.errors import IMAPBad, IMAPError, IMAPNo
from app.imap.parser import AppendBegin
from app.imap.session import Reply, Session, State
from app.imap.spool import SPOOL_PREFIX
from app.store import Delivered, MailboxNotFound, QuotaExceeded
from app.store.types import Flag


@dataclass
class AppendState:
    """An APPEND command whose message literals are being received."""

    tag: str
    mailbox: str
    spools: list[tuple[Path, AppendBegin]] = field(default_factory=list)
    current: BinaryIO | None = None
    error: IMAPError | None = None


def spool_dir(s: Session) -> Path:
    return s.services.data_dir / "tmp"


def _check(s: Session, ev: AppendBegin) -> IMAPError | None:
    if s.state == State.NOT_AUTHENTICATED:
        return IMAPBad("authenticate first")
    try:
        s.store.mailbox(ev.mailbox)
    except MailboxNotFound:
        return IMAPNo("no such mailbox", "TRYCREATE")
    except Exception:
        return IMAPNo("invalid mailbox name", "CANNOT")
    u = s.store.quota_usage()
    if u.limit is not None and u.usage + ev.size > u.limit:
        return IMAPNo("over quota", "OVERQUOTA")
    return None


def begin(s: Session, ev: AppendBegin) -> bytes | None:
    """A message literal starts; returns the reply when it must be refused now.

    For a synchronising literal the shell then calls ``reject_literal`` and writes
    the reply; a non-synchronising one is read and discarded, the error is
    reported when the command ends.
    """
    st = s.append_state
    if st is None or st.tag != ev.tag or ev.index == 0:
        abort(s)
        st = s.append_state = AppendState(ev.tag, ev.mailbox)
    _close_current(st)
    err = st.error or _check(s, ev)
    if err is not None:
        st.error = err
        if ev.synchronizing:
            status = p.Status.BAD if isinstance(err, IMAPBad) else p.Status.NO
            code = err.code if isinstance(err, IMAPBad | IMAPNo) else None
            abort(s)
            return p.tagged(ev.tag, status, err.message, code)
        return None
    d = spool_dir(s)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{SPOOL_PREFIX}{s.cid}-{secrets.token_hex(8)}"
    st.current = open(path, "xb")  # noqa: SIM115 - closed at the end of the literal
    st.spools.append((path, ev))
    return None


def data(s: Session, chunk: bytes) -> None:
    """A chunk of the current message literal."""
    st = s.append_state
    if st is not None and st.current is not None:
        st.current.write(chunk)


def _close_current(st: AppendState) -> None:
    if st.current is not None:
        st.current.close()
        st.current = None


def abort(s: Session) -> None:
    """Drop an APPEND in progress and its spool files."""
    st = s.append_state
    s.append_state = None
    if st is None:
        return
    with contextlib.suppress(OSError):
        _close_current(st)
    for path, _ in st.spools:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _split_flags(words: tuple[str, ...]) -> tuple[list[Flag], list[str]]:
    flags: list[Flag] = []
    keywords: list[str] = []
    for w in words:
        if w.startswith("\\"):
            try:
                flags.append(Flag(w))
            except ValueError:
                raise IMAPBad("unknown system flag") from None
        else:
            keywords.append(w)
    return flags, keywords


async def append(s: Session, cmd: Append) -> Reply:
    """The APPEND command is complete: store every message, reply with APPENDUID."""
    st = s.append_state
    s.append_state = None
    try:
        if st is None or st.tag != cmd.tag or len(st.spools) != len(cmd.messages):
            if st is not None and st.error is not None:
                raise st.error
            raise IMAPNo("append failed")
        _close_current(st)
        if st.error is not None:
            raise st.error
        done: list[Delivered] = []
        for path, ev in st.spools:
            flags, keywords = _split_flags(ev.flags)
            done.append(
                await s.store.deliver(
                    st.mailbox, path, flags=flags, keywords=keywords, received=ev.date
                )
            )
    except MailboxNotFound:
        raise IMAPNo("no such mailbox", "TRYCREATE") from None
    except QuotaExceeded:
        raise IMAPNo("over quota", "OVERQUOTA") from None
    finally:
        if st is not None:
            s.append_state = st
            abort(s)
    mb = s.store.mailbox_by_id(done[0].mailbox_id)
    return Reply("APPEND done", p.appenduid(mb.uidvalidity, [d.uid for d in done]))
