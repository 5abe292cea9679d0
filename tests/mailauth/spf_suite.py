"""Loading the OpenSPF RFC 7208 test suite (tests/data/spf/) into a loopback DNS server.

Driver rules (tests/data/spf/README.md): names are case-insensitive; an ``SPF``
record also counts as TXT unless the name has TXT records of its own (``TXT: NONE``
counts as having them); ``TIMEOUT`` makes queries for the name time out, except for
types it has records of (``TXT: NONE`` is no record; pyspf's driver does the same); names
that DNS cannot carry (a label over 63 octets) are left out, so lookups of them fail
in the resolver before any query.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.dns.loopback import LoopbackDNSServer

SUITE = Path(__file__).resolve().parent.parent / "data" / "spf" / "rfc7208-tests.yml"
DEFAULT_EXPLANATION = "DEFAULT"


@dataclass(frozen=True, slots=True)
class Case:
    scenario: int
    name: str
    helo: str
    host: str
    mailfrom: str
    results: tuple[str, ...]
    explanation: str | None


def scenarios() -> list[dict[str, Any]]:
    with SUITE.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def cases() -> Iterator[Case]:
    for i, sc in enumerate(scenarios()):
        for name, t in sc["tests"].items():
            res = t["result"]
            results = tuple(res) if isinstance(res, list) else (res,)
            yield Case(
                i, name, str(t["helo"]), str(t["host"]), str(t["mailfrom"]), results,
                t.get("explanation"),
            )  # fmt: skip


def _txt(value: str | list[str]) -> str:
    """Presentation form of a TXT record; the YAML strings' code points are octets."""
    strings = value if isinstance(value, list) else [value]
    if not strings:
        strings = [""]
    out = []
    for s in strings:
        data = s.encode("latin-1") if all(ord(c) < 256 for c in s) else s.encode()
        out.append('"' + "".join(
            f"\\{b:03d}" if b < 0x20 or b > 0x7E or b in b'"\\' else chr(b) for b in data
        ) + '"')  # fmt: skip
    return " ".join(out)


def _carried(name: str) -> bool:
    return all(0 < len(label) <= 63 for label in name.rstrip(".").split("."))


def load(server: LoopbackDNSServer, zonedata: dict[str, list[Any]]) -> None:
    for name, records in zonedata.items():
        if not _carried(name):
            continue
        has_txt = any(isinstance(r, dict) and "TXT" in r for r in records)
        if "TIMEOUT" in records:
            # Types with real records answer; every other query times out.
            present = {
                k for r in records if isinstance(r, dict) for k, v in r.items() if v != "NONE"
            }
            if "SPF" in present and not has_txt:
                present.add("TXT")
            for rtype in ("A", "AAAA", "MX", "TXT", "PTR", "CNAME", "SPF"):
                if rtype not in present:
                    server.timeout(name, rtype)
        for rec in records:
            if rec == "TIMEOUT":
                continue
            ((rtype, value),) = rec.items()
            if rtype == "SPF":
                if not has_txt:
                    server.add(name, "TXT", _txt(value))
            elif rtype == "TXT":
                if value != "NONE":
                    server.add(name, "TXT", _txt(value))
            elif rtype == "MX":
                host = str(value[1]) or "."
                if host == "." or _presentable(host):
                    server.add(name, "MX", f"{value[0]} {host}")
            elif _presentable(str(value)) or rtype in ("A", "AAAA"):
                server.add(name, rtype, str(value))


def _presentable(name: str) -> bool:
    """Whether a name can be written in presentation format (an empty one cannot)."""
    return (
        bool(name)
        and _carried(name)
        and all(0x21 <= ord(c) <= 0x7E and c not in '"();\\' for c in name)
    )


# The suite expects the IPv6 nibbles of %{i} in upper case where RFC 7208 7.4's own
# example has lower case; explanations of these tests are compared ignoring case.
CASE_INSENSITIVE_EXPLANATION = {"v-macro-ip6"}


def explanation_matches(case: Case, got: str) -> bool:
    if case.explanation is None:
        return True
    if case.name in CASE_INSENSITIVE_EXPLANATION:
        return got.lower() == case.explanation.lower()
    return got == case.explanation
