"""Test doubles for the queue: an injected clock, a fake attempt, a fake services object."""

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from app.config.static import Config, parse
from app.queue.service import QueueService
from app.services import Services

START = 1_750_000_000.0


class FakeClock:
    """Time moves only when a test says so; sleeping ends when the scheduler is kicked."""

    def __init__(self, t: float = START) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float | None, wake: asyncio.Event) -> None:
        if deadline is not None and deadline <= self.t:
            return
        await wake.wait()


@dataclass(frozen=True, slots=True)
class RR:
    """A recipient result, shaped like app.queue.attempt.RecipientResult."""

    address: str
    ok: bool
    permanent: bool
    code: int
    secode: str
    text: str
    remote_mta: str = ""


@dataclass(frozen=True, slots=True)
class AR:
    """An attempt result, shaped like app.queue.attempt.AttemptResult."""

    recipients: tuple[RR, ...]
    tls_reports: tuple[Any, ...] = ()
    dialed: tuple[str, ...] = ()
    host: str = ""


@dataclass
class Call:
    sender: str
    recipients: list[str]
    domain: str
    transport: dict[str, Any]
    attempt_number: int
    message: bytes


def ok(address: str) -> RR:
    return RR(address, True, False, 250, "2.0.0", "ok", "mx.remote.example")


def temp(address: str) -> RR:
    return RR(address, False, False, 451, "4.3.0", "try again later", "mx.remote.example")


def perm(address: str) -> RR:
    return RR(address, False, True, 550, "5.1.1", "no such user here", "mx.remote.example")


def _fields(t: Any) -> dict[str, Any]:
    if isinstance(t, dict):
        return t
    names = ("kind", "host", "port", "tls", "port_override")
    return {n: getattr(t, n) for n in names}


@dataclass
class FakeAttempt:
    """Records calls; answers with ``reply(address)``; can be gated to hold attempts."""

    reply: Callable[[str], RR] = ok
    calls: list[Call] = field(default_factory=list)
    gate: asyncio.Event | None = None
    active: dict[str, int] = field(default_factory=dict)
    max_active: dict[str, int] = field(default_factory=dict)
    max_total: int = 0
    _changed: asyncio.Condition | None = None

    async def wait_calls(self, n: int) -> None:
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.calls) >= n)

    async def __call__(
        self,
        resolver: Any,
        *,
        sender: str,
        recipients: Any,
        domain: str,
        message: bytes | Path,
        transport: Any,
        attempt_number: int,
        **kw: Any,
    ) -> AR:
        data = message if isinstance(message, bytes) else message.read_bytes()
        addrs = [str(getattr(r, "address", r)) for r in recipients]
        self.calls.append(Call(sender, addrs, domain, _fields(transport), attempt_number, data))
        if self._changed is None:
            self._changed = asyncio.Condition()
        async with self._changed:
            self._changed.notify_all()
        self.active[domain] = self.active.get(domain, 0) + 1
        self.max_active[domain] = max(self.max_active.get(domain, 0), self.active[domain])
        self.max_total = max(self.max_total, sum(self.active.values()))
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.active[domain] -= 1
        return AR(tuple(self.reply(a) for a in addrs), dialed=("127.0.0.1",), host="mx")


@dataclass
class Delivered:
    account: str
    mailbox: str
    message: bytes


class FakeAccount:
    def __init__(self, name: str, box: list[Delivered]) -> None:
        self.name = name
        self.box = box

    async def deliver(self, mailbox: str, content: bytes, *, prefix: bytes = b"") -> None:
        self.box.append(Delivered(self.name, mailbox, prefix + content))


class FakeAccounts:
    def __init__(self) -> None:
        self.delivered: list[Delivered] = []

    async def get(self, name: str) -> FakeAccount:
        return FakeAccount(name, self.delivered)


def config(queue: str = "", extra: str = "") -> Config:
    return parse(
        'hostname = "mail.test.example"\ndata_dir = "data"\n' + extra + "\n[queue]\n" + queue
    )


def fake_services(data_dir: Path, cfg: Config) -> tuple[Services, FakeAccounts]:
    accounts = FakeAccounts()
    svc = SimpleNamespace(
        config=cfg,
        data_dir=data_dir,
        dynamic=SimpleNamespace(domains={"example.org": None}, accounts={"you": None}),
        accounts=accounts,
        dkim=SimpleNamespace(selectors={}),
        cpu_executor=None,
        resolver=None,
        reports=None,
    )
    # The real method, on the fake: with no reports database it records nothing.
    svc.record_tls_results = functools.partial(Services.record_tls_results, svc)
    return cast(Services, svc), accounts


async def start_queue(
    data_dir: Path, attempt: FakeAttempt, cfg: Config | None = None, clock: FakeClock | None = None
) -> tuple[QueueService, FakeAccounts, FakeClock]:
    import random

    svc, accounts = fake_services(data_dir, cfg or config())
    clock = clock or FakeClock()
    q = QueueService(svc, attempt=attempt, clock=clock, rng=random.Random(7))
    await q.start()
    await q.scheduler.wait_idle()
    return q, accounts, clock
