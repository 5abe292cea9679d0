"""``pillarbox queue ...``: look at and act on the outgoing queue of the running server.

Every command goes through the control socket (the queue belongs to the running
server). Commands that change entries need a filter (``--id``, ``--account``,
``--from``, ``--to``) or ``--all``; ``--from``/``--to`` match addresses that contain
the text.
"""

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class CLIError(Exception):
    """An operator error: printed without a traceback, exit status 1."""


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``15m``, ``1h30m``, ``-2h``, ``1d`` (Go-style units)."""
    t = text.strip()
    sign = -1.0 if t.startswith("-") else 1.0
    t = t.lstrip("+-")
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return sign * float(t)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not t or pos != len(t):
        raise CLIError(f"not a duration: {text!r} (examples: 30m, 1h30m, -2h)")
    return sign * total


def _handled(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except CLIError as e:
            print(f"pillarbox: {e}", file=sys.stderr)
            return 1

    return handler


def _call(args: argparse.Namespace, cmd: str, cargs: dict[str, Any]) -> Any:
    import os

    from app.config.schema import ConfigError
    from app.config.static import DEFAULT_CONFIG_PATH, load
    from app.ops.ctl import CtlError, CtlUnavailable, call

    path = str(args.config or os.environ.get("PILLARBOX_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        cfg = load(path)
    except ConfigError as e:
        problems = "\n".join(f"  {p}" for p in e.problems)
        raise CLIError(f"{e.source}: configuration is not valid:\n{problems}") from None
    try:
        return call(cfg.data_path, cmd, cargs)
    except CtlUnavailable:
        raise CLIError(f"no server running on {cfg.data_path}; the queue needs one") from None
    except CtlError as e:
        raise CLIError(str(e)) from None


def _filters(sp: argparse.ArgumentParser, *, changing: bool = True) -> None:
    sp.add_argument("--id", type=int, action="append", default=[], help="queue id (repeatable)")
    sp.add_argument("--account", default="", help="submitting account")
    sp.add_argument("--from", dest="sender", default="", help="sender address contains this")
    sp.add_argument("--to", dest="rcpt", default="", help="recipient address contains this")
    if changing:
        sp.add_argument("--all", action="store_true", help="act on every queued message")


def _filter_args(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ids": list(args.id),
        "account": args.account,
        "from": args.sender,
        "to": args.rcpt,
    }
    if getattr(args, "all", False):
        out["all"] = True
    return out


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(sub: Any, add: Any) -> None:
    """Add the ``queue`` command group to the top-level subparsers."""
    p = sub.add_parser("queue", help="the outgoing queue of the running server")
    qsub = p.add_subparsers(dest="queue_command", metavar="SUBCOMMAND", required=True)
    sp = add("list", _handled(cmd_list), "list queued messages (one line per recipient)", qsub)
    _filters(sp, changing=False)
    sp = add("hold", _handled(_simple("queue.hold", "held")), "hold: no delivery attempts", qsub)
    _filters(sp)
    sp = add(
        "unhold",
        _handled(_simple("queue.unhold", "released")),
        "release held messages for delivery",
        qsub,
    )
    _filters(sp)
    sp = add(
        "schedule",
        _handled(cmd_schedule),
        "move the next delivery attempt by DURATION (with --now: to now + DURATION)",
        qsub,
    )
    sp.add_argument("--now", action="store_true", help="relative to now, not the next attempt")
    sp.add_argument("duration", help="e.g. 0, 30m, 1h30m, -2h")
    _filters(sp)
    sp = add(
        "transport",
        _handled(cmd_transport),
        'use the named transport ("" to follow the routes again)',
        qsub,
    )
    sp.add_argument("name")
    _filters(sp)
    sp = add(
        "fail",
        _handled(_simple("queue.fail", "failed")),
        "fail delivery now, with a failure DSN to the sender",
        qsub,
    )
    _filters(sp)
    sp = add(
        "drop",
        _handled(_simple("queue.drop", "dropped")),
        "remove from the queue without a DSN",
        qsub,
    )
    _filters(sp)
    sp = add("dump", _handled(cmd_dump), "print a queued message", qsub)
    sp.add_argument("id", type=int)


def cmd_list(args: argparse.Namespace) -> int:
    rows = _call(args, "queue.list", _filter_args(args))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("queue is empty")
        return 0
    now = time.time()
    for r in rows:
        state = "hold" if r["hold"] else r["state"]
        due = "now" if r["next_attempt"] <= now else _when(r["next_attempt"])
        print(
            f"{r['id']} {state} from={r['from'] or '<>'} to={r['to']} account={r['account']} "
            f"size={r['size']} attempts={r['attempts']} next={due} "
            f"transport={r['transport'] or '(routes)'}"
        )
        if r["last_error"]:
            print(f"    last error: {r['last_error']}")
    return 0


def _simple(cmd: str, verb: str) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        result = _call(args, cmd, _filter_args(args))
        _report(args, result, verb)
        return 0

    return handler


def _report(args: argparse.Namespace, result: dict[str, Any], verb: str) -> None:
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['count']} {verb}")


def cmd_schedule(args: argparse.Namespace) -> int:
    cargs = _filter_args(args) | {"duration": parse_duration(args.duration), "now": args.now}
    _report(args, _call(args, "queue.schedule", cargs), "rescheduled")
    return 0


def cmd_transport(args: argparse.Namespace) -> int:
    cargs = _filter_args(args) | {"transport": args.name}
    _report(args, _call(args, "queue.transport", cargs), "changed")
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    result = _call(args, "queue.dump", {"id": args.id})
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        sys.stdout.write(result["message"])
        if result.get("truncated"):
            print("\n[truncated]", file=sys.stderr)
    return 0
