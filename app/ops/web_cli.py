"""Subcommands of the web platform: ``quickstart``, ``clientconfig DOMAIN``,
``config dnsrecords DOMAIN`` and ``config dnscheck DOMAIN``."""

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _config_subparsers(sub: Any) -> Any:
    """The subparsers of ``pillarbox config``, to add commands to it."""
    cfgp = sub.choices["config"]
    for action in cfgp._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("config has no subcommands")  # pragma: no cover


class CLIError(Exception):
    """An operator error: printed without a traceback, exit status 1."""


def _handled(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CLIError as e:
            print(f"pillarbox: {e}", file=sys.stderr)
            return 1

    return handler


def _load_config(args: argparse.Namespace) -> Any:
    """The configuration named by --config, $PILLARBOX_CONFIG or the default path."""
    import os

    from app.config.schema import ConfigError
    from app.config.static import DEFAULT_CONFIG_PATH, load

    path = str(args.config or os.environ.get("PILLARBOX_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        return load(path)
    except ConfigError as e:
        problems = "\n".join(f"  {p}" for p in e.problems)
        raise CLIError(f"{e.source}: configuration is not valid:\n{problems}") from None


def register(sub: Any, add: Any) -> None:
    sp = add(
        "quickstart",
        _handled(cmd_quickstart),
        "create a configuration, data directory, account and admin password for an address",
    )
    sp.add_argument("address", help="your email address, e.g. you@example.com")
    sp.add_argument("--hostname", default="", help="this server's host name (default mail.DOMAIN)")
    sp.add_argument("--dir", default=".", help="directory for pillarbox.toml and data/ (default .)")
    sp = add("clientconfig", _handled(cmd_clientconfig), "print mail client settings for a domain")
    sp.add_argument("domain")
    csub = _config_subparsers(sub)
    sp = add("dnsrecords", _handled(cmd_dnsrecords), "print the DNS records a domain needs", csub)
    sp.add_argument("domain")
    sp = add(
        "dnscheck",
        _handled(cmd_dnscheck),
        "look up a domain's DNS records and explain problems",
        csub,
    )
    sp.add_argument("domain")
    sp.add_argument(
        "--dns",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="name server to ask (default: the configuration's, else /etc/resolv.conf)",
    )


def _domain(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """(config, DomainSettings, MTA-STS policy, DKIM records) of ``args.domain``."""
    from app.dns.domain import Domain, DomainError
    from app.store.admin import AdminDB
    from app.web.settings import mtasts_policy

    cfg = _load_config(args)
    try:
        name = Domain.parse(args.domain).ascii
    except DomainError as e:
        raise CLIError(f"invalid domain: {e.reason}") from None
    db = AdminDB(cfg.data_path / "admin.db")
    try:
        ds = db.snapshot().domains.get(name)
        if ds is None:
            raise CLIError(f"no such domain: {name}")
        from app.store.admincmds import load_dkim

        return cfg, ds, mtasts_policy(db, cfg, name), load_dkim(db).dns(name)
    finally:
        db.close()


def cmd_quickstart(args: argparse.Namespace) -> int:
    from app.ops.quickstart import QuickstartError, quickstart, report

    try:
        r = quickstart(Path(args.dir).resolve(), args.address, args.hostname)
    except QuickstartError as e:
        raise CLIError(str(e)) from None
    sys.stdout.write(report(r))
    return 0


def cmd_clientconfig(args: argparse.Namespace) -> int:
    from app.web.clientconfig import client_settings, manual_text

    cfg, ds, _, _ = _domain(args)
    cs = client_settings(cfg, ds)
    if args.json:
        import dataclasses
        import json

        print(json.dumps(dataclasses.asdict(cs)))
        return 0
    print(manual_text(cs, f"you@{ds.name.ascii}").replace(f"you@{ds.name.ascii}", "your address"))
    print(f"Thunderbird autoconfig: https://autoconfig.{ds.name.ascii}/mail/config-v1.1.xml")
    print(
        f"Outlook autodiscover: https://autodiscover.{ds.name.ascii}/autodiscover/autodiscover.xml"
    )
    return 0


def cmd_dnsrecords(args: argparse.Namespace) -> int:
    from app.config.dnsrecords import records, zone_text

    cfg, ds, policy, dkim = _domain(args)
    sys.stdout.write(zone_text(records(cfg.hostname, ds, mtasts=policy, dkim=dkim)))
    return 0


def cmd_dnscheck(args: argparse.Namespace) -> int:
    """Exit 0 when every record is as suggested, 2 when something is missing or differs."""
    from app.config.dnsrecords import Status, check, records
    from app.dns.resolver import Resolver

    cfg, ds, policy, dkim = _domain(args)
    recs = records(cfg.hostname, ds, mtasts=policy, dkim=dkim)

    async def run() -> list[Any]:
        resolver = Resolver(args.dns or cfg.dns.servers, timeout=cfg.dns.timeout)
        return await check(resolver, recs)

    results = asyncio.run(run())
    if args.json:
        import json

        print(
            json.dumps(
                [
                    {"name": c.record.name, "type": c.record.type, "status": str(c.status),
                     "message": c.message}
                    for c in results
                ]
            )
        )  # fmt: skip
    else:
        for c in results:
            print(f"{c.status:8} {c.record.name} {c.record.type}: {c.message}")
    return 0 if all(c.status == Status.OK for c in results) else 2
