"""Durable storage on APSW: admin database, per-account message stores, group commit.

All SQLite access in Pillarbox goes through this package.

Per-account message store (``app.store.account``), invariants:

- One directory per account: ``index.db`` (WAL, ``synchronous=FULL``, foreign keys,
  numbered migrations) and ``msg/`` with immutable files for messages at or above
  the inline threshold (default 128 KiB); smaller ones live in the ``content``
  table. A file is fsynced (and its directory) before the row naming it commits.
- A write returns only after the transaction holding it committed (fsynced).
  Writes of one account are group-committed: everything waiting when the single
  committer is free goes into one transaction; one failing operation (e.g. over
  quota) fails alone. Never one fsync per message.
- Stored size == on-disk size == what quota counts; bare LF becomes CRLF on store.
- Mailbox counts and the account's quota usage are updated in the same
  transaction as the messages; :func:`check_account` recomputes and compares.
- Changes are published after commit, in commit order, to bounded subscriber
  buffers; a subscriber that falls behind is marked overflowed, never blocks.
- One :class:`StoreRuntime` per process: its executor runs all writes/fsyncs of
  all accounts; opening an open account returns the same object.
"""

from app.store.account import AccountStore
from app.store.changes import (
    Change,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessagesExpunged,
    Subscription,
    SubscriptionChanged,
)
from app.store.check import Problem, ProblemKind, check_account, repair_account
from app.store.errors import (
    AccountInUse,
    InvalidFlag,
    InvalidMailboxName,
    MailboxExists,
    MailboxHasChildren,
    MailboxNotAllowed,
    MailboxNotFound,
    MessageGone,
    QuotaExceeded,
    StoreClosed,
    StoreError,
    SubscriptionOverflow,
)
from app.store.runtime import StoreRuntime
from app.store.types import (
    Copied,
    Delivered,
    Expunged,
    Flag,
    FlagsResult,
    FlagUpdate,
    Mailbox,
    MessageInfo,
    QuotaUsage,
    SpecialUse,
)

__all__ = [
    "AccountInUse",
    "AccountStore",
    "Change",
    "Copied",
    "Delivered",
    "Expunged",
    "Flag",
    "FlagUpdate",
    "FlagsChanged",
    "FlagsResult",
    "InvalidFlag",
    "InvalidMailboxName",
    "Mailbox",
    "MailboxCreated",
    "MailboxDeleted",
    "MailboxExists",
    "MailboxHasChildren",
    "MailboxNotAllowed",
    "MailboxNotFound",
    "MailboxRenamed",
    "MessageAdded",
    "MessageGone",
    "MessageInfo",
    "MessagesExpunged",
    "Problem",
    "ProblemKind",
    "QuotaExceeded",
    "QuotaUsage",
    "SpecialUse",
    "StoreClosed",
    "StoreError",
    "StoreRuntime",
    "Subscription",
    "SubscriptionChanged",
    "SubscriptionOverflow",
    "check_account",
    "repair_account",
]
