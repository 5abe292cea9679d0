"""Dynamic settings as values: domains, accounts, addresses, aliases.

They are persisted in the admin database (``app.store.admin``) and change at run
time. The server keeps one immutable :class:`Dynamic` snapshot and swaps it after
each change, so lookups (every RCPT TO) never touch the database.

Addresses are written ``localpart@domain``; ``@domain`` is a domain's catch-all.
Local parts compare case-insensitively unless the domain says otherwise.
"""

import tomllib
from dataclasses import dataclass, field
from typing import Any

from app.config.schema import ConfigError, Problem, toml_key, toml_string
from app.dns.domain import Domain, DomainError

ACCOUNT_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


class DynamicError(ValueError):
    """A dynamic setting that is invalid or conflicts with existing ones."""


@dataclass(frozen=True, slots=True)
class DomainSettings:
    name: Domain
    description: str = ""
    client_settings_domain: str = ""  # host name clients are configured with; "" = mail.<domain>
    subaddress_separators: tuple[str, ...] = ("+",)
    localpart_case_sensitive: bool = False

    @property
    def client_host(self) -> str:
        return self.client_settings_domain or f"mail.{self.name.ascii}"


@dataclass(frozen=True, slots=True)
class AccountSettings:
    name: str
    full_name: str = ""
    description: str = ""
    quota: int = 0  # bytes; 0: the global default; negative: unlimited
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AliasSettings:
    address: str
    members: tuple[str, ...] = ()
    post_public: bool = False  # may anyone send to it, or only members
    list_members: bool = False  # may members see who else is on it


@dataclass(frozen=True, slots=True)
class AccountDest:
    account: str
    address: str  # the configured address that matched ("@domain" for catch-all)


@dataclass(frozen=True, slots=True)
class AliasDest:
    alias: AliasSettings


Destination = AccountDest | AliasDest


def valid_account_name(name: str) -> bool:
    return 0 < len(name) <= 64 and set(name) <= ACCOUNT_NAME_CHARS and name[0].isalnum()


def split_address(text: str) -> tuple[str, Domain]:
    """Split ``local@domain`` (or ``@domain``) into local part and domain."""
    local, sep, dom = text.strip().rpartition("@")
    if not sep:
        raise DynamicError(f"not an address: {text!r}")
    if len(local.encode()) > 64:
        raise DynamicError(f"local part longer than 64 octets: {text!r}")
    if any(c.isspace() or c in '<>"\\,;' for c in local) or ".." in local:
        raise DynamicError(f"local part not supported: {text!r}")
    try:
        return local, Domain.parse(dom)
    except DomainError as e:
        raise DynamicError(f"invalid domain in {text!r}: {e.reason}") from None


@dataclass(frozen=True, slots=True)
class Dynamic:
    """One consistent snapshot of all dynamic settings."""

    domains: dict[str, DomainSettings] = field(default_factory=dict)  # by ASCII name
    accounts: dict[str, AccountSettings] = field(default_factory=dict)
    aliases: dict[str, AliasSettings] = field(default_factory=dict)  # by canonical address
    addresses: dict[str, str] = field(default_factory=dict)  # canonical address -> account

    def canonical(self, local: str, domain: Domain) -> str:
        """The lookup key for an address: lower-cased local part unless configured."""
        ds = self.domains.get(domain.ascii)
        if ds is None or not ds.localpart_case_sensitive:
            local = local.lower()
        return f"{local}@{domain.ascii}"

    def resolve(
        self, local: str, domain: Domain, postmaster_account: str = ""
    ) -> Destination | None:
        """Where mail for ``local@domain`` goes, or None when it is unknown.

        Order: the exact address or alias; then without the subaddress (``user+tag``);
        then ``postmaster`` of any of our domains (RFC 5321 4.5.1); then the catch-all.
        """
        ds = self.domains.get(domain.ascii)
        if ds is None:
            return None
        candidates = [local]
        for sep in ds.subaddress_separators:
            if sep and sep in local:
                base = local.split(sep, 1)[0]
                if base:
                    candidates.append(base)
                break
        for cand in candidates:
            key = self.canonical(cand, domain)
            if key in self.addresses:
                return AccountDest(self.addresses[key], key)
            if key in self.aliases:
                return AliasDest(self.aliases[key])
        if local.lower() == "postmaster" and postmaster_account in self.accounts:
            return AccountDest(postmaster_account, f"postmaster@{domain.ascii}")
        catchall = f"@{domain.ascii}"
        if catchall in self.addresses:
            return AccountDest(self.addresses[catchall], catchall)
        return None

    def account_of_address(self, text: str) -> str | None:
        """The account that owns exactly the configured address ``text``: not through a
        catch-all, an alias or a subaddress (for logins, not for delivery)."""
        try:
            local, domain = split_address(text)
        except DynamicError:
            return None
        if not local:
            return None
        return self.addresses.get(self.canonical(local, domain))

    def account_for_login(self, username: str) -> str | None:
        """The account a login name stands for: one of its addresses, or its name."""
        if "@" in username:
            return self.account_of_address(username)
        return username if username in self.accounts else None

    def effective_quota(self, account: str, global_default: int) -> int | None:
        """Bytes allowed for ``account``; None means unlimited (as mox: 0 = global)."""
        acc = self.accounts[account]
        limit = acc.quota if acc.quota != 0 else global_default
        return None if limit <= 0 else limit

    # TOML form, for `pillarbox config export` / `import`.

    def to_toml(self) -> str:
        out = [
            "# Pillarbox dynamic settings: domains, accounts, aliases.",
            "# Passwords are not included; set them with `pillarbox setaccountpassword`.",
            "",
        ]
        for d in sorted(self.domains.values(), key=lambda d: d.name.ascii):
            out.append(f"[domains.{toml_key(d.name.ascii)}]")
            out.append(f"description = {toml_string(d.description)}")
            out.append(f"client_settings_domain = {toml_string(d.client_settings_domain)}")
            seps = ", ".join(toml_string(s) for s in d.subaddress_separators)
            out.append(f"subaddress_separators = [{seps}]")
            out.append(f"localpart_case_sensitive = {str(d.localpart_case_sensitive).lower()}")
            out.append("")
        for a in sorted(self.accounts.values(), key=lambda a: a.name):
            out.append(f"[accounts.{toml_key(a.name)}]")
            out.append(f"full_name = {toml_string(a.full_name)}")
            out.append(f"description = {toml_string(a.description)}")
            out.append(f"quota = {a.quota}")
            addrs = ", ".join(toml_string(x) for x in a.addresses)
            out.append(f"addresses = [{addrs}]")
            out.append("")
        for al in sorted(self.aliases.values(), key=lambda al: al.address):
            out.append(f"[aliases.{toml_key(al.address)}]")
            members = ", ".join(toml_string(m) for m in al.members)
            out.append(f"members = [{members}]")
            out.append(f"post_public = {str(al.post_public).lower()}")
            out.append(f"list_members = {str(al.list_members).lower()}")
            out.append("")
        return "\n".join(out)


def from_toml(text: str, source: str = "") -> Dynamic:
    """Parse the TOML form; raises ConfigError with every problem's path."""
    problems: list[Problem] = []
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([Problem("", f"not valid TOML: {e}")], source) from None
    for key in table:
        if key not in ("domains", "accounts", "aliases"):
            problems.append(Problem(key, "unknown table"))
    b = DynamicBuilder()

    def each(name: str) -> list[tuple[str, dict[str, Any]]]:
        t = table.get(name, {})
        if not isinstance(t, dict):
            problems.append(Problem(name, "expected a table"))
            return []
        return [(k, v) for k, v in t.items()]

    def guarded(path: str, fn: Any, *args: Any, fields_of: Any = None, cls: Any = None) -> bool:
        try:
            fn(*args, **(_fields(fields_of, cls) if cls is not None else {}))
        except (DynamicError, TypeError, AttributeError) as e:
            problems.append(Problem(path, str(e)))
            return False
        return True

    for name, v in each("domains"):
        guarded(f"domains.{name}", b.add_domain, name, fields_of=v, cls=DomainSettings)
    for name, v in each("accounts"):
        v = dict(v) if isinstance(v, dict) else v
        addresses = v.pop("addresses", []) if isinstance(v, dict) else []
        if guarded(f"accounts.{name}", b.add_account, name, fields_of=v, cls=AccountSettings):
            for i, addr in enumerate(addresses):
                guarded(f"accounts.{name}.addresses[{i}]", b.add_address, addr, name)
    for name, v in each("aliases"):
        guarded(f"aliases.{name}", b.add_alias, name, fields_of=v, cls=AliasSettings)
    if problems:
        raise ConfigError(problems, source)
    return b.build()


def _fields(v: Any, cls: type[Any]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise DynamicError("expected a table")
    allowed = set(cls.__dataclass_fields__) - {"name", "address", "addresses"}
    unknown = set(v) - allowed
    if unknown:
        raise DynamicError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return {k: tuple(x) if isinstance(x, list) else x for k, x in v.items()}


class DynamicBuilder:
    """Validating construction of a :class:`Dynamic`, shared by import and the admin db."""

    def __init__(self, base: Dynamic | None = None) -> None:
        base = base or Dynamic()
        self.domains = dict(base.domains)
        self.accounts = dict(base.accounts)
        self.aliases = dict(base.aliases)
        self.addresses = dict(base.addresses)

    def build(self) -> Dynamic:
        accounts = {
            name: AccountSettings(
                a.name,
                a.full_name,
                a.description,
                a.quota,
                tuple(sorted(k for k, v in self.addresses.items() if v == name)),
            )
            for name, a in self.accounts.items()
        }
        return Dynamic(dict(self.domains), accounts, dict(self.aliases), dict(self.addresses))

    def _snapshot(self) -> Dynamic:
        return Dynamic(self.domains, self.accounts, self.aliases, self.addresses)

    def add_domain(
        self,
        name: str,
        description: str = "",
        client_settings_domain: str = "",
        subaddress_separators: tuple[str, ...] = ("+",),
        localpart_case_sensitive: bool = False,
    ) -> DomainSettings:
        try:
            d = Domain.parse(name)
        except DomainError as e:
            raise DynamicError(f"invalid domain {name!r}: {e.reason}") from None
        if d.ascii in self.domains:
            raise DynamicError(f"domain {d.ascii} already exists")
        if client_settings_domain:
            try:
                client_settings_domain = Domain.parse(client_settings_domain).ascii
            except DomainError as e:
                raise DynamicError(f"invalid client settings domain: {e.reason}") from None
        for sep in subaddress_separators:
            if len(sep) != 1 or sep.isalnum() or sep in "@.":
                raise DynamicError(f"invalid subaddress separator {sep!r}")
        ds = DomainSettings(
            d,
            description,
            client_settings_domain,
            tuple(subaddress_separators),
            bool(localpart_case_sensitive),
        )
        self.domains[d.ascii] = ds
        return ds

    def remove_domain(self, name: str) -> None:
        d = self._domain(name)
        used = [a for a in (*self.addresses, *self.aliases) if a.endswith("@" + d.ascii)]
        if used:
            raise DynamicError(
                f"domain {d.ascii} still has addresses: {', '.join(sorted(used)[:5])}"
            )
        del self.domains[d.ascii]

    def _domain(self, name: str) -> Domain:
        try:
            d = Domain.parse(name)
        except DomainError as e:
            raise DynamicError(f"invalid domain {name!r}: {e.reason}") from None
        if d.ascii not in self.domains:
            raise DynamicError(f"no such domain: {d.ascii}")
        return d

    def add_account(
        self, name: str, full_name: str = "", description: str = "", quota: int = 0
    ) -> None:
        if not valid_account_name(name):
            raise DynamicError(
                f"invalid account name {name!r}: use a-z, 0-9, '.', '_', '-', at most 64"
            )
        if name in self.accounts:
            raise DynamicError(f"account {name} already exists")
        if not isinstance(quota, int) or isinstance(quota, bool):
            raise DynamicError("quota must be an integer number of bytes")
        self.accounts[name] = AccountSettings(name, full_name, description, quota)

    def update_account(self, name: str, **changes: Any) -> None:
        acc = self.account(name)
        from dataclasses import replace

        self.accounts[name] = replace(acc, **changes)

    def account(self, name: str) -> AccountSettings:
        if name not in self.accounts:
            raise DynamicError(f"no such account: {name}")
        return self.accounts[name]

    def remove_account(self, name: str) -> None:
        self.account(name)
        keys = [k for k, v in self.addresses.items() if v == name]
        for key in keys:
            self._not_a_member(key)
        for key in keys:
            del self.addresses[key]
        del self.accounts[name]

    def _not_a_member(self, address: str) -> None:
        lists = sorted(a.address for a in self.aliases.values() if address in a.members)
        if lists:
            raise DynamicError(f"{address} is still a member of {', '.join(lists)}")

    def canonical_address(self, text: str) -> str:
        local, d = split_address(text)
        if d.ascii not in self.domains:
            raise DynamicError(f"domain {d.ascii} is not configured; add it first")
        return self._snapshot().canonical(local, d)

    def add_address(self, text: str, account: str) -> str:
        self.account(account)
        key = self.canonical_address(text)
        if key in self.addresses:
            raise DynamicError(f"address {key} already belongs to {self.addresses[key]}")
        if key in self.aliases:
            raise DynamicError(f"address {key} is an alias")
        self.addresses[key] = account
        return key

    def remove_address(self, text: str) -> str:
        key = self.canonical_address(text)
        if key not in self.addresses:
            raise DynamicError(f"no such address: {key}")
        account = self.addresses[key]
        self._not_a_member(key)
        if sum(1 for v in self.addresses.values() if v == account) == 1:
            raise DynamicError(
                f"{key} is the last address of account {account}; remove the account instead"
            )
        del self.addresses[key]
        return key

    def add_alias(
        self,
        text: str,
        members: tuple[str, ...] = (),
        post_public: bool = False,
        list_members: bool = False,
    ) -> str:
        key = self.canonical_address(text)
        if key.startswith("@"):
            raise DynamicError("an alias needs a local part")
        if key in self.addresses or key in self.aliases:
            raise DynamicError(f"address {key} already exists")
        self.aliases[key] = AliasSettings(key, (), bool(post_public), bool(list_members))
        for m in members:
            self.add_alias_member(key, m)
        return key

    def remove_alias(self, text: str) -> None:
        del self.aliases[self._alias(text)]

    def _alias(self, text: str) -> str:
        key = self.canonical_address(text)
        if key not in self.aliases:
            raise DynamicError(f"no such alias: {key}")
        return key

    def add_alias_member(self, alias: str, member: str) -> None:
        """Add a member; members are addresses of local accounts (as in mox)."""
        key = self._alias(alias)
        local, d = split_address(member)
        if not local:
            raise DynamicError(f"member needs a local part: {member!r}")
        if d.ascii not in self.domains:
            raise DynamicError(f"member {member} is not in a configured domain")
        m = self._snapshot().canonical(local, d)
        if m not in self.addresses:
            raise DynamicError(f"member {m} is not an address of an account")
        al = self.aliases[key]
        if m in al.members:
            raise DynamicError(f"{m} is already a member of {key}")
        self.aliases[key] = AliasSettings(key, (*al.members, m), al.post_public, al.list_members)

    def remove_alias_member(self, alias: str, member: str) -> None:
        key = self._alias(alias)
        local, d = split_address(member)
        m = self._snapshot().canonical(local, d)
        al = self.aliases[key]
        if m not in al.members:
            raise DynamicError(f"{m} is not a member of {key}")
        self.aliases[key] = AliasSettings(
            key, tuple(x for x in al.members if x != m), al.post_public, al.list_members
        )
