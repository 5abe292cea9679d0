"""Loading TOML tables into documented frozen dataclasses.

Every configuration dataclass declares its fields with :func:`setting`, which
records a one-line description. :func:`load_into` converts parsed TOML into those
dataclasses, collecting *every* problem with its dotted path instead of stopping at
the first; :func:`describe` renders an annotated example from the same definitions,
so the documentation cannot drift from the code.
"""

import dataclasses
import enum
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration error: where it is and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """Configuration that cannot be used; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = problems
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(str(p) for p in problems))


def setting(
    doc: str,
    default: Any = MISSING,
    *,
    factory: Any = MISSING,
    example: Any = MISSING,
    check: Any = None,
) -> Any:
    """Declare a configuration field with its documentation.

    ``check`` is an optional function of the converted value that returns an error
    message or ``None``; it runs even when other fields of the table are wrong.
    """
    meta: dict[str, Any] = {"doc": doc}
    if check is not None:
        meta["check"] = check
    if example is not MISSING:
        meta["example"] = example
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return f"table of {_type_name(get_args(tp)[1])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return "table"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(tp: Any, value: Any, path: str, problems: list[Problem]) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, path, problems)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected a table, got {type(value).__name__}"))
            return None
        return _load_table(tp, value, path, problems)
    if origin in (list, tuple):
        if not isinstance(value, list):
            problems.append(Problem(path, f"expected a list, got {type(value).__name__}"))
            return None
        (item_tp, *_) = get_args(tp)
        items = [_convert(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(Problem(path, f"expected a table, got {type(value).__name__}"))
            return None
        _, val_tp = get_args(tp)
        return {k: _convert(val_tp, v, f"{path}.{k}", problems) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (str, int, float, bool):
        if type(value) is not tp:
            problems.append(
                Problem(path, f"expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
            )
            return None
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            choices = ", ".join(repr(str(m.value)) for m in tp)
            problems.append(Problem(path, f"must be one of {choices}, got {value!r}"))
            return None
    raise TypeError(f"unsupported configuration type {tp!r} at {path}")


def _load_table(cls: type[T], table: dict[str, Any], path: str, problems: list[Problem]) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key in table:
        if key not in fields or fields[key].metadata.get("internal"):
            problems.append(Problem(_join(path, key), "unknown setting"))
    for name, f in fields.items():
        sub = _join(path, name)
        if name in table:
            n_before = len(problems)
            kwargs[name] = _convert(hints[name], table[name], sub, problems)
            check = f.metadata.get("check")
            if check is not None and len(problems) == n_before:
                message = check(kwargs[name])
                if message:
                    problems.append(Problem(sub, message))
        elif f.default is MISSING and f.default_factory is MISSING:
            problems.append(Problem(sub, "required setting is missing"))
    try:
        obj = cls(**{k: v for k, v in kwargs.items() if v is not None})
    except TypeError:
        return None  # type: ignore[return-value]  # missing fields, already reported
    validate = getattr(obj, "validate", None)
    if validate is not None:
        for rel, message in validate():
            problems.append(Problem(_join(path, rel), message))
    return obj


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def load_into(cls: type[T], table: dict[str, Any], source: str = "") -> T:
    """Build ``cls`` from a parsed TOML table or raise :class:`ConfigError`."""
    problems: list[Problem] = []
    obj = _load_table(cls, table, "", problems)
    if problems:
        raise ConfigError(problems, source)
    return obj


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot render {v!r} as TOML")


def toml_string(s: str) -> str:
    """A TOML basic string."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(k: str) -> str:
    """A TOML key, quoted when it is not a bare key."""
    if k and all((c.isalnum() and c.isascii()) or c in "-_" for c in k):
        return k
    return toml_string(k)


def describe(cls: type[Any], header: str = "") -> str:
    """An annotated example configuration for ``cls``: every field with its doc."""
    lines: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    _describe_table(cls, "", lines)
    return "\n".join(lines).strip() + "\n"


def _describe_table(cls: type[Any], path: str, lines: list[str]) -> None:
    hints = get_type_hints(cls)
    tables: list[tuple[str, Any, dataclasses.Field[Any]]] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        sub = _join(path, f.name)
        origin = get_origin(tp)
        if dataclasses.is_dataclass(tp) or (
            origin is dict and dataclasses.is_dataclass(get_args(tp)[1])
        ):
            tables.append((sub, tp, f))
            continue
        doc = f.metadata.get("doc", "")
        lines.append(f"# {doc} ({_type_name(tp)})")
        if "example" in f.metadata:
            value = f.metadata["example"]
        elif f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            value = None
        if value is None:
            lines.append(f"#{toml_key(f.name)} = ")
        else:
            if isinstance(value, str) and hasattr(value, "value"):
                value = str(value)
            optional = f.default is not MISSING or f.default_factory is not MISSING
            prefix = "#" if optional and "example" not in f.metadata else ""
            lines.append(f"{prefix}{toml_key(f.name)} = {_toml_value(value)}")
    for sub, tp, f in tables:
        doc = f.metadata.get("doc", "")
        lines.append("")
        if get_origin(tp) is dict:
            key = f.metadata.get("example_key", "NAME")
            lines.append(f"# {doc} One table per entry; the name is yours to choose.")
            lines.append(f"[{sub}.{key}]")
            _describe_table(get_args(tp)[1], f"{sub}.{key}", lines)
        else:
            lines.append(f"# {doc}")
            lines.append(f"[{sub}]")
            _describe_table(tp, sub, lines)
