"""An SMTP load generator on asyncio: N connections, each sending messages back to back.

Used by the durability test (which kills the server mid-load and checks that every
acknowledged message survived) and by the benchmarks. Connections are spread over
several 127.0.0.x source addresses so per-IP connection limits do not measure
themselves. Every loop is bounded in count and time.
"""

import asyncio
import base64
import ssl
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    acked: list[str] = field(default_factory=list)  # Message-IDs that got 250
    latencies: list[float] = field(default_factory=list)  # seconds, DATA end to 250
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def rate(self) -> float:
        took = self.finished - self.started
        return len(self.acked) / took if took > 0 else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p / 100 * len(s)))]


def message(msgid: str, size: int = 4096, sender: str = "bench@remote.example") -> bytes:
    head = (
        f"From: {sender}\r\nTo: you@example.org\r\nSubject: load {msgid}\r\n"
        f"Message-ID: <{msgid}>\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


async def _reply(r: asyncio.StreamReader) -> int:
    while True:
        line = await r.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


async def _client(
    n: int,
    host: str,
    port: int,
    source: str,
    count: int,
    deadline: float,
    res: LoadResult,
    rcpt: str,
    sender: str,
    login: tuple[str, str] | None,
    tls: ssl.SSLContext | None,
    size: int,
) -> None:
    try:
        r, w = await asyncio.open_connection(host, port, local_addr=(source, 0))
    except OSError as e:
        res.errors.append(f"connect: {e}")
        return
    try:
        await _reply(r)
        w.write(b"EHLO load.example\r\n")
        await _reply(r)
        if tls is not None:
            w.write(b"STARTTLS\r\n")
            await _reply(r)
            await w.start_tls(tls)
            w.write(b"EHLO load.example\r\n")
            await _reply(r)
        if login is not None:
            token = base64.b64encode(f"\0{login[0]}\0{login[1]}".encode()).decode()
            w.write(f"AUTH PLAIN {token}\r\n".encode())
            if await _reply(r) != 235:
                res.errors.append("auth failed")
                return
        for i in range(count):
            if time.monotonic() > deadline:
                return
            msgid = f"c{n}.m{i}.{time.monotonic_ns()}@load.example"
            w.write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
            codes = [await _reply(r) for _ in range(3)]
            if codes != [250, 250, 354]:
                res.errors.append(f"codes {codes}")
                return
            t0 = time.monotonic()
            w.write(message(msgid, size, sender) + b".\r\n")
            code = await _reply(r)
            if code != 250:
                res.errors.append(f"data {code}")
                continue
            res.latencies.append(time.monotonic() - t0)
            res.acked.append(msgid)
        w.write(b"QUIT\r\n")
        await w.drain()
    except (ConnectionError, OSError) as e:
        res.errors.append(f"{type(e).__name__}")
    finally:
        w.close()


async def run_load(
    host: str,
    port: int,
    *,
    connections: int,
    per_connection: int,
    max_seconds: float,
    sources: int = 8,
    rcpt: str = "you@example.org",
    sender: str = "bench@remote.example",
    login: tuple[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    size: int = 4096,
    result: LoadResult | None = None,
) -> LoadResult:
    """Run the load until every connection sent ``per_connection`` messages or time ran out.

    ``result`` may be given to watch progress while the load runs."""
    res = result or LoadResult()
    res.started = time.monotonic()
    deadline = res.started + max_seconds
    await asyncio.gather(
        *(
            _client(
                n,
                host,
                port,
                f"127.0.0.{2 + n % sources}",
                per_connection,
                deadline,
                res,
                rcpt,
                sender,
                login,
                tls,
                size,
            )
            for n in range(connections)
        )
    )
    res.finished = time.monotonic()
    return res
