"""Every transport passes the public conformance suite, under asyncio and uvloop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop
from hypothesis import given, settings
from hypothesis import strategies as st

import peerwire.transport as transport_pkg
from peerwire.errors import (
    ClosedError,
    ConnectionLost,
    MessageTooLarge,
    ProtocolError,
    RemoteLimitExceeded,
)
from peerwire.testing import transport_suite
from peerwire.testing.transport_suite import (
    ALL_CHECKS,
    FramedConnection,
    TransportCheckFailed,
    TransportFactory,
    check_transport,
)
from peerwire.transport import MemoryNetwork, MemoryTransport, TcpTransport
from peerwire.varint import encode_uvarint


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _memory_factory() -> TransportFactory:
    network = MemoryNetwork()
    return lambda: MemoryTransport(network)


TRANSPORTS = [
    pytest.param(lambda: TcpTransport, "/ip4/127.0.0.1/tcp/0", id="tcp4"),
    pytest.param(
        lambda: TcpTransport,
        "/ip6/::1/tcp/0",
        id="tcp6",
        marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback"),
    ),
    pytest.param(_memory_factory, "/memory/0", id="memory"),
]

LOOPS = [
    pytest.param(asyncio.new_event_loop, id="asyncio"),
    pytest.param(uvloop.new_event_loop, id="uvloop"),
]


def _run(loop_factory: Callable[[], asyncio.AbstractEventLoop], aw: Awaitable[None]) -> None:
    async def main() -> None:
        await aw

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


@pytest.mark.parametrize("loop_factory", LOOPS)
@pytest.mark.parametrize(("factory_maker", "listen_addr"), TRANSPORTS)
@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_conformance(
    check: Any,
    factory_maker: Callable[[], TransportFactory],
    listen_addr: str,
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    _run(loop_factory, check(factory_maker(), listen_addr, timeout=20.0))


async def test_check_transport_runs_everything_for_memory() -> None:
    await check_transport(_memory_factory(), "/memory/0", timeout=20.0)


class _BrokenMemoryTransport(MemoryTransport):
    """Pretends to listen but reports no addresses: the suite must notice."""

    async def listen(self, addr: Any, on_connection: Any) -> Any:
        listener = await super().listen(addr, on_connection)
        listener._name = None  # addrs -> []
        return listener


async def test_suite_detects_a_broken_transport() -> None:
    network = MemoryNetwork()
    with pytest.raises(TransportCheckFailed, match="addrs is empty"):
        await transport_suite.check_listener_addrs(
            lambda: _BrokenMemoryTransport(network), "/memory/0", timeout=5.0
        )


def test_transport_package_exports() -> None:
    for name in transport_pkg.__all__:
        assert hasattr(transport_pkg, name), name
    for name in transport_suite.__all__:
        assert hasattr(transport_suite, name), name


# ------------------------------------------------------------ FramedConnection


class _FakeConn:
    """The slice of RawConnection that FramedConnection uses, recorded."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.receiver: Any = None
        self.paused = False
        self.aborted = False
        self.closed = False

    def set_receiver(self, receiver: Any) -> None:
        self.receiver = receiver

    def writelines(self, chunks: Any) -> None:
        if self.closed or self.aborted:
            raise ClosedError("closed")
        for chunk in chunks:
            self.written += chunk

    async def drain(self) -> None:
        pass

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        pass


def _framed(**kwargs: Any) -> tuple[_FakeConn, FramedConnection]:
    conn = _FakeConn()
    framed = FramedConnection(conn, **kwargs)  # type: ignore[arg-type]
    assert conn.receiver is framed
    return conn, framed


async def _receive_all(framed: FramedConnection) -> list[bytes]:
    out = []
    while (message := await framed.receive()) is not None:
        out.append(message)
    return out


def _encode(messages: list[bytes]) -> bytes:
    return b"".join(encode_uvarint(len(m)) + m for m in messages)


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=10),
)
def test_framing_round_trip_whole_chunked_and_bytewise(
    messages: list[bytes], cuts: list[int]
) -> None:
    wire = _encode(messages)
    points = sorted({min(c, len(wire)) for c in cuts})
    splittings = {
        "whole": [wire],
        "chunked": [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)],
        "bytewise": [wire[i : i + 1] for i in range(len(wire))],
    }
    for how, chunks in splittings.items():
        conn, framed = _framed(max_message_size=300)
        for chunk in chunks:
            framed.data_received(memoryview(chunk))
        framed.eof_received()
        assert asyncio.run(_receive_all(framed)) == messages, how
        assert not conn.aborted


@settings(max_examples=30, deadline=None)
@given(messages=st.lists(st.binary(max_size=200), max_size=8))
def test_send_writes_the_framing_receive_parses(messages: list[bytes]) -> None:
    conn, framed = _framed(max_message_size=200)
    for message in messages:
        framed.send_nowait(message)
    assert bytes(conn.written) == _encode(messages)


async def test_send_over_limit_raises_and_writes_nothing() -> None:
    conn, framed = _framed(max_message_size=10)
    await framed.send(b"x" * 10)
    with pytest.raises(MessageTooLarge) as info:
        await framed.send(memoryview(b"y" * 11))
    assert (info.value.limit_name, info.value.limit, info.value.value) == (
        "max_message_size",
        10,
        11,
    )
    assert bytes(conn.written) == encode_uvarint(10) + b"x" * 10


async def test_oversized_declared_length_is_a_protocol_error_fed_bytewise() -> None:
    conn, framed = _framed(max_message_size=10)
    for byte in encode_uvarint(11):
        framed.data_received(memoryview(bytes([byte])))
    with pytest.raises(RemoteLimitExceeded):
        await framed.receive()
    assert conn.aborted


async def test_non_minimal_varint_is_a_protocol_error() -> None:
    conn, framed = _framed()
    framed.data_received(memoryview(b"\x85\x00abcde"))
    with pytest.raises(ProtocolError):
        await framed.receive()
    assert conn.aborted


async def test_eof_inside_a_message_is_a_protocol_error() -> None:
    _, framed = _framed()
    framed.data_received(memoryview(encode_uvarint(5) + b"ab"))
    framed.eof_received()
    with pytest.raises(ProtocolError, match="inside a message"):
        await framed.receive()


async def test_queued_messages_pause_reading_until_consumed() -> None:
    conn, framed = _framed(max_message_size=100, max_buffered_bytes=250)
    framed.data_received(memoryview(_encode([b"a" * 100, b"b" * 100])))
    assert not conn.paused
    framed.data_received(memoryview(_encode([b"c" * 100])))
    assert conn.paused
    assert await framed.receive() == b"a" * 100
    assert conn.paused  # 200 queued: not yet below half the limit
    assert await framed.receive() == b"b" * 100
    assert not conn.paused


async def test_loss_surfaces_as_connection_lost_after_queued_messages() -> None:
    _, framed = _framed()
    framed.data_received(memoryview(_encode([b"last"])))
    framed.connection_lost(ConnectionLost("reset"))
    assert await framed.receive() == b"last"
    with pytest.raises(ConnectionLost):
        await framed.receive()


async def test_receive_after_close_raises_closed_error() -> None:
    conn, framed = _framed()
    await framed.close()
    assert conn.closed
    with pytest.raises(ClosedError):
        await framed.receive()
    with pytest.raises(ClosedError):
        framed.send_nowait(b"x")
