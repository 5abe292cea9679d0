"""Storing an accepted message in the accounts of its local recipients.

Each account gets one copy (however many of its addresses were recipients), all
accounts concurrently; every ``deliver`` returns only after the store committed
it durably, so the caller may acknowledge the message once this returns.
"""

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.delivery.recipients import LocalRecipient, dedupe
from app.store.errors import QuotaExceeded, StoreError
from app.store.registry import Accounts

log = logging.getLogger(__name__)

INBOX = "Inbox"


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    QUOTA = "quota"  # account storage full: temporary for the sender
    ERROR = "error"  # temporary local problem


@dataclass(frozen=True, slots=True)
class Result:
    recipient: LocalRecipient
    outcome: Outcome
    uid: int = 0
    size: int = 0


async def deliver(
    accounts: Accounts,
    recipients: list[LocalRecipient],
    content: bytes | Path,
    prefix_for: Callable[[LocalRecipient], bytes],
    *,
    mailbox: str = INBOX,
) -> list[Result]:
    """Deliver to each distinct account; one result per account delivered to."""
    targets = dedupe(recipients)
    return list(
        await asyncio.gather(*(_one(accounts, r, content, prefix_for(r), mailbox) for r in targets))
    )


async def _one(
    accounts: Accounts, r: LocalRecipient, content: bytes | Path, prefix: bytes, mailbox: str
) -> Result:
    try:
        store = await accounts.get(r.account)
        d = await store.deliver(mailbox, content, prefix=prefix)
    except QuotaExceeded as e:
        log.info(
            "delivery refused, over quota",
            extra={"account": r.account, "limit": e.limit, "usage": e.usage},
        )
        return Result(r, Outcome.QUOTA)
    except StoreError as e:
        log.error("delivery failed", extra={"account": r.account, "err": str(e)})
        return Result(r, Outcome.ERROR)
    except OSError as e:
        log.error("delivery failed", extra={"account": r.account, "err": str(e)})
        return Result(r, Outcome.ERROR)
    log.debug("delivered", extra={"account": r.account, "uid": d.uid, "size": d.size})
    return Result(r, Outcome.DELIVERED, d.uid, d.size)
