"""Commands for checking mail authentication from the command line.

``pillarbox spf check|lookup``, ``pillarbox dmarc lookup``, ``pillarbox dnsbl check``
and ``pillarbox dns lookup``. Each takes ``--dns HOST:PORT`` (default: the system's
name servers) and ``--json`` (one JSON object on the last line of stdout). Modules
are imported when a command runs, to keep start-up fast.
"""

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]
Add = Callable[..., argparse.ArgumentParser]


class Fail(Exception):
    """An error for the operator (app.cli.Fail is a layer above ops; this is ours)."""


def _operator_errors(fn: Handler) -> Handler:
    """Print a Fail as ``pillarbox: message`` on stderr and exit with status 1."""

    @functools.wraps(fn)
    def handler(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except Fail as e:
            print(f"pillarbox: {e}", file=sys.stderr)
            return 1

    return handler


def _resolver(args: argparse.Namespace) -> Any:
    from app.dns.resolver import Resolver

    try:
        return Resolver([args.dns] if args.dns else [], timeout=args.timeout)
    except ValueError as e:
        raise Fail(f"--dns: {e}") from None


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        for line in lines:
            print(line)


def _common(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sp.add_argument("--dns", metavar="HOST:PORT", help="name server to ask (default: system)")
    sp.add_argument("--timeout", type=float, default=5.0, help="seconds per DNS lookup (default 5)")
    return sp


def _ip(text: str) -> Any:
    import ipaddress

    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        raise Fail(f"not an ip address: {text!r}") from None


# -- spf ----------------------------------------------------------------------


@_operator_errors
def cmd_spf_check(args: argparse.Namespace) -> int:
    from app.mailauth import spf

    ip = _ip(args.ip)
    sender = args.sender
    helo = args.helo or ""
    if not sender and not helo:
        raise Fail('the null sender ("") needs --helo NAME')
    if sender and "@" not in sender:
        sender = f"postmaster@{sender}"  # a bare domain: its postmaster (RFC 7208 §4.3)
    verified = asyncio.run(
        spf.verify(
            _resolver(args),
            ip,
            sender,
            helo,
            receiver_host=args.receiver,
            default_explanation=args.default_explanation,
        )
    )
    r = verified.result
    data = {
        "result": str(r.status),
        "explanation": r.explanation,
        "identity": str(verified.identity),
        "domain": verified.domain,
        "mechanism": r.mechanism,
        "reason": r.reason,
        "record": r.record,
    }
    lines = [f"spf {r.status} for {verified.identity} {verified.domain or '(none)'} from {ip}"]
    if r.mechanism:
        lines.append(f"  mechanism: {r.mechanism}")
    if r.record:
        lines.append(f"  record: {r.record}")
    if r.explanation:
        lines.append(f"  explanation: {r.explanation}")
    if r.reason:
        lines.append(f"  reason: {r.reason}")
    _emit(args, data, lines)
    return 0


@_operator_errors
def cmd_spf_lookup(args: argparse.Namespace) -> int:
    from app.mailauth import spf

    status, text, record, reason = asyncio.run(spf.lookup(_resolver(args), args.domain))
    found = record is not None
    data: dict[str, Any] = {
        "domain": args.domain,
        "status": "found" if found else str(status),
        "record": text,
        "reason": reason,
    }
    if record is not None:
        data["directives"] = [d.text for d in record.directives]
        data["redirect"] = record.redirect
        data["exp"] = record.exp
    if found:
        lines = [f"{args.domain}: {text}"]
    else:
        lines = [f"{args.domain}: {status}" + (f" ({reason})" if reason else "")]
        if text:
            lines.append(f"  record: {text}")
    _emit(args, data, lines)
    return 0 if found else 1


# -- dmarc --------------------------------------------------------------------


def _record_dict(rec: Any) -> dict[str, Any]:
    return {
        "p": str(rec.policy),
        "sp": str(rec.subdomain_policy) if rec.subdomain_policy else None,
        "np": str(rec.nonexistent_policy) if rec.nonexistent_policy else None,
        "adkim": str(rec.adkim),
        "aspf": str(rec.aspf),
        "pct": rec.percentage,
        "fo": list(rec.failure_options),
        "rua": [u.address + (f"!{u.max_size}" if u.max_size else "") for u in rec.rua],
        "ruf": [u.address + (f"!{u.max_size}" if u.max_size else "") for u in rec.ruf],
        "t": "y" if rec.testing else "n",
        "psd": rec.psd,
    }


@_operator_errors
def cmd_dmarc_lookup(args: argparse.Namespace) -> int:
    from app.mailauth import dmarc

    try:
        lk = asyncio.run(dmarc.lookup(_resolver(args), args.domain, method=args.method))
    except ValueError as e:
        raise Fail(str(e)) from None
    data: dict[str, Any] = {
        "status": str(lk.status),
        "domain": lk.domain,
        "org_domain": lk.org_domain,
        "authentic": lk.authentic,
        "record": lk.text,
        "reason": lk.reason,
        "policy": _record_dict(lk.record) if lk.record else None,
    }
    if lk.status == dmarc.LookupStatus.FOUND:
        lines = [
            f"dmarc record for {args.domain} found at _dmarc.{lk.domain}: {lk.text}",
            f"  organizational domain: {lk.org_domain}",
            f"  dnssec: {'authentic' if lk.authentic else 'not authentic'}",
        ]
    else:
        lines = [f"dmarc {lk.status} for {args.domain}" + (f": {lk.reason}" if lk.reason else "")]
    _emit(args, data, lines)
    return 0 if lk.status == dmarc.LookupStatus.FOUND else 1


@_operator_errors
def cmd_dmarc_verify(args: argparse.Namespace) -> int:
    """Run every check delivery runs (iprev, SPF, DKIM, ARC, DMARC) on a message."""
    from app.delivery.checks import Checker
    from app.message.address import parse_smtp_path
    from app.message.errors import AddressError

    ip = str(_ip(args.remote_ip))
    try:
        sender = parse_smtp_path(f"<{args.mail_from}>", utf8=True) if args.mail_from else None
    except AddressError as e:
        raise Fail(f"mail from: {e.reason}") from None
    data = sys.stdin.buffer.read()
    checker = Checker(_resolver(args), args.receiver, dmarc_method=args.method)
    v = asyncio.run(
        checker.check(
            remote_ip=ip, helo=args.helo, mail_from=sender, content=data, head=data[: 256 * 1024]
        )
    )
    dm = v.dmarc
    out: dict[str, Any] = {
        "dmarc": str(dm.status) if dm else "none",
        "policy": str(dm.policy) if dm and dm.policy else None,
        "reject": v.reject,
        "quarantine": v.junk,
        "from_domain": dm.from_domain if dm else "",
        "spf": str(v.spf.status),
        "dkim": [
            {
                "domain": r.domain,
                "selector": r.selector,
                "status": str(r.status),
                "trusted": r.trusted,
            }
            for r in v.dkim
        ],
        "arc": str(v.arc.status),
        "iprev": str(v.iprev.status),
        "authentication_results": v.headers.decode(),
    }
    verdict = "reject" if v.reject else "quarantine" if v.junk else "accept"
    _emit(args, out, [v.headers.decode().rstrip(), f"verdict: {verdict}"])
    return 0


# -- dnsbl --------------------------------------------------------------------


@_operator_errors
def cmd_dnsbl_check(args: argparse.Namespace) -> int:
    from app.mailauth import dnsbl

    ip = _ip(args.ip)
    r = asyncio.run(dnsbl.lookup(_resolver(args), args.zone, ip))
    data = {
        "result": str(r.status),
        "listed": r.status == dnsbl.Status.FAIL,
        "zone": r.zone,
        "name": r.name,
        "addresses": list(r.addresses),
        "explanation": r.explanation,
        "reason": r.reason,
    }
    words = {
        dnsbl.Status.PASS: "not listed",
        dnsbl.Status.FAIL: "LISTED",
        dnsbl.Status.TEMPERROR: "unknown (temporary error)",
    }
    lines = [f"{ip} in {r.zone}: {words[r.status]}"]
    if r.addresses:
        lines.append(f"  {r.name} A {', '.join(r.addresses)}")
    if r.explanation:
        lines.append(f"  explanation: {r.explanation}")
    if r.reason:
        lines.append(f"  reason: {r.reason}")
    _emit(args, data, lines)
    return 1 if r.status == dnsbl.Status.TEMPERROR else 0


# -- dns ----------------------------------------------------------------------


@_operator_errors
def cmd_dns_lookup(args: argparse.Namespace) -> int:
    import ipaddress

    import dns.reversename

    from app.dns.resolver import DNSError, NotFound

    rdtype = args.type.upper()
    name = args.name
    if rdtype == "PTR":
        try:
            name = dns.reversename.from_address(str(ipaddress.ip_address(name))).to_text()
        except ValueError:
            pass  # already a name
    data: dict[str, Any] = {"name": name, "type": rdtype}
    try:
        answer = asyncio.run(_resolver(args).query(name, rdtype))
    except ValueError as e:
        raise Fail(str(e)) from None
    except NotFound as e:
        status = "nxdomain" if e.nxdomain else "nodata"
        data.update(status=status, authentic=e.authentic, records=[])
        _emit(args, data, [f"{name} {rdtype}: {status} (dnssec: {_auth(e.authentic)})"])
        return 1
    except DNSError as e:
        data.update(status="error", error=str(e), authentic=False, records=[])
        _emit(args, data, [f"{name} {rdtype}: {e}"])
        return 1
    records = [rd.to_text() for rd in answer.records]
    data.update(
        status="ok",
        name=answer.name,
        authentic=answer.authentic,
        ttl=answer.ttl,
        cnames=list(answer.cnames),
        records=records,
    )
    lines = [f"{answer.name} {rdtype} (ttl {answer.ttl}, dnssec: {_auth(answer.authentic)})"]
    lines += [f"  via cname {c}" for c in answer.cnames]
    lines += [f"  {r}" for r in records]
    _emit(args, data, lines)
    return 0


def _auth(authentic: bool) -> str:
    return "authentic" if authentic else "not authentic"


def register(sub: Any, add: Add) -> None:
    """Add the spf, dmarc, dnsbl and dns commands to the top-level subparsers."""
    spfp = sub.add_parser("spf", help="SPF: check a sender, show a domain's policy")
    ssub = spfp.add_subparsers(dest="spf_command", metavar="SUBCOMMAND", required=True)
    sp = _common(add("check", cmd_spf_check, "evaluate SPF for a sender and client IP", ssub))
    sp.add_argument("--helo", default="", help="HELO/EHLO name (checked for the null sender)")
    sp.add_argument("--receiver", default="unknown", help="our host name, for %%{r}")
    sp.add_argument(
        "--default-explanation",
        default="",
        help="explanation for fail when the domain gives none",
    )
    sp.add_argument("sender", metavar="SENDER", help='address, domain, or "" for the null sender')
    sp.add_argument("ip", metavar="IP")
    sp = _common(add("lookup", cmd_spf_lookup, "show and parse the SPF record of a domain", ssub))
    sp.add_argument("domain", metavar="DOMAIN")

    dmp = sub.add_parser("dmarc", help="DMARC: find a domain's policy, check a message")
    dsub = dmp.add_subparsers(dest="dmarc_command", metavar="SUBCOMMAND", required=True)
    sp = _common(add("lookup", cmd_dmarc_lookup, "find the DMARC policy for a From domain", dsub))
    sp.add_argument(
        "--method",
        choices=("rfc9989", "rfc7489"),
        default="rfc9989",
        help="DNS tree walk (rfc9989, default) or public suffix list (rfc7489)",
    )
    sp.add_argument("domain", metavar="DOMAIN")
    sp = _common(
        add(
            "verify",
            cmd_dmarc_verify,
            "check a message from stdin as delivery would: iprev, SPF, DKIM, ARC, DMARC",
            dsub,
        )
    )
    sp.add_argument("--method", choices=("rfc9989", "rfc7489"), default="rfc9989")
    sp.add_argument("--receiver", default="localhost", help="our host name in the results")
    sp.add_argument("remote_ip", metavar="REMOTEIP")
    sp.add_argument("mail_from", metavar="MAILFROM", help='envelope sender, "" for none')
    sp.add_argument("helo", metavar="HELO")

    blp = sub.add_parser("dnsbl", help="DNS block lists")
    bsub = blp.add_subparsers(dest="dnsbl_command", metavar="SUBCOMMAND", required=True)
    sp = _common(add("check", cmd_dnsbl_check, "check whether an IP is listed in a zone", bsub))
    sp.add_argument("zone", metavar="ZONE")
    sp.add_argument("ip", metavar="IP")

    dnp = sub.add_parser("dns", help="DNS lookups as pillarbox sees them")
    nsub = dnp.add_subparsers(dest="dns_command", metavar="SUBCOMMAND", required=True)
    sp = _common(
        add("lookup", cmd_dns_lookup, "look up records, showing whether DNSSEC-authentic", nsub)
    )
    sp.add_argument("type", metavar="TYPE", help="record type, e.g. MX, TXT, TLSA, PTR")
    sp.add_argument("name", metavar="NAME", help="name (an IP address for PTR)")
