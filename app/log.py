"""Logging setup: logfmt or JSON lines, and per-connection adapters.

Modules log with ``log = logging.getLogger(__name__)`` and constant lowercase
messages, passing fields through ``extra={...}``. Those fields are rendered after the
message by the formatters here.
"""

import json
import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the ``extra`` fields attached to a log record."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _logfmt_value(v: object) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' ="\\') or not s.isprintable():
        return json.dumps(s, ensure_ascii=False)
    return s


class LogfmtFormatter(logging.Formatter):
    """``t=... level=... pkg=... msg="..." key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            "t="
            + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level=" + record.levelname.lower(),
            "pkg=" + record.name.removeprefix("app."),
            "msg=" + _logfmt_value(record.getMessage()),
        ]
        parts += [f"{k}={_logfmt_value(v)}" for k, v in record_fields(record).items()]
        if record.exc_info:
            parts.append("err=" + _logfmt_value(self.formatException(record.exc_info)))
        return " ".join(parts)


class JSONFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "t": record.created,
            "level": record.levelname.lower(),
            "pkg": record.name.removeprefix("app."),
            "msg": record.getMessage(),
        }
        obj.update(
            {
                k: v if isinstance(v, int | float | bool) else str(v)
                for k, v in record_fields(record).items()
            }
        )
        if record.exc_info:
            obj["err"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


def setup(level: str = "info", fmt: str = "logfmt", stream: Any = None) -> None:
    """Configure the root logger once for the process."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())


class ConnLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds connection fields (``cid``, ``remote``, ...) to every record."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra: dict[str, Any] = dict(self.extra or {})
        given: Mapping[str, Any] | None = kwargs.get("extra")
        if given:
            extra.update(given)
        kwargs["extra"] = extra
        return msg, kwargs
