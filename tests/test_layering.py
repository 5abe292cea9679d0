"""The import structure of ``app/`` follows DESIGN.md's layers, with no cycles.

Layers, lowest first; a module may import from its own layer or any lower one:
0 leaf modules, 1 message/mailauth/dns/config, 2 store/auth/junk/reports/tls,
3 web/smtp/imap/queue/delivery, 4 serve/ops, 5 cli. In addition the library
packages (message, mailauth, dns) and the protocol cores of smtp and imap must not
import store, config, serve or web at all.
"""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

LAYER = {
    "app": 0,
    "app.log": 0,
    "app.listening": 0,
    "app.metrics": 0,
    "app.services": 2,
    "app.message": 1,
    "app.mailauth": 1,
    "app.dns": 1,
    "app.config": 1,
    "app.store": 2,
    "app.auth": 2,
    "app.junk": 2,
    "app.reports": 2,
    "app.tls": 2,
    "app.web": 3,
    "app.smtp": 3,
    "app.imap": 3,
    "app.queue": 3,
    "app.delivery": 3,
    "app.serve": 4,
    "app.ops": 4,
    "app.cli": 5,
}
LIBRARY = ("app.message", "app.mailauth", "app.dns")
PROTOCOL_CORES = (
    "app.smtp.protocol",
    "app.smtp.codes",
    "app.imap.parser",
    "app.imap.protocol",
    "app.imap.utf7",
    "app.auth.sasl",
    "app.auth.scram",
)
FORBIDDEN_FOR_LIBRARIES = ("app.store", "app.config", "app.serve", "app.web")


def module_name(path: Path) -> str:
    rel = path.relative_to(APP.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def group(mod: str) -> str:
    parts = mod.split(".")
    for n in range(len(parts), 0, -1):
        cand = ".".join(parts[:n])
        if cand in LAYER:
            return cand
    raise AssertionError(f"module {mod} is in no layer; add it to LAYER")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (never executed)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip |= {id(n) for n in ast.walk(child)}
    return [n for n in ast.walk(tree) if id(n) not in skip]


def _is_module(name: str) -> bool:
    p = APP.parent / Path(*name.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def imports_of(path: Path, mod: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "app"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "app":
                continue
            # "from app.x import y" may name a submodule y; when it names only
            # submodules, what it depends on is those submodules.
            subs = {f"{target}.{a.name}" for a in node.names}
            found = {s for s in subs if _is_module(s)}
            out |= found
            if found != subs:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p, module_name(p)) for p in APP.rglob("*.py")}


def test_every_import_respects_the_layers() -> None:
    bad = []
    for mod, deps in graph().items():
        for dep in deps:
            if LAYER[group(dep)] > LAYER[group(mod)]:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports reaching upward:\n" + "\n".join(sorted(bad))


def test_libraries_and_protocol_cores_import_no_store_config_serve_web() -> None:
    bad = []
    for mod, deps in graph().items():
        if mod.startswith(LIBRARY) or mod.startswith(PROTOCOL_CORES):
            bad += [f"{mod} -> {d}" for d in deps if d.startswith(FORBIDDEN_FOR_LIBRARIES)]
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles() -> None:
    g = graph()
    # Importing a package runs its __init__, so a submodule depends on its parents.
    edges = {m: {d for d in deps if d in g and d != m} for m, deps in g.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*stack[stack.index(d) :], d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_ignores_type_checking_imports(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import app.serve\n")
    assert imports_of(f, "app.message.x") == set()


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("from app.store import admin\nimport app.serve\n")
    found = imports_of(f, "app.message.x")
    assert {"app.store.admin", "app.serve"} <= found
    assert LAYER[group("app.serve")] > LAYER[group("app.message.x")]
