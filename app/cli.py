"""The ``pillarbox`` command: one small function per subcommand.

Commands that change settings act on a running server through its control socket
(so the change takes effect at once) and on the admin database directly when no
server runs. The configuration file is found through ``--config FILE``, else
``$PILLARBOX_CONFIG``, else /etc/pillarbox/pillarbox.toml.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import app

Handler = Callable[[argparse.Namespace], int]


class Fail(Exception):
    """An error for the operator: printed without a traceback, exit status 1."""


def config_path(args: argparse.Namespace) -> str:
    from app.config.static import DEFAULT_CONFIG_PATH

    return str(args.config or os.environ.get("PILLARBOX_CONFIG") or DEFAULT_CONFIG_PATH)


def load_config(args: argparse.Namespace) -> Any:
    from app.config.schema import ConfigError
    from app.config.static import load

    try:
        return load(config_path(args))
    except ConfigError as e:
        raise Fail(
            "\n".join([f"{e.source}: configuration is not valid:"] + [f"  {p}" for p in e.problems])
        ) from None


def admin(args: argparse.Namespace, cmd: str, cargs: dict[str, Any]) -> Any:
    """Run an admin command on the running server, or on the database when none runs."""
    from app.ops.ctl import CtlError, CtlUnavailable, call
    from app.store import admincmds
    from app.store.admin import AdminDB

    cfg = load_config(args)
    try:
        return call(cfg.data_path, cmd, cargs)
    except CtlError as e:
        raise Fail(str(e)) from None
    except CtlUnavailable:
        pass
    db = AdminDB(cfg.data_path / "admin.db")
    try:
        return admincmds.run(db, cmd, cargs)
    except admincmds.CommandError as e:
        raise Fail(str(e)) from None
    finally:
        db.close()


def output(args: argparse.Namespace, result: Any, text: str | None = None) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, ensure_ascii=False))
    elif text is not None:
        if text:
            print(text)
    elif isinstance(result, list):
        for row in result:
            print(
                "  ".join(
                    f"{v}" if not isinstance(v, list) else ",".join(map(str, v))
                    for v in row.values()
                )
            )


def read_password(prompt: str) -> str:
    """A password from the terminal (asked twice) or the first line of stdin."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(prompt)
        if getpass.getpass("repeat: ") != first:
            raise Fail("passwords differ")
        return first
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


# Subcommands.


def cmd_version(args: argparse.Namespace) -> int:
    print(f"pillarbox {app.__version__}")
    return 0


def _defer_openssl() -> None:
    """Servers load OpenSSL with their first TLS connection (see app.tls.lazyssl)."""
    from app.tls.lazyssl import import_asyncio_without_ssl

    import_asyncio_without_ssl()


def cmd_serve(args: argparse.Namespace) -> int:
    _defer_openssl()
    from app import log as applog
    from app.serve import serve

    cfg = load_config(args)
    applog.setup(str(cfg.log.level), str(cfg.log.format))
    return serve(cfg)


def cmd_localserve(args: argparse.Namespace) -> int:
    _defer_openssl()
    from app import log as applog
    from app.config.static import load
    from app.ops import localserve
    from app.serve import serve, services

    directory = Path(args.dir).expanduser() if args.dir else localserve.default_dir()
    created = localserve.initialise(directory, list(services()))
    cfg = load(directory / "pillarbox.toml")
    applog.setup(str(cfg.log.level), str(cfg.log.format))
    print(
        f"pillarbox localserve in {directory}{' (new)' if created else ''}\n"
        f"  account {localserve.ADDRESS}, password {localserve.PASSWORD!r}\n"
        f"  admin password {localserve.ADMIN_PASSWORD!r}\n"
        f"  stop with: PILLARBOX_CONFIG={directory / 'pillarbox.toml'} pillarbox stop",
        flush=True,
    )
    return serve(cfg)


def cmd_stop(args: argparse.Namespace) -> int:
    from app.ops.ctl import CtlUnavailable, call, ctl_path

    cfg = load_config(args)
    try:
        call(cfg.data_path, "stop")
    except CtlUnavailable:
        raise Fail(f"no server running on {cfg.data_path}") from None
    deadline = time.monotonic() + 30
    path = ctl_path(cfg.data_path)
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for another process to exit: polling is all we have
    print("stopped")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from app.ops.ctl import CtlUnavailable, call

    try:
        call(load_config(args).data_path, "reload")
    except CtlUnavailable:
        raise Fail("no server running") from None
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from app.ops.ctl import CtlUnavailable, call

    try:
        r = call(load_config(args).data_path, "ping", timeout=5)
    except CtlUnavailable:
        print("not running")
        return 3
    output(args, r, f"running, pid {r['pid']}, version {r['version']}")
    return 0


def cmd_config_describe(args: argparse.Namespace) -> int:
    from app.config.static import example

    sys.stdout.write(example())
    return 0


def cmd_config_test(args: argparse.Namespace) -> int:
    from app.config.schema import ConfigError
    from app.config.static import load

    try:
        load(args.file)
    except ConfigError as e:
        print(f"{e.source}: {len(e.problems)} problem(s):", file=sys.stderr)
        for p in e.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    return 0


def cmd_config_export(args: argparse.Namespace) -> int:
    text = admin(args, "config.export", {})["toml"]
    if args.file and args.file != "-":
        Path(args.file).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_config_import(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    r = admin(args, "config.import", {"toml": text, "source": args.file})
    output(
        args,
        r,
        f"imported {r['domains']} domains, {r['accounts']} accounts, {r['aliases']} aliases",
    )
    return 0


def simple(cmd: str, fields: Sequence[str], done: str = "") -> Handler:
    """A handler that passes the named arguments to admin command ``cmd``."""

    def handler(args: argparse.Namespace) -> int:
        r = admin(args, cmd, {f: getattr(args, f) for f in fields})
        output(args, r, None if cmd.endswith(".list") else done)
        return 0

    return handler


def cmd_account_add(args: argparse.Namespace) -> int:
    password = read_password("password: ") if args.password_stdin else ""
    r = admin(
        args,
        "account.add",
        {
            "account": args.account,
            "address": args.address,
            "quota": args.quota,
            "password": password,
        },
    )
    output(args, r, f"account {r['account']} added with address {r['address']}")
    return 0


def cmd_dkim_add(args: argparse.Namespace) -> int:
    r = admin(
        args,
        "dkim.add",
        {"domain": args.domain, "selector": args.selector, "algorithm": args.algorithm},
    )
    output(
        args,
        r,
        f"selector {r['selector']} added; publish this DNS record:\n"
        f'{r["selector"]}._domainkey.{r["domain"]}. TXT "{r["txt"]}"',
    )
    return 0


def cmd_dkim_list(args: argparse.Namespace) -> int:
    rows = admin(args, "dkim.list", {"domain": args.domain})
    output(
        args,
        rows,
        "\n".join(
            f'{r["selector"]}._domainkey.{r["domain"]}. TXT "{r["txt"]}"  ; {r["algorithm"]}'
            for r in rows
        ),
    )
    return 0


def cmd_setaccountpassword(args: argparse.Namespace) -> int:
    admin(
        args,
        "setaccountpassword",
        {"account": args.account, "password": read_password("new password: ")},
    )
    print(f"password of {args.account} changed")
    return 0


def cmd_setadminpassword(args: argparse.Namespace) -> int:
    admin(args, "setadminpassword", {"password": read_password("new admin password: ")})
    print("admin password changed")
    return 0


# Modules that add subcommands: each has ``register(sub, add)``, where ``sub`` is the
# top-level subparsers object and ``add(name, handler, help, parent)`` creates one
# subcommand with --json. Handlers import what they need when they run, so that
# start-up stays fast.
CLI_MODULES: tuple[str, ...] = (
    "app.ops.dkim_cli",
    "app.ops.mailauth_cli",
    "app.ops.queue_cli",
    "app.ops.selftest",
    "app.ops.web_cli",
)


# Commands defined in this module: running one of them does not import the other
# commands' modules (a long-running server would keep them in memory for nothing).
CORE_COMMANDS = frozenset({"version", "serve", "localserve", "stop", "reload", "status"})


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``: the first argument that is not an option or the
    value of ``--config``."""
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--config":
            skip = True
        elif not a.startswith("-"):
            return a
    return None


def build_parser(all_commands: bool = True) -> argparse.ArgumentParser:
    """The command-line parser; with ``all_commands`` False only this module's commands
    (enough to run any of :data:`CORE_COMMANDS`)."""
    p = argparse.ArgumentParser(
        prog="pillarbox", description="Pillarbox: a complete, secure, low-maintenance mail server."
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $PILLARBOX_CONFIG, else /etc/pillarbox/pillarbox.toml)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, fn: Handler, help: str, parent: Any = sub) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        sp.set_defaults(func=fn)
        sp.add_argument("--json", action="store_true", help="print the result as JSON")
        return sp

    add("version", cmd_version, "print the version")
    add("serve", cmd_serve, "run the mail server with the configuration file")
    lp = add(
        "localserve",
        cmd_localserve,
        "run a local-only instance for testing (loopback, ports + 1000)",
    )
    lp.add_argument(
        "--dir", help="directory for its files (default ~/.config/pillarbox-localserve)"
    )
    add("stop", cmd_stop, "stop the running server")
    add("reload", cmd_reload, "reload dynamic settings and certificates of the running server")
    add("status", cmd_status, "say whether a server runs (exit 3 when not)")
    sp = add(
        "setaccountpassword", cmd_setaccountpassword, "set an account's password, read from stdin"
    )
    sp.add_argument("account")
    add(
        "setadminpassword",
        cmd_setadminpassword,
        "set the admin web interface password, read from stdin",
    )

    cfgp = sub.add_parser(
        "config",
        help="configuration: describe, test, export, import, domains, accounts, addresses, "
        "aliases, dkim keys, log levels",
    )
    csub = cfgp.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    add("describe", cmd_config_describe, "print an annotated example configuration file", csub)
    sp = add("test", cmd_config_test, "check a configuration file, listing every problem", csub)
    sp.add_argument("file")
    sp = add("export", cmd_config_export, "write domains, accounts and aliases as TOML", csub)
    sp.add_argument("file", nargs="?", default="-")
    sp = add(
        "import",
        cmd_config_import,
        "replace domains, accounts and aliases with those in a TOML file (- for stdin)",
        csub,
    )
    sp.add_argument("file")

    dp = csub.add_parser("domain", help="add, remove or list domains")
    dsub = dp.add_subparsers(dest="sub", metavar="ACTION", required=True)
    sp = add(
        "add",
        simple("domain.add", ["domain", "client_settings_domain"], "domain added"),
        "add a domain",
        dsub,
    )
    sp.add_argument("domain")
    sp.add_argument(
        "--client-settings-domain",
        default="",
        dest="client_settings_domain",
        help="host name mail clients use (default mail.DOMAIN)",
    )
    sp = add(
        "rm",
        simple("domain.rm", ["domain"], "domain removed"),
        "remove a domain (it must have no addresses left)",
        dsub,
    )
    sp.add_argument("domain")
    add("list", simple("domain.list", []), "list domains", dsub)

    kp = csub.add_parser("dkim", help="DKIM signing keys of a domain: add, remove, list")
    ksub = kp.add_subparsers(dest="sub", metavar="ACTION", required=True)
    sp = add("add", cmd_dkim_add, "generate a new signing key for a domain", ksub)
    sp.add_argument("domain")
    sp.add_argument("--selector", default="", help="selector name (default: date + letter)")
    sp.add_argument("--algorithm", choices=["rsa", "ed25519"], default="rsa")
    sp = add(
        "rm", simple("dkim.rm", ["domain", "selector"], "key removed"), "remove a signing key", ksub
    )
    sp.add_argument("domain")
    sp.add_argument("selector")
    sp = add("list", cmd_dkim_list, "list signing keys with their DNS records", ksub)
    sp.add_argument("domain", nargs="?", default="")

    lp = csub.add_parser("loglevel", help="log levels per package, changed at run time")
    lsub = lp.add_subparsers(dest="sub", metavar="ACTION", required=True)
    sp = add(
        "set",
        simple("loglevel.set", ["level", "package"], "log level set"),
        "set the log level of a package (or of everything), kept across restarts",
        lsub,
    )
    sp.add_argument("level", help="debug, info, warning, error, or default")
    sp.add_argument("--package", default="", help="smtp, imap, web, delivery, queue, store, ...")
    add("list", simple("loglevel.list", []), "show each package's log level", lsub)

    ap = csub.add_parser("account", help="add, remove or list accounts; set a quota")
    asub = ap.add_subparsers(dest="sub", metavar="ACTION", required=True)
    sp = add("add", cmd_account_add, "add an account with its first address", asub)
    sp.add_argument("account")
    sp.add_argument("address")
    sp.add_argument(
        "--quota", type=int, default=0, help="bytes; 0 = global default, negative = unlimited"
    )
    sp.add_argument(
        "--password-stdin", action="store_true", help="also set the password, read from stdin"
    )
    sp = add(
        "rm",
        simple("account.rm", ["account"], "account removed (its messages are kept on disk)"),
        "remove an account",
        asub,
    )
    sp.add_argument("account")
    add("list", simple("account.list", []), "list accounts", asub)
    sp = add(
        "quota",
        simple("account.quota", ["account", "quota"], "quota set"),
        "set an account's quota in bytes (0 = global default, negative = unlimited)",
        asub,
    )
    sp.add_argument("account")
    sp.add_argument("quota", type=int)

    adp = csub.add_parser("address", help="add or remove an account's addresses")
    adsub = adp.add_subparsers(dest="sub", metavar="ACTION", required=True)
    sp = add(
        "add",
        simple("address.add", ["address", "account"], "address added"),
        "add an address (@domain for a catch-all) to an account",
        adsub,
    )
    sp.add_argument("address")
    sp.add_argument("account")
    sp = add("rm", simple("address.rm", ["address"], "address removed"), "remove an address", adsub)
    sp.add_argument("address")

    alp = csub.add_parser("alias", help="aliases and lists: add, remove, members")
    alsub = alp.add_subparsers(dest="sub", metavar="ACTION", required=True)
    sp = add(
        "add",
        simple("alias.add", ["alias", "members"], "alias added"),
        "add an alias with its members",
        alsub,
    )
    sp.add_argument("alias")
    sp.add_argument("members", nargs="*")
    sp = add("rm", simple("alias.rm", ["alias"], "alias removed"), "remove an alias", alsub)
    sp.add_argument("alias")
    sp = add(
        "addmember",
        simple("alias.addmember", ["alias", "members"], "members added"),
        "add members to an alias",
        alsub,
    )
    sp.add_argument("alias")
    sp.add_argument("members", nargs="+")
    sp = add(
        "rmmember",
        simple("alias.rmmember", ["alias", "members"], "members removed"),
        "remove members from an alias",
        alsub,
    )
    sp.add_argument("alias")
    sp.add_argument("members", nargs="+")
    add("list", simple("alias.list", []), "list aliases", alsub)

    import importlib

    if all_commands:
        for modname in CLI_MODULES:
            importlib.import_module(modname).register(sub, add)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    core = _command_of(args_in) in CORE_COMMANDS
    args = build_parser(all_commands=not core).parse_args(args_in)
    try:
        rc: int = args.func(args)
        return rc
    except Fail as e:
        print(f"pillarbox: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Under ``python -m app.cli`` this module runs as __main__ while the command
    # modules import app.cli: call app.cli's main so both see one Fail class.
    from app.cli import main as package_main

    sys.exit(package_main())
