"""``pillarbox dkim ...``: generate keys, print TXT records, sign, verify, look up keys."""

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, NoReturn


def _fail(message: str) -> NoReturn:
    """Stop with an operator error (exit status 1, no traceback). app.cli.Fail is one
    layer up (the layering test forbids ops -> cli), so this exits the same way."""
    raise SystemExit(f"pillarbox: {message}")


def register(sub: Any, add: Any) -> None:
    """Add the ``dkim`` command group to the top-level subparsers."""
    p = sub.add_parser("dkim", help="DKIM keys, records, signing and verification")
    dsub = p.add_subparsers(dest="dkim_command", metavar="SUBCOMMAND", required=True)
    sp = add("genrsa", cmd_genrsa, "print a new RSA private key (PKCS#8 PEM)", dsub)
    sp.add_argument("--bits", type=int, default=2048, help="key size (default 2048)")
    add("gened25519", cmd_gened25519, "print a new Ed25519 private key (PKCS#8 PEM)", dsub)
    sp = add("txt", cmd_txt, "print the DNS TXT value for a private key file", dsub)
    sp.add_argument("keyfile", help="private key file (- for stdin)")
    sp = add("verify", cmd_verify, "verify the DKIM signatures of a message file", dsub)
    sp.add_argument("file", help="message file (- for stdin)")
    _dns(sp)
    sp = add("sign", cmd_sign, "print a message with a DKIM signature added", dsub)
    sp.add_argument("--domain", required=True, help="signing domain (d=)")
    sp.add_argument("--selector", required=True, help="selector (s=)")
    sp.add_argument("--key", required=True, help="private key file")
    sp.add_argument("--expiration", type=int, help="seconds the signature stays valid (x=)")
    sp.add_argument("file", help="message file (- for stdin)")
    sp = add("lookup", cmd_lookup, "fetch and check the DKIM key record of a selector", dsub)
    sp.add_argument("selector")
    sp.add_argument("domain")
    _dns(sp)


def _dns(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--dns",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="name server to ask (default: those of /etc/resolv.conf); repeatable",
    )


def _read(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        _fail(f"{path}: {e.strerror or e}")


def _resolver(args: argparse.Namespace) -> Any:
    from app.dns.resolver import Resolver

    try:
        return Resolver(args.dns, timeout=5.0)
    except ValueError as e:
        _fail(f"--dns: {e}")


def _emit(args: argparse.Namespace, result: Any, text: str) -> None:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(text)


def cmd_genrsa(args: argparse.Namespace) -> int:
    from app.mailauth.dkim_keys import DKIMKeyError, generate_rsa

    try:
        pem = generate_rsa(args.bits)
    except DKIMKeyError as e:
        _fail(str(e))
    sys.stdout.write(pem.decode())
    return 0


def cmd_gened25519(args: argparse.Namespace) -> int:
    from app.mailauth.dkim_keys import generate_ed25519

    sys.stdout.write(generate_ed25519().decode())
    return 0


def _key(path: str) -> Any:
    from app.mailauth.dkim_keys import DKIMKeyError, load_private_key

    try:
        return load_private_key(_read(path))
    except DKIMKeyError as e:
        _fail(f"{path}: {e}")


def cmd_txt(args: argparse.Namespace) -> int:
    from app.mailauth.dkim_keys import txt_record

    value = txt_record(_key(args.keyfile))
    _emit(args, {"txt": value}, value)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from app.mailauth import dkim

    message = _read(args.file)
    results = asyncio.run(dkim.verify(_resolver(args), message))
    rows = [
        {
            "domain": r.domain,
            "selector": r.selector,
            "algorithm": r.algorithm,
            "status": str(r.status),
            "trusted": r.trusted,
            "identity": r.identity,
            "authentic": r.authentic,
            "body_length_limited": r.body_length_limited,
            "covers_from": r.covers_from,
            "key_bits": r.key_bits,
            "reason": r.reason,
        }
        for r in results
    ]
    lines = [
        f"{r['status']}  d={r['domain']} s={r['selector']} a={r['algorithm']}"
        + ("" if r["trusted"] or r["status"] != "pass" else "  (not trusted)")
        + (f"  {r['reason']}" if r["reason"] else "")
        for r in rows
    ]
    _emit(args, {"signatures": rows}, "\n".join(lines) or "no dkim signatures")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from app.mailauth import dkim

    message = _read(args.file)
    sel = dkim.Selector(args.domain, args.selector, _key(args.key), expiration=args.expiration)
    try:
        headers = dkim.sign(message, selectors=[sel])
    except dkim.SignError as e:
        _fail(str(e))
    if b"\r\n" not in message:
        headers = headers.replace(b"\r\n", b"\n")  # keep the file's line endings
    if args.json:
        print(json.dumps({"headers": headers.decode()}))
    else:
        sys.stdout.buffer.write(headers + message)
        sys.stdout.flush()
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    from app.mailauth import dkim

    found = asyncio.run(dkim.lookup_key(_resolver(args), args.selector, args.domain.lower()))
    rec = found.record
    result: dict[str, Any] = {
        "name": found.name,
        "status": str(found.status),
        "txt": found.txt,
        "authentic": found.authentic,
        "reason": found.reason,
    }
    if rec is not None:
        result |= {
            "key_type": rec.key_type,
            "bits": rec.bits,
            "revoked": rec.key is None,
            "hashes": list(rec.hashes),
            "services": list(rec.services),
            "flags": list(rec.flags),
        }
    if found.status is not dkim.Status.PASS:
        if args.json:
            print(json.dumps(result))
            return 1
        _fail(f"{found.name}: {found.status}: {found.reason}")
    assert rec is not None
    text = (
        f"{found.name}: {rec.key_type} {rec.bits} bits"
        + (" (revoked)" if rec.key is None else "")
        + (" (dnssec)" if found.authentic else "")
        + f"\n{found.txt}"
    )
    _emit(args, result, text)
    return 0
