"""Listening sockets whose protocol code is imported on the first connection.

A server opens every configured port at start-up: a port that cannot be bound
fails the start, and clients can connect at once. The code that serves a port,
though (the SMTP session and its message checks, the IMAP command set, the HTTP
server and its routes: 4 to 6 MiB of Python objects with every service enabled),
is only needed once a client arrives. :class:`LazyListener` holds the sockets of
one service on one listener and builds the service's connection handling (a
:class:`ConnectionStack`) when the first connection is accepted; an idle server,
or one whose IMAP port nobody uses, never loads it.

Building runs on the event loop, once per service and listener: the imports take
some tens of milliseconds, paid by the first client only.

Layer 0: imports nothing from ``app``.
"""

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class ConnectionStack(Protocol):
    """What serves the connections of one service on one listener."""

    def protocol(self) -> asyncio.BaseProtocol:
        """A protocol object for a newly accepted connection."""

    def close(self) -> None:
        """The listener is closing: end the sessions that must not outlive it."""


class ServerTLS(Protocol):
    """A server TLS context built on first use (:class:`app.tls.certs.OnDemandContext`)."""

    def load(self) -> object:
        """Build the context now (and load OpenSSL)."""


class LazyListener(asyncio.AbstractServer):
    """The listening sockets of one service on one listener (one per IP address).

    ``build`` returns the :class:`ConnectionStack`; it is called on the first
    accepted connection (or by :meth:`stack`), and must import the service's
    protocol code itself.
    """

    def __init__(self, service: str, listener: str, build: Callable[[], ConnectionStack]) -> None:
        self.service = service
        self.listener = listener
        self._build = build
        self._stack: ConnectionStack | None = None
        self._tls: ServerTLS | None = None
        self.servers: list[asyncio.Server] = []

    @property
    def built(self) -> bool:
        """Whether the protocol code has been loaded (a connection arrived)."""
        return self._stack is not None

    def stack(self) -> ConnectionStack:
        if self._stack is None:
            self._stack = self._build()
        return self._stack

    def protocol(self) -> asyncio.BaseProtocol:
        if self._tls is not None:
            # asyncio makes the protocol first, then wraps the connection in TLS.
            self._tls.load()
        return self.stack().protocol()

    async def listen(
        self, host: str, port: int, *, tls: ServerTLS | None = None, **kwargs: Any
    ) -> asyncio.Server:
        """Open one listening socket and log it. With ``tls``, connections start with
        a TLS handshake; ``kwargs`` are those of ``loop.create_server``."""
        kwargs.setdefault("family", socket.AF_INET6 if ":" in host else socket.AF_INET)
        if tls is not None:
            self._tls = tls
            kwargs["ssl"] = tls
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self.protocol, host, port, **kwargs)
        self.servers.append(server)
        for sock in server.sockets:
            address, bound = sock.getsockname()[:2]
            log.info(
                "listening",
                extra={
                    "service": self.service,
                    "listener": self.listener,
                    "address": f"{address}:{bound}",
                },
            )
        return server

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(s for server in self.servers for s in server.sockets)

    def close(self) -> None:
        for server in self.servers:
            server.close()
        if self._stack is not None:
            self._stack.close()

    async def wait_closed(self) -> None:
        for server in self.servers:
            await server.wait_closed()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.servers[0].get_loop() if self.servers else asyncio.get_running_loop()

    def is_serving(self) -> bool:
        return any(server.is_serving() for server in self.servers)

    async def start_serving(self) -> None:
        for server in self.servers:
            await server.start_serving()

    async def serve_forever(self) -> None:
        await asyncio.gather(*(server.serve_forever() for server in self.servers))
