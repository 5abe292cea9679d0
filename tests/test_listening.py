"""LazyListener: ports open at once, the protocol stack is built by the first connection."""

import asyncio

import pytest

from app.listening import LazyListener


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"hello\n")


class FakeStack:
    def __init__(self) -> None:
        self.protocols = 0
        self.closed = 0

    def protocol(self) -> asyncio.BaseProtocol:
        self.protocols += 1
        return Echo()

    def close(self) -> None:
        self.closed += 1


async def greeting(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_stack_is_built_once_by_the_first_connection() -> None:
    stacks: list[FakeStack] = []

    def build() -> FakeStack:
        stacks.append(FakeStack())
        return stacks[-1]

    lst = LazyListener("test", "local", build)
    await lst.listen("127.0.0.1", 0)
    await lst.listen("127.0.0.1", 0)
    try:
        assert len(lst.sockets) == 2 and lst.is_serving()
        assert not lst.built and stacks == []
        ports = [int(s.getsockname()[1]) for s in lst.sockets]
        for port in ports + ports:
            assert await greeting(port) == b"hello\n"
        assert lst.built and len(stacks) == 1 and stacks[0].protocols == 4
    finally:
        lst.close()
        await lst.wait_closed()
    assert stacks[0].closed == 1 and not lst.is_serving()


async def test_closing_an_unused_listener_builds_nothing() -> None:
    def build() -> FakeStack:
        raise AssertionError("built without a connection")

    lst = LazyListener("test", "local", build)
    await lst.listen("127.0.0.1", 0)
    port = int(lst.sockets[0].getsockname()[1])
    lst.close()
    await lst.wait_closed()
    assert not lst.built
    with pytest.raises(OSError):
        await greeting(port)
