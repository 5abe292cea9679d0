"""An IMAP load generator on asyncio: fill a mailbox, then N logged-in clients run
bounded phases of one operation kind each (SEARCH, STORE, FETCH BODY.PEEK[], FETCH 1:*).

Used by the IMAP benchmark (``tests/bench/imap_bench.py``) and by the peer comparison
with Dovecot (``tests/bench/peers.py``); both servers get the same messages and the same
command sequence. The client side is kept cheap (one read buffer per connection, no
regular expressions per line) because on a small machine it shares the CPUs with the
server it measures. Every loop is bounded in count and time.
"""

import asyncio
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MESSAGE_SIZE = 4096
READ_CHUNK = 256 * 1024

# A small vocabulary: the first words are common, the later ones rare (Zipf-like), so
# SEARCH BODY/SUBJECT terms match anything from a handful to most of the mailbox.
_SYLLABLES = ("ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "ve", "zu", "ba", "do")
VOCABULARY: tuple[str, ...] = tuple(
    a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES[:4]
)[:400]
SENDERS: tuple[str, ...] = tuple(
    f"sender{i}@{d}" for i in range(40) for d in ("north.example", "south.example")
)[:60]
# Operation kinds, in the order the benchmark runs them.
KINDS: tuple[str, ...] = ("search", "store", "fetch_body", "fetch_all")


class IMAPLoadError(Exception):
    """A server answered unexpectedly; ``response`` holds the offending line."""

    def __init__(self, what: str, response: bytes = b"") -> None:
        super().__init__(what, response)
        self.what = what
        self.response = response


def _word(rng: random.Random) -> str:
    # Zipf-ish: index = floor(len * u^3) favours the first words heavily.
    return VOCABULARY[int(len(VOCABULARY) * rng.random() ** 3)]


def bench_message(n: int, size: int = MESSAGE_SIZE) -> bytes:
    """Message ``n`` of the benchmark set: exactly ``size`` bytes, CRLF line endings,
    deterministic (the same bytes go to every server compared)."""
    rng = random.Random(n)
    subject = f"{_word(rng)} {_word(rng)} report {n}"
    head = (
        f"From: {SENDERS[n % len(SENDERS)]}\r\nTo: you@example.org\r\n"
        f"Subject: {subject}\r\nMessage-ID: <bench{n}@load.example>\r\n"
        f"Date: Mon, 1 Jan 2024 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d} +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    lines: list[bytes] = []
    total = len(head)
    while total < size:
        line = " ".join(_word(rng) for _ in range(10)).encode() + b"\r\n"
        lines.append(line)
        total += len(line)
    body = b"".join(lines)[: size - len(head) - 2]
    if body.endswith(b"\r"):  # cut between CR and LF: no bare CR
        body = body[:-1] + b"x"
    return head + body + b"\r\n"


def seen(n: int) -> bool:
    """Roughly 70% of the set is appended as \\Seen, so UNSEEN matches ~1,500."""
    return n % 10 < 7


@dataclass
class Response:
    status: bytes  # b"OK", b"NO", b"BAD"
    text: bytes
    untagged: list[bytes]


class IMAPClient:
    """One connection. Responses are read from a private buffer, literals included."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.tagn = 0
        self.capabilities: set[str] = set()
        self.bytes_in = 0

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        starttls: bool = True,
        source: str | None = None,
        timeout: float = 30.0,
    ) -> "IMAPClient":
        """Connect and read the greeting; with ``tls`` and ``starttls`` upgrade the
        connection, with ``tls`` and not ``starttls`` use implicit TLS."""
        r, w = await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=tls if tls is not None and not starttls else None,
                local_addr=(source, 0) if source else None,
                limit=READ_CHUNK,
            ),
            timeout,
        )
        c = cls(r, w)
        greeting = await c.read_response()
        if not greeting.startswith(b"* OK"):
            raise IMAPLoadError("greeting", greeting)
        if tls is not None and starttls:
            await c.check(b"STARTTLS")
            if c.buf:
                raise IMAPLoadError("data after STARTTLS", bytes(c.buf))
            await w.start_tls(tls)
        resp = await c.check(b"CAPABILITY")
        for line in resp.untagged:
            if line.startswith(b"* CAPABILITY "):
                c.capabilities = set(line[13:].decode().upper().split())
        return c

    async def _fill(self) -> None:
        data = await self.reader.read(READ_CHUNK)
        if not data:
            raise IMAPLoadError("connection closed")
        self.bytes_in += len(data)
        self.buf += data

    async def read_response(self) -> bytes:
        """One complete response (a line, plus any literals it announces)."""
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i < 0:
                start = max(0, len(self.buf) - 1)
                await self._fill()
                continue
            if i > 0 and self.buf[i - 1] == 0x7D:  # "}": a literal follows
                j = self.buf.rfind(b"{", start, i)
                if j >= 0 and self.buf[j + 1 : i - 1].isdigit():
                    end = i + 2 + int(self.buf[j + 1 : i - 1])
                    while len(self.buf) < end:
                        await self._fill()
                    start = end
                    continue
            out = bytes(self.buf[: i + 2])
            del self.buf[: i + 2]
            return out

    async def command(
        self, cmd: bytes, literal: bytes | None = None, *, collect: bool = True
    ) -> Response:
        """Send ``cmd`` (with one trailing literal, LITERAL+ when offered) and read up to
        its tagged response. Untagged responses are kept when ``collect``."""
        self.tagn += 1
        tag = b"b%d" % self.tagn
        if literal is None:
            self.writer.write(tag + b" " + cmd + b"\r\n")
        elif "LITERAL+" in self.capabilities:
            self.writer.write(b"%s %s {%d+}\r\n%s\r\n" % (tag, cmd, len(literal), literal))
        else:
            self.writer.write(b"%s %s {%d}\r\n" % (tag, cmd, len(literal)))
            cont = await self.read_response()
            if not cont.startswith(b"+"):
                raise IMAPLoadError("no continuation", cont)
            self.writer.write(literal + b"\r\n")
        untagged: list[bytes] = []
        prefix = tag + b" "
        while True:
            resp = await self.read_response()
            if resp.startswith(prefix):
                status, _, text = resp[len(prefix) :].partition(b" ")
                return Response(status, text.rstrip(b"\r\n"), untagged)
            if collect:
                untagged.append(resp)

    async def check(
        self, cmd: bytes, literal: bytes | None = None, collect: bool = True
    ) -> Response:
        resp = await self.command(cmd, literal, collect=collect)
        if resp.status != b"OK":
            raise IMAPLoadError(cmd.split(b" ", 1)[0].decode(), resp.status + b" " + resp.text)
        return resp

    async def login(self, user: str, password: str) -> None:
        await self.check(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))

    async def select(self, mailbox: str = "INBOX") -> list[int]:
        """SELECT, then the mailbox's UIDs (UID SEARCH ALL)."""
        await self.check(b"SELECT " + mailbox.encode())
        resp = await self.check(b"UID SEARCH ALL")
        uids: list[int] = []
        for line in resp.untagged:
            if line.startswith(b"* SEARCH"):
                uids += [int(x) for x in line[8:].split()]
        return uids

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.command(b"LOGOUT", collect=False), 5)
        except (OSError, IMAPLoadError, TimeoutError, ssl.SSLError):
            pass
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, TimeoutError, ssl.SSLError):
            pass


@dataclass
class Endpoint:
    """Where and how to log in; the same for every client of one server."""

    host: str
    port: int
    user: str
    password: str
    tls: ssl.SSLContext | None = None
    starttls: bool = True
    sources: int = 8  # spread connections over 127.0.0.2.. to stay under per-IP limits

    async def client(self, n: int) -> IMAPClient:
        src = f"127.0.0.{2 + n % self.sources}" if self.host.startswith("127.") else None
        c = await IMAPClient.connect(
            self.host, self.port, tls=self.tls, starttls=self.starttls, source=src
        )
        await c.login(self.user, self.password)
        return c


@dataclass
class FillResult:
    appended: int
    seconds: float
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.appended / self.seconds if self.seconds > 0 else 0.0


async def fill(
    ep: Endpoint,
    count: int,
    *,
    connections: int = 8,
    max_seconds: float = 90.0,
    mailbox: str = "INBOX",
) -> FillResult:
    """APPEND messages 0..count-1 of the benchmark set over ``connections`` parallel
    connections (each APPEND acknowledged before the next on that connection)."""
    it = iter(range(count))
    res = FillResult(0, 0.0)
    t0 = time.monotonic()
    deadline = t0 + max_seconds

    async def appender(k: int) -> None:
        c = await ep.client(k)
        try:
            for n in it:
                if time.monotonic() > deadline:
                    res.errors.append("time limit")
                    return
                cmd = b"APPEND " + mailbox.encode() + (b" (\\Seen)" if seen(n) else b"")
                r = await c.command(cmd, bench_message(n))
                if r.status != b"OK":
                    res.errors.append(f"append {n}: {r.status!r} {r.text[:80]!r}")
                    if len(res.errors) > 20:
                        return
                    continue
                res.appended += 1
        finally:
            await c.close()

    await asyncio.gather(*(appender(k) for k in range(connections)))
    res.seconds = time.monotonic() - t0
    return res


def search_command(i: int, client: int) -> tuple[str, bytes]:
    """The i-th SEARCH of a client: (criterion kind, command). A fixed rotation of
    BODY, SUBJECT, UNSEEN and FROM over deterministic terms."""
    rng = random.Random(client * 100_003 + i)
    kind = ("body", "subject", "unseen", "from")[i % 4]
    if kind == "body":
        return kind, b"UID SEARCH BODY " + _word(rng).encode()
    if kind == "subject":
        return kind, b"UID SEARCH SUBJECT " + _word(rng).encode()
    if kind == "unseen":
        return kind, b"UID SEARCH UNSEEN"
    return kind, b'UID SEARCH FROM "' + SENDERS[rng.randrange(len(SENDERS))].encode() + b'"'


def op_command(kind: str, i: int, client: int, uids: Sequence[int]) -> bytes:
    """The i-th command of ``kind`` for a client (deterministic)."""
    if kind == "search":
        return search_command(i, client)[1]
    rng = random.Random(client * 7919 + i * 31 + len(kind))
    uid = uids[rng.randrange(len(uids))]
    if kind == "store":
        sign = b"+" if i % 2 == 0 else b"-"
        return b"UID STORE %d %sFLAGS (\\Flagged)" % (uid, sign)
    if kind == "fetch_body":
        return b"UID FETCH %d BODY.PEEK[]" % uid
    if kind == "fetch_all":
        return b"FETCH 1:* (FLAGS UID RFC822.SIZE)"
    raise ValueError(kind)


@dataclass
class PhaseResult:
    kind: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    by_criterion: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0
    bytes_in: int = 0

    @property
    def ops(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        s = sorted(self.latencies if values is None else values)
        if not s:
            return 0.0
        return s[min(len(s) - 1, int(p / 100 * len(s)))]

    def summary(self) -> dict[str, object]:
        out: dict[str, object] = {
            "kind": self.kind,
            "clients": self.clients,
            "ops": self.ops,
            "seconds": round(self.seconds, 2),
            "ops_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "errors": len(self.errors),
        }
        if self.server_cpu_s is not None and self.ops:
            out["server_cpu_ms_per_op"] = round(self.server_cpu_s / self.ops * 1000, 3)
        if self.ops:
            out["client_cpu_ms_per_op"] = round(self.client_cpu_s / self.ops * 1000, 3)
        if self.by_criterion:
            out["search_p50_ms"] = {
                k: round(self.percentile(50, v) * 1000, 2) for k, v in self.by_criterion.items()
            }
        if self.errors:
            out["error_samples"] = self.errors[:5]
        return out


def _process_cpu() -> float:
    return time.process_time()


class Load:
    """``clients`` logged-in connections with INBOX selected, reused across phases."""

    def __init__(self, ep: Endpoint, clients: int = 8) -> None:
        self.ep = ep
        self.n = clients
        self.conns: list[IMAPClient] = []
        self.uids: list[int] = []

    async def __aenter__(self) -> "Load":
        self.conns = list(await asyncio.gather(*(self.ep.client(k) for k in range(self.n))))
        for c in self.conns:
            self.uids = await c.select()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(c.close() for c in self.conns))

    async def phase(
        self,
        kind: str,
        per_client: int,
        max_seconds: float,
        server_cpu: Callable[[], float] | None = None,
    ) -> PhaseResult:
        """Each client runs up to ``per_client`` commands of ``kind`` back to back,
        stopping early at ``max_seconds``."""
        res = PhaseResult(kind, self.n)
        if not self.uids:
            res.errors.append("mailbox is empty")
            return res
        cpu0 = server_cpu() if server_cpu else 0.0
        ccpu0 = _process_cpu()
        bytes0 = sum(c.bytes_in for c in self.conns)
        t0 = time.monotonic()
        deadline = t0 + max_seconds

        async def worker(k: int, c: IMAPClient) -> None:
            for i in range(per_client):
                if time.monotonic() > deadline:
                    return
                cmd = op_command(kind, i, k, self.uids)
                t = time.monotonic()
                try:
                    r = await c.command(cmd, collect=False)
                except (IMAPLoadError, OSError, ssl.SSLError) as e:
                    res.errors.append(f"{cmd[:40]!r}: {e!r}")
                    return
                took = time.monotonic() - t
                if r.status != b"OK":
                    res.errors.append(f"{cmd[:40]!r}: {r.status!r} {r.text[:80]!r}")
                    continue
                res.latencies.append(took)
                if kind == "search":
                    crit = search_command(i, k)[0]
                    res.by_criterion.setdefault(crit, []).append(took)

        await asyncio.gather(*(worker(k, c) for k, c in enumerate(self.conns)))
        res.seconds = time.monotonic() - t0
        res.client_cpu_s = _process_cpu() - ccpu0
        res.bytes_in = sum(c.bytes_in for c in self.conns) - bytes0
        if server_cpu:
            res.server_cpu_s = server_cpu() - cpu0
        return res
