"""The IMAP dispatch tables: which command runs in which state, and by which handler.

RFC 9051 3 and 6: CAPABILITY, NOOP, LOGOUT (and ID) work in every state;
STARTTLS, LOGIN and AUTHENTICATE only before authentication; the mailbox
commands once authenticated; message commands only with a mailbox selected.
A command in the wrong state gets ``BAD`` with a reason (STARTTLS is handled
by the shell itself, it replaces the transport).
"""

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from app.imap import cmd_append, cmd_auth, cmd_mailbox, cmd_message, cmd_misc
from app.imap import commands as c
from app.imap.fetch import cmd_fetch
from app.imap.search import cmd_search
from app.imap.session import Reply, Session, State

Handler = Callable[[Session, Any], Awaitable[Reply | None]]


async def _fetch(s: Session, cmd: c.Fetch) -> Reply | None:
    await cmd_fetch(s, cmd)
    return None


async def _search(s: Session, cmd: c.Search) -> Reply | None:
    await cmd_search(s, cmd)
    return None


_ANY: dict[type[c.Command], Handler] = {
    c.Capability: cmd_misc.capability,
    c.Noop: cmd_misc.noop,
    c.Logout: cmd_misc.logout,
    c.Id: cmd_misc.id_,
}

_NOT_AUTHENTICATED: dict[type[c.Command], Handler] = {
    c.Login: cmd_auth.login,
    c.Authenticate: cmd_auth.authenticate,
}

_AUTHENTICATED: dict[type[c.Command], Handler] = {
    c.Enable: cmd_misc.enable,
    c.Select: cmd_mailbox.select,
    c.Create: cmd_mailbox.create,
    c.Delete: cmd_mailbox.delete,
    c.Rename: cmd_mailbox.rename,
    c.Subscribe: cmd_mailbox.subscribe,
    c.Unsubscribe: cmd_mailbox.unsubscribe,
    c.List: cmd_mailbox.list_,
    c.Lsub: cmd_mailbox.lsub,
    c.Namespace: cmd_mailbox.namespace,
    c.Status: cmd_mailbox.status,
    c.Append: cmd_append.append,
    c.Idle: cmd_misc.idle,
    c.GetQuota: cmd_misc.getquota,
    c.GetQuotaRoot: cmd_misc.getquotaroot,
    c.SetQuota: cmd_misc.setquota,
}

_SELECTED: dict[type[c.Command], Handler] = {
    c.Check: cmd_misc.check,
    c.Close: cmd_message.close,
    c.Unselect: cmd_message.unselect,
    c.Expunge: cmd_message.expunge,
    c.Store: cmd_message.store,
    c.Copy: cmd_message.copy,
    c.Move: cmd_message.move,
    c.Fetch: _fetch,
    c.Search: _search,
}

TABLES: Mapping[State, Mapping[type[c.Command], Handler]] = MappingProxyType(
    {
        State.NOT_AUTHENTICATED: MappingProxyType(_ANY | _NOT_AUTHENTICATED),
        State.AUTHENTICATED: MappingProxyType(_ANY | _AUTHENTICATED),
        State.SELECTED: MappingProxyType(_ANY | _AUTHENTICATED | _SELECTED),
        State.LOGOUT: MappingProxyType({}),
    }
)


def handler_for(state: State, cmd: c.Command) -> Handler | str:
    """The handler for ``cmd`` in ``state``, or the text of the BAD reply."""
    h = TABLES[state].get(type(cmd))
    if h is not None:
        return h
    kind = type(cmd)
    if kind in _NOT_AUTHENTICATED:
        return "already authenticated"
    if kind in _AUTHENTICATED and state == State.NOT_AUTHENTICATED:
        return "authenticate first"
    if kind in _SELECTED:
        return "authenticate first" if state == State.NOT_AUTHENTICATED else "no mailbox selected"
    return "command not supported"


def command_name(cmd: c.Command) -> str:
    """The command's name for replies and logs (``UID FETCH``, ``EXAMINE``...)."""
    name = type(cmd).__name__.upper()
    if isinstance(cmd, c.Select) and cmd.readonly:
        return "EXAMINE"
    if getattr(cmd, "uid", False) is True:
        return "UID " + name
    return name
