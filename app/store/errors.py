"""Exceptions of the store: one base class, data carried as attributes.

Protocol layers map them to replies (``QuotaExceeded`` is SMTP 452 4.2.2 and IMAP
``[OVERQUOTA]``); the text of an exception never reaches a client.
"""


class StoreError(Exception):
    """Base class of every error raised by :mod:`app.store`."""


class StoreClosed(StoreError):
    """The account store was closed; the operation did not run."""

    def __init__(self, account: str) -> None:
        super().__init__(f"account store {account!r} is closed")
        self.account = account


class AccountInUse(StoreError):
    """Another process holds the account's lock file (a running server, a repair)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"account directory {path!r} is in use by another process")
        self.path = path


class QuotaExceeded(StoreError):
    """Adding ``size`` bytes to ``usage`` would exceed ``limit`` (RFC 9208 OVERQUOTA)."""

    def __init__(self, limit: int, usage: int, size: int) -> None:
        super().__init__(f"quota exceeded: limit {limit}, usage {usage}, adding {size}")
        self.limit = limit
        self.usage = usage
        self.size = size


class InvalidMailboxName(StoreError):
    """A mailbox name that cannot be stored (empty component, control character, ...)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"invalid mailbox name {name!r}: {reason}")
        self.name = name
        self.reason = reason


class MailboxNotFound(StoreError):
    """No mailbox with this name (or id)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no such mailbox {name!r}")
        self.name = name


class MailboxExists(StoreError):
    """A mailbox with this name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"mailbox {name!r} exists")
        self.name = name


class MailboxHasChildren(StoreError):
    """Deleting a mailbox that has child mailboxes; delete the children first."""

    def __init__(self, name: str) -> None:
        super().__init__(f"mailbox {name!r} has children")
        self.name = name


class MailboxNotAllowed(StoreError):
    """The operation is not allowed on this mailbox (deleting Inbox)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"not allowed on mailbox {name!r}: {reason}")
        self.name = name
        self.reason = reason


class InvalidFlag(StoreError):
    """A flag or keyword that is not an IMAP atom, or an unknown system flag."""

    def __init__(self, flag: str) -> None:
        super().__init__(f"invalid flag {flag!r}")
        self.flag = flag


class MessageGone(StoreError):
    """The message was expunged (its content is no longer stored)."""

    def __init__(self, message_id: int) -> None:
        super().__init__(f"message {message_id} is gone")
        self.message_id = message_id


class SubscriptionOverflow(StoreError):
    """A change subscriber fell too far behind; its changes were dropped.

    The session must resynchronise (IMAP: re-read the mailbox state, or close the
    connection with BYE) and call :meth:`Subscription.reset`.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"change subscription overflowed its buffer of {limit}")
        self.limit = limit
