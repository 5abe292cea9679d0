"""Prometheus metrics: a small registry rendered in the text exposition format.

Layer 0: imports nothing from ``app``. One :class:`Metrics` object lives on the
services object; servers count what they do through its named metrics, e.g.
``services.metrics.connections.inc(service="imaps")``. Every metric is safe to use
from the event loop and from the web handler threads at once.

Text format: https://prometheus.io/docs/instrumenting/exposition_formats/ (version
0.0.4): ``# HELP``, ``# TYPE``, then one ``name{label="value"} number`` per series.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]


class MetricError(ValueError):
    """A metric used with the wrong labels, or registered twice."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help
        self.labels = labels
        self._values: dict[LabelValues, float] = {}
        self._lock = threading.Lock()
        if not labels:
            self._values[()] = 0.0

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labels):
            raise MetricError(f"{self.name}: labels must be {self.labels}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labels)

    def value(self, **labels: str) -> float:
        """The current value of one series (0 when never touched)."""
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        with self._lock:
            items = sorted(self._values.items())
        for key, v in items:
            if key:
                lbl = ",".join(f'{n}="{_escape(x)}"' for n, x in zip(self.labels, key, strict=True))
                yield f"{self.name}{{{lbl}}} {_number(v)}"
            else:
                yield f"{self.name} {_number(v)}"


class Counter(_Metric):
    """A value that only goes up (restarts at 0 with the process)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise MetricError(f"{self.name}: a counter cannot decrease")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)


@dataclass
class Registry:
    """Metrics by name, rendered in registration order."""

    _metrics: dict[str, _Metric] = field(default_factory=dict)

    def _add(self, m: _Metric) -> None:
        if m.name in self._metrics:
            raise MetricError(f"metric {m.name} registered twice")
        self._metrics[m.name] = m

    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Counter:
        c = Counter(name, help, labels)
        self._add(c)
        return c

    def gauge(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Gauge:
        g = Gauge(name, help, labels)
        self._add(g)
        return g

    def render(self) -> str:
        """The whole registry in the text exposition format."""
        lines: list[str] = []
        for m in self._metrics.values():
            lines.extend(m.render())
        return "\n".join(lines) + "\n"


class Metrics:
    """The metrics of one server. Other services count through these attributes."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.connections = r.counter(
            "pillarbox_connections_total", "Connections accepted, by service.", ("service",)
        )
        self.http_requests = r.counter(
            "pillarbox_http_requests_total",
            "HTTP requests answered, by listener and status code.",
            ("listener", "code"),
        )
        self.deliveries = r.counter(
            "pillarbox_deliveries_total",
            "Incoming deliveries, by result (delivered, rejected, junk, ...).",
            ("result",),
        )
        self.auth_attempts = r.counter(
            "pillarbox_auth_attempts_total",
            "Authentication attempts, by protocol and result (ok, badcreds, ratelimited).",
            ("protocol", "result"),
        )
        self.queue_size = r.gauge("pillarbox_queue_size", "Messages in the outgoing queue.")

    def render(self) -> str:
        return self.registry.render()
