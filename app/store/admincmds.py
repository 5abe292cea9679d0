"""Administrative commands on dynamic settings, shared by the CLI and the control socket.

Each command is a function of the admin database and a dict of JSON-able arguments
that returns a JSON-able result. The CLI sends the command to a running server over
the control socket (``data/ctl``) so the change takes effect at once; when no server
runs, it applies the very same function to the database directly.
"""

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.config.dynamic import DynamicError, from_toml
from app.dns.domain import Domain
from app.store.admin import AdminDB, DKIMKey

Command = Callable[[AdminDB, dict[str, Any]], Any]

ADMIN_PASSWORD_KEY = "admin_password"


class CommandError(Exception):
    """A command that cannot be carried out; the message is meant for the operator."""


def _hash(password: str) -> str:
    from app.auth.credentials import Credentials

    if not password:
        raise CommandError("empty password")
    return Credentials.from_password(password).to_json()


def domain_add(db: AdminDB, a: dict[str, Any]) -> Any:
    """Add a domain; it gets an RSA-2048 DKIM key unless ``dkim`` is false."""
    ds = db.change(
        lambda b: b.add_domain(
            a["domain"],
            description=a.get("description", ""),
            client_settings_domain=a.get("client_settings_domain", ""),
        )
    )
    out: dict[str, Any] = {"domain": ds.name.ascii}
    if a.get("dkim", True):
        out["dkim_selector"] = dkim_add(db, {"domain": ds.name.ascii})["selector"]
    return out


def _new_selector(db: AdminDB, domain: str) -> str:
    """A fresh selector name: the date and a letter (20261125a, 20261125b, ...)."""
    used = {k.selector for k in db.dkim_keys(domain)}
    day = time.strftime("%Y%m%d")
    for letter in "abcdefghijklmnopqrstuvwxyz":
        if day + letter not in used:
            return day + letter
    raise CommandError("too many selectors created today")


def dkim_add(db: AdminDB, a: dict[str, Any]) -> Any:
    from app.mailauth.dkim_keys import generate_ed25519, generate_rsa, txt_record

    domain = Domain.parse(a["domain"]).ascii
    algorithm = a.get("algorithm", "rsa")
    if algorithm not in ("rsa", "ed25519"):
        raise CommandError("algorithm must be rsa or ed25519")
    selector = a.get("selector") or _new_selector(db, domain)
    if not all(c.isalnum() or c in "-_" for c in selector):
        raise CommandError(f"invalid selector {selector!r}")
    pem = generate_rsa(2048) if algorithm == "rsa" else generate_ed25519()
    db.add_dkim_key(DKIMKey(domain, selector, algorithm, pem.decode(), time.time()))
    return {"domain": domain, "selector": selector, "algorithm": algorithm, "txt": txt_record(pem)}


def dkim_rm(db: AdminDB, a: dict[str, Any]) -> Any:
    db.remove_dkim_key(Domain.parse(a["domain"]).ascii, a["selector"])
    return {}


def dkim_list(db: AdminDB, a: dict[str, Any]) -> Any:
    from app.mailauth.dkim_keys import txt_record

    domain = Domain.parse(a["domain"]).ascii if a.get("domain") else None
    return [
        {
            "domain": k.domain,
            "selector": k.selector,
            "algorithm": k.algorithm,
            "txt": txt_record(k.private_key.encode()),
        }
        for k in db.dkim_keys(domain)
    ]


def domain_rm(db: AdminDB, a: dict[str, Any]) -> Any:
    db.change(lambda b: b.remove_domain(a["domain"]))
    return {}


def domain_list(db: AdminDB, a: dict[str, Any]) -> Any:
    return [
        {
            "domain": d.name.ascii,
            "unicode": d.name.unicode,
            "client_host": d.client_host,
            "description": d.description,
        }
        for d in sorted(db.snapshot().domains.values(), key=lambda d: d.name.ascii)
    ]


def account_add(db: AdminDB, a: dict[str, Any]) -> Any:
    def fn(b: Any) -> str:
        b.add_account(a["account"], full_name=a.get("full_name", ""), quota=int(a.get("quota", 0)))
        return str(b.add_address(a["address"], a["account"]))

    address = db.change(fn)
    if a.get("password"):
        db.set_credentials(a["account"], _hash(a["password"]))
    return {"account": a["account"], "address": address}


def account_rm(db: AdminDB, a: dict[str, Any]) -> Any:
    db.change(lambda b: b.remove_account(a["account"]))
    return {}


def account_list(db: AdminDB, a: dict[str, Any]) -> Any:
    return [
        {
            "account": x.name,
            "addresses": list(x.addresses),
            "quota": x.quota,
            "full_name": x.full_name,
        }
        for x in sorted(db.snapshot().accounts.values(), key=lambda x: x.name)
    ]


def account_quota(db: AdminDB, a: dict[str, Any]) -> Any:
    db.change(lambda b: b.update_account(a["account"], quota=int(a["quota"])))
    return {}


def address_add(db: AdminDB, a: dict[str, Any]) -> Any:
    return {"address": db.change(lambda b: b.add_address(a["address"], a["account"]))}


def address_rm(db: AdminDB, a: dict[str, Any]) -> Any:
    return {"address": db.change(lambda b: b.remove_address(a["address"]))}


def alias_add(db: AdminDB, a: dict[str, Any]) -> Any:
    return {
        "alias": db.change(
            lambda b: b.add_alias(
                a["alias"],
                tuple(a.get("members", ())),
                post_public=bool(a.get("post_public")),
                list_members=bool(a.get("list_members")),
            )
        )
    }


def alias_rm(db: AdminDB, a: dict[str, Any]) -> Any:
    db.change(lambda b: b.remove_alias(a["alias"]))
    return {}


def alias_addmember(db: AdminDB, a: dict[str, Any]) -> Any:
    def fn(b: Any) -> None:
        for m in a["members"]:
            b.add_alias_member(a["alias"], m)

    db.change(fn)
    return {}


def alias_rmmember(db: AdminDB, a: dict[str, Any]) -> Any:
    def fn(b: Any) -> None:
        for m in a["members"]:
            b.remove_alias_member(a["alias"], m)

    db.change(fn)
    return {}


def alias_list(db: AdminDB, a: dict[str, Any]) -> Any:
    return [
        {
            "alias": x.address,
            "members": list(x.members),
            "post_public": x.post_public,
            "list_members": x.list_members,
        }
        for x in sorted(db.snapshot().aliases.values(), key=lambda x: x.address)
    ]


def set_account_password(db: AdminDB, a: dict[str, Any]) -> Any:
    db.set_credentials(a["account"], _hash(a["password"]))
    return {}


def set_admin_password(db: AdminDB, a: dict[str, Any]) -> Any:
    db.set_setting(ADMIN_PASSWORD_KEY, _hash(a["password"]))
    return {}


def config_export(db: AdminDB, a: dict[str, Any]) -> Any:
    return {"toml": db.snapshot().to_toml()}


def config_import(db: AdminDB, a: dict[str, Any]) -> Any:
    d = from_toml(a["toml"], a.get("source", ""))
    db.replace_all(d)
    return {"domains": len(d.domains), "accounts": len(d.accounts), "aliases": len(d.aliases)}


LOG_LEVELS_KEY = "log_levels"
LOG_PACKAGES = (
    "",
    "serve",
    "smtp",
    "imap",
    "web",
    "delivery",
    "queue",
    "store",
    "auth",
    "mailauth",
    "dns",
    "tls",
)
LEVELS = ("debug", "info", "warning", "error")


def stored_log_levels(db: AdminDB) -> dict[str, str]:
    """Log levels set at run time, by package ("" is everything else)."""
    raw = db.setting(LOG_LEVELS_KEY)
    return dict(json.loads(raw)) if raw else {}


def apply_log_levels(levels: dict[str, str]) -> None:
    """Set the level of each package's logger (``app.<package>``; "" is the root)."""
    for pkg, level in levels.items():
        logging.getLogger(f"app.{pkg}" if pkg else None).setLevel(level.upper())


def loglevel_set(db: AdminDB, a: dict[str, Any]) -> Any:
    """Change a package's log level at once (on the running server) and keep it."""
    pkg = str(a.get("package", "")).removeprefix("app.")
    level = str(a["level"]).lower()
    if pkg not in LOG_PACKAGES:
        raise CommandError(f"unknown package {pkg!r}; one of: {', '.join(LOG_PACKAGES[1:])}")
    levels = stored_log_levels(db)
    if level == "default":
        levels.pop(pkg, None)
        logging.getLogger(f"app.{pkg}" if pkg else None).setLevel(
            logging.NOTSET if pkg else logging.INFO
        )
    elif level in LEVELS:
        levels[pkg] = level
    else:
        raise CommandError(f"level must be one of {', '.join(LEVELS)} or default")
    db.set_setting(LOG_LEVELS_KEY, json.dumps(levels, sort_keys=True))
    apply_log_levels(levels)
    return levels


def loglevel_list(db: AdminDB, a: dict[str, Any]) -> Any:
    """Each package with its effective level (and whether it was set explicitly)."""
    stored = stored_log_levels(db)
    return [
        {
            "package": pkg or "(all)",
            "level": logging.getLevelName(
                logging.getLogger(f"app.{pkg}" if pkg else None).getEffectiveLevel()
            ).lower(),
            "set": pkg in stored,
        }
        for pkg in LOG_PACKAGES
    ]


COMMANDS: dict[str, Command] = {
    "domain.add": domain_add,
    "domain.rm": domain_rm,
    "domain.list": domain_list,
    "dkim.add": dkim_add,
    "dkim.rm": dkim_rm,
    "dkim.list": dkim_list,
    "loglevel.set": loglevel_set,
    "loglevel.list": loglevel_list,
    "account.add": account_add,
    "account.rm": account_rm,
    "account.list": account_list,
    "account.quota": account_quota,
    "address.add": address_add,
    "address.rm": address_rm,
    "alias.add": alias_add,
    "alias.rm": alias_rm,
    "alias.addmember": alias_addmember,
    "alias.rmmember": alias_rmmember,
    "alias.list": alias_list,
    "setaccountpassword": set_account_password,
    "setadminpassword": set_admin_password,
    "config.export": config_export,
    "config.import": config_import,
}

# Commands that change settings; the server refreshes its snapshot after them.
CHANGING = frozenset(
    n for n in COMMANDS if not n.endswith((".list", ".export")) and not n.startswith("loglevel")
)


def run(db: AdminDB, name: str, args: dict[str, Any]) -> Any:
    """Run one command; operator mistakes raise :class:`CommandError`."""
    fn = COMMANDS.get(name)
    if fn is None:
        raise CommandError(f"unknown command {name!r}")
    try:
        return fn(db, args)
    except DynamicError as e:
        raise CommandError(str(e)) from None
    except KeyError as e:
        raise CommandError(f"missing argument {e.args[0]!r}") from None
    except (ValueError, TypeError) as e:
        raise CommandError(str(e)) from None


class DKIMSet:
    """The DKIM keys: signing selectors and DNS records, by domain.

    Keys are parsed on first use rather than when settings are read, so a server that
    has not yet signed anything does not load the cryptography library.
    """

    def __init__(self, keys: Sequence[tuple[str, str, bytes]] = ()) -> None:
        self._keys = tuple(keys)  # (domain, selector, private key PEM)
        self._selectors: dict[str, tuple[Any, ...]] | None = None
        self._records: dict[str, tuple[tuple[str, str], ...]] | None = None

    @property
    def selectors(self) -> dict[str, tuple[Any, ...]]:
        """dkim.Selector tuples by domain, for signing."""
        if self._selectors is None:
            from app.mailauth.dkim import Selector
            from app.mailauth.dkim_keys import load_private_key

            by: dict[str, list[Any]] = {}
            for domain, selector, pem in self._keys:
                by.setdefault(domain, []).append(Selector(domain, selector, load_private_key(pem)))
            self._selectors = {d: tuple(v) for d, v in by.items()}
        return self._selectors

    def dns(self, domain: str) -> tuple[tuple[str, str], ...]:
        """(selector, TXT value) pairs to publish for ``domain``."""
        if self._records is None:
            from app.mailauth.dkim_keys import txt_record

            by: dict[str, list[tuple[str, str]]] = {}
            for d, selector, pem in self._keys:
                by.setdefault(d, []).append((selector, txt_record(pem)))
            self._records = {d: tuple(v) for d, v in by.items()}
        return self._records.get(domain, ())


def load_dkim(db: AdminDB) -> DKIMSet:
    """Read every domain's keys (once per settings change); see :class:`DKIMSet`."""
    return DKIMSet([(k.domain, k.selector, k.private_key.encode()) for k in db.dkim_keys()])
