"""First-run setup, shown instead of the admin login while no admin password is set.

A fresh ``pillarbox serve`` with an admin listener logs a one-time link
(``/admin/setup?token=...``). The form asks for the host name, the first address
(domain and account follow from it), an admin password (or generates one) and TLS
(self-signed, or certificate and key files). Finishing validates everything first,
then runs the same admin commands as the CLI, applies the new static configuration
with ``services.reconfigure`` (listeners restart) and shows the generated
passwords once and the DNS records to create.
"""

import logging
import secrets
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.config.dnsrecords import records, zone_text
from app.config.dynamic import DynamicError, split_address, valid_account_name
from app.config.schema import ConfigError, toml_key, toml_string
from app.config.static import parse
from app.dns.domain import Domain, DomainError
from app.store import admincmds
from app.tls.certs import CertStore, TLSError
from app.web.context import WebContext

log = logging.getLogger(__name__)

PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"


class SetupError(Exception):
    """A wizard input that cannot be used; the message is for the person setting up."""


@dataclass(frozen=True, slots=True)
class SetupInput:
    hostname: str
    address: str
    admin_password: str  # "" = generate
    tls: str  # "self_signed" or "files"
    cert: str = ""
    key: str = ""


@dataclass(frozen=True, slots=True)
class SetupResult:
    address: str
    account: str
    password: str
    admin_password: str
    generated_admin: bool
    dns: str


def generate_password() -> str:
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def toml_dump(table: dict[str, Any], prefix: str = "") -> str:
    """A TOML document for a table of scalars, lists and nested tables."""
    lines = [
        f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)
    ]
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in table.items():
        if isinstance(v, dict):
            name = f"{prefix}.{toml_key(k)}" if prefix else toml_key(k)
            out += f"\n[{name}]\n" + toml_dump(v, name)
    return out


def new_config_text(current: str, inp: SetupInput) -> str:
    """The current configuration with the wizard's host name and TLS choice."""
    table = tomllib.loads(current)
    table["hostname"] = inp.hostname
    tls: dict[str, Any] = (
        {"certificates": [{"cert": inp.cert, "key": inp.key}]}
        if inp.tls == "files"
        else {"self_signed": True}
    )
    for lst in table.get("listeners", {}).values():
        old = lst.get("tls", {})
        lst["tls"] = {**{k: v for k, v in old.items() if k == "min_version"}, **tls}
    return "# Written by the Pillarbox setup wizard.\n" + toml_dump(table)


def validate(ctx: WebContext, inp: SetupInput) -> tuple[str, Domain, str]:
    """Everything is checked before anything changes: (local part, domain, config text)."""
    try:
        host = Domain.parse(inp.hostname).ascii
        local, domain = split_address(inp.address)
    except (DomainError, DynamicError) as e:
        raise SetupError(str(e)) from None
    if not local:
        raise SetupError("give a full address, like you@example.com")
    if inp.tls == "files":
        try:
            CertStore([(inp.cert, inp.key)]).on_demand().load()  # as a handshake would
        except TLSError as e:
            raise SetupError(f"certificate: {e.reason}") from None
    cfg_path = ctx.services.config.path
    current = Path(cfg_path).read_text(encoding="utf-8") if cfg_path else ""
    text = new_config_text(current, replace(inp, hostname=host))
    try:
        parse(text, cfg_path)
    except ConfigError as e:
        raise SetupError("; ".join(str(p) for p in e.problems)) from None
    return local, domain, text


def run(ctx: WebContext, inp: SetupInput) -> SetupResult:
    """Carry out the setup (from a WSGI thread). Raises SetupError before any change."""
    local, domain, text = validate(ctx, inp)
    svc = ctx.services
    account = "".join(c if c.isalnum() or c in "._-" else "-" for c in local.lower())
    account = account if valid_account_name(account) else "user"
    password = generate_password()
    admin_password = inp.admin_password or generate_password()
    try:
        if domain.ascii not in svc.dynamic.domains:
            ctx.command("domain.add", {"domain": domain.ascii})
        if account not in svc.dynamic.accounts:
            ctx.command("account.add", {"account": account, "address": inp.address})
        ctx.command("setaccountpassword", {"account": account, "password": password})
        ctx.command("setadminpassword", {"password": admin_password})
    except admincmds.CommandError as e:
        raise SetupError(str(e)) from None
    reconfigure = svc.reconfigure
    if reconfigure is not None:

        async def apply() -> None:
            await reconfigure(text)

        ctx.run(apply(), timeout=60)
    log.info("setup wizard finished", extra={"domain": domain.ascii, "account": account})
    ds = svc.dynamic.domains[domain.ascii]
    return SetupResult(
        inp.address,
        account,
        password,
        admin_password,
        not inp.admin_password,
        zone_text(records(Domain.parse(inp.hostname).ascii, ds, dkim=svc.dkim.dns(domain.ascii))),
    )
