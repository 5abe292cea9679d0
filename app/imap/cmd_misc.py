"""CAPABILITY, NOOP, LOGOUT, ID, ENABLE, IDLE, CHECK and the QUOTA commands."""

import app
from app.imap import protocol as p
from app.imap.commands import (
    Capability,
    Check,
    Enable,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    Logout,
    Noop,
    SetQuota,
)
from app.imap.errors import IMAPNo
from app.imap.session import Reply, Session, State

# ENABLE-able capabilities (RFC 5161) and how ENABLED names them.
ENABLEABLE = {
    "IMAP4REV2": "IMAP4rev2",
    "UTF8=ACCEPT": "UTF8=ACCEPT",
    "CONDSTORE": "CONDSTORE",
    "QRESYNC": "QRESYNC",
}
MAX_ID_LOG = 200


async def capability(s: Session, cmd: Capability) -> Reply | None:
    """RFC 9051 6.1.1."""
    s.untagged(b"* CAPABILITY " + " ".join(s.capabilities()).encode("ascii"))
    return None


async def noop(s: Session, cmd: Noop) -> Reply | None:
    """RFC 9051 6.1.2: the shell sends pending updates after every command."""
    return None


async def check(s: Session, cmd: Check) -> Reply | None:
    """RFC 3501 6.4.1: everything is durable already."""
    return None


async def logout(s: Session, cmd: Logout) -> Reply:
    """RFC 9051 6.1.3: BYE, tagged OK, close."""
    s.untagged(b"* BYE logging out")
    s.deselect()
    s.state = State.LOGOUT
    return Reply("LOGOUT done")


async def id_(s: Session, cmd: Id) -> Reply | None:
    """RFC 2971: log what the client says about itself, say who we are."""
    if cmd.params:
        fields = {k.lower()[:40]: (v or "")[:MAX_ID_LOG] for k, v in cmd.params[:10]}
        s.log.info("client id", extra={"client": fields})
    s.untagged(b'* ID ("name" "Pillarbox" "version" ' + p.quoted(app.__version__) + b")")
    return None


async def enable(s: Session, cmd: Enable) -> Reply | None:
    """RFC 5161; only newly enabled capabilities are listed in ENABLED."""
    new: list[str] = []
    for cap in cmd.capabilities:
        canonical = ENABLEABLE.get(cap.upper())
        if canonical is None or cap.upper() in s.enabled:
            continue
        s.enabled.add(cap.upper())
        new.append(canonical)
        if cap.upper() in ("CONDSTORE", "QRESYNC"):
            s.enable_condstore()  # RFC 7162 3.2.3: QRESYNC implies CONDSTORE
    s.untagged(b"* ENABLED" + b"".join(b" " + n.encode("ascii") for n in new))
    return None


async def idle(s: Session, cmd: Idle) -> Reply:
    """RFC 2177: report changes until DONE."""
    await s.io.idle(cmd.tag)
    return Reply("IDLE terminated")


def _quota_line(s: Session) -> bytes | None:
    u = s.store.quota_usage()
    if u.limit is None:
        return None
    # RFC 9208 5.1: STORAGE is in units of 1024 octets.
    used = (u.usage + 1023) // 1024
    return b'* QUOTA "" (STORAGE %d %d)' % (used, u.limit // 1024)


async def getquotaroot(s: Session, cmd: GetQuotaRoot) -> Reply | None:
    """RFC 9208 4.3: one quota root ``""`` for the whole account (when limited)."""
    s.store.mailbox(cmd.mailbox)
    name = p.mailbox(cmd.mailbox, utf8=s.utf8)
    line = _quota_line(s)
    if line is None:
        s.untagged(b"* QUOTAROOT " + name)
        return None
    s.untagged(b"* QUOTAROOT " + name + b' ""')
    s.untagged(line)
    return None


async def getquota(s: Session, cmd: GetQuota) -> Reply | None:
    """RFC 9208 4.2."""
    line = _quota_line(s) if cmd.root == "" else None
    if line is None:
        raise IMAPNo("no such quota root", "NONEXISTENT")
    s.untagged(line)
    return None


async def setquota(s: Session, cmd: SetQuota) -> Reply | None:
    """RFC 9208 4.1: limits are set by the administrator."""
    raise IMAPNo("quota limits are set by the administrator", "NOPERM")
