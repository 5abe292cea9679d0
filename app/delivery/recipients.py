"""Local recipients: which accounts an address delivers to.

An address resolves through the dynamic settings (exact address, alias, address
without subaddress, ``postmaster``, catch-all; see
:meth:`app.config.dynamic.Dynamic.resolve`). An alias expands to its members, each
an address of a local account.
"""

from dataclasses import dataclass

from app.config.dynamic import AccountDest, AliasSettings, Dynamic, split_address
from app.message.address import Address


@dataclass(frozen=True, slots=True)
class LocalRecipient:
    """One account a recipient address delivers to."""

    rcpt: Address  # as the sender gave it
    account: str
    address: str  # the configured address that matched (an alias member for aliases)
    alias: str = ""  # the alias it came through, if any


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a recipient address means here."""

    local_domain: bool  # the domain is one of ours
    recipients: tuple[LocalRecipient, ...] = ()  # empty with local_domain: unknown user
    alias: AliasSettings | None = None


def resolve(dynamic: Dynamic, rcpt: Address, postmaster_account: str = "") -> Resolved:
    """Resolve ``rcpt`` to the local accounts it delivers to."""
    if rcpt.ip is not None or rcpt.domain.ascii not in dynamic.domains:
        return Resolved(False)
    dest = dynamic.resolve(rcpt.localpart, rcpt.domain, postmaster_account)
    if dest is None:
        return Resolved(True)
    if isinstance(dest, AccountDest):
        return Resolved(True, (LocalRecipient(rcpt, dest.account, dest.address),))
    members = []
    for member in dest.alias.members:
        local, domain = split_address(member)
        sub = dynamic.resolve(local, domain)
        if isinstance(sub, AccountDest):
            members.append(LocalRecipient(rcpt, sub.account, member, dest.alias.address))
    return Resolved(True, tuple(members), dest.alias)


def alias_allows_sender(alias: AliasSettings, dynamic: Dynamic, sender: Address | None) -> bool:
    """Whether ``sender`` may post to ``alias``: anyone when public, else members only."""
    if alias.post_public:
        return True
    if sender is None or sender.domain.ascii not in dynamic.domains:
        return False
    return dynamic.canonical(sender.localpart, sender.domain) in alias.members


def dedupe(recipients: list[LocalRecipient]) -> list[LocalRecipient]:
    """One delivery per account: the first recipient address naming it wins."""
    seen: set[str] = set()
    out = []
    for r in recipients:
        if r.account not in seen:
            seen.add(r.account)
            out.append(r)
    return out
