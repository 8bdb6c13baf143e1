"""Lazy (optimistic) multistream-select on outbound streams: one round trip saved."""

from __future__ import annotations

import asyncio

import pytest

from peerwire.errors import NegotiationError, UsageError
from peerwire.mux.stream import Stream
from peerwire.testing import node_pair

ECHO = "/test/echo/1.0.0"


async def _echo(stream: Stream) -> None:
    data = await stream.read()
    await stream.write(data)
    await stream.close()


async def test_lazy_stream_carries_data_behind_the_proposal() -> None:
    async with node_pair() as (a, b):
        b.set_stream_handler(ECHO, _echo)
        stream = await a.host.new_stream(b.peer_id, ECHO, lazy=True)
        assert stream.protocol == ECHO
        await stream.write(b"hello")
        await stream.close_write()
        async with asyncio.timeout(5):
            assert await stream.read() == b"hello"


async def test_lazy_refusal_fails_the_read_with_negotiation_error() -> None:
    async with node_pair() as (a, b):
        stream = await a.host.new_stream(b.peer_id, "/nobody/serves/this", lazy=True)
        await stream.write(b"payload the listener must not take as application data")
        async with asyncio.timeout(5):
            with pytest.raises(NegotiationError):
                await stream.read()
        assert stream.is_closed
        # The connection is unharmed: a normal stream still works.
        b.set_stream_handler(ECHO, _echo)
        again = await a.host.new_stream(b.peer_id, ECHO, lazy=False)
        await again.write(b"x")
        await again.close_write()
        async with asyncio.timeout(5):
            assert await again.read() == b"x"


async def test_lazy_needs_exactly_one_protocol() -> None:
    async with node_pair() as (a, b):
        with pytest.raises(UsageError):
            await a.host.new_stream(b.peer_id, [ECHO, "/other/1.0.0"], lazy=True)


async def test_streams_negotiate_eagerly_by_default() -> None:
    async with node_pair() as (a, b):
        b.set_stream_handler(ECHO, _echo)
        stream = await a.host.new_stream(b.peer_id, ECHO)
        assert stream._negotiator is None  # the echo was awaited
        with pytest.raises(NegotiationError):
            await a.host.new_stream(b.peer_id, "/not/served/1.0.0")
