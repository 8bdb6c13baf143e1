"""Memory transport specifics (the shared behaviour is in test_conformance.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire.errors import ClosedError, ConnectionLost, UsageError
from peerwire.identity.multiaddr import Multiaddr
from peerwire.testing.transport_suite import RecordingReceiver
from peerwire.transport import (
    MemoryConnection,
    MemoryNetwork,
    MemoryPacket,
    MemoryTransport,
    RawConnection,
    default_network,
)


@contextlib.asynccontextmanager
async def memory_pair(
    network: MemoryNetwork | None = None, **options: Any
) -> AsyncIterator[tuple[RawConnection, RawConnection]]:
    network = network or MemoryNetwork()
    transport = MemoryTransport(network, **options)
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue(maxsize=4)
    listener = await transport.listen(Multiaddr("/memory/0"), accepted.put_nowait)
    try:
        dialer = await transport.dial(listener.addrs[0])
        async with asyncio.timeout(5):
            acceptor = await accepted.get()
        try:
            yield dialer, acceptor
        finally:
            dialer.abort()
            acceptor.abort()
    finally:
        await listener.close()


async def _ticks(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("addr", "ok"),
    [
        ("/memory/node-1", True),
        ("/memory/0", True),
        ("/memory/node-1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", True),
        ("/ip4/127.0.0.1/tcp/1", False),
        ("/memory/a/memory/b", False),
    ],
)
def test_can_dial(addr: str, ok: bool) -> None:
    transport = MemoryTransport(MemoryNetwork())
    assert transport.can_dial(Multiaddr(addr)) is ok
    assert transport.can_listen(Multiaddr(addr)) is ok


def test_default_network_is_shared() -> None:
    assert MemoryTransport().network is default_network()
    assert MemoryTransport(MemoryNetwork()).network is not default_network()
    with pytest.raises(UsageError):
        MemoryTransport(write_high_water=10, write_low_water=11)


async def test_names_are_per_network_and_exclusive() -> None:
    one, two = MemoryNetwork(), MemoryNetwork()
    first = await MemoryTransport(one).listen(Multiaddr("/memory/node-1"), lambda c: None)
    again = await MemoryTransport(two).listen(Multiaddr("/memory/node-1"), lambda c: None)
    assert first.addrs == again.addrs == [Multiaddr("/memory/node-1")]
    with pytest.raises(UsageError, match="already"):
        await MemoryTransport(one).listen(Multiaddr("/memory/node-1"), lambda c: None)
    await first.close()
    assert first.addrs == []
    assert one.names == []
    reused = await MemoryTransport(one).listen(Multiaddr("/memory/node-1"), lambda c: None)
    assert one.names == ["node-1"]
    await reused.close()
    await again.close()


async def test_name_zero_picks_fresh_names() -> None:
    network = MemoryNetwork()
    squatter = await MemoryTransport(network).listen(Multiaddr("/memory/auto-2"), lambda c: None)
    transport = MemoryTransport(network)
    listeners = [await transport.listen(Multiaddr("/memory/0"), lambda c: None) for _ in range(3)]
    names = [listener.addrs[0].value_for("memory") for listener in listeners]
    assert len(set(names)) == 3
    assert "0" not in names
    assert "auto-2" not in names
    for listener in [*listeners, squatter]:
        await listener.close()


async def test_dialing_nothing_is_refused() -> None:
    network = MemoryNetwork()
    transport = MemoryTransport(network)
    with pytest.raises(ConnectionLost, match="refused"):
        await transport.dial(Multiaddr("/memory/nobody"))
    with pytest.raises(UsageError):
        await transport.dial(Multiaddr("/ip4/127.0.0.1/tcp/1"))
    listener = await transport.listen(Multiaddr("/memory/gone"), lambda c: None)
    await listener.close()
    with pytest.raises(ConnectionLost):
        await transport.dial(Multiaddr("/memory/gone"))


async def test_listener_closed_before_accept_resets_the_dialer() -> None:
    network = MemoryNetwork()
    transport = MemoryTransport(network)
    listener = await transport.listen(Multiaddr("/memory/x"), lambda c: None)
    conn = await transport.dial(Multiaddr("/memory/x"))
    await listener.close()  # before the accept callback has run
    rec = RecordingReceiver()
    conn.set_receiver(rec)
    async with asyncio.timeout(5):
        await rec.wait_for(lambda: rec.lost)
    assert isinstance(rec.lost_exc, ConnectionLost)


async def test_addresses() -> None:
    async with memory_pair() as (a, b):
        assert a.remote_addr == b.local_addr
        assert a.local_addr == b.remote_addr
        assert str(a.local_addr).startswith("/memory/ephemeral-")
        assert a.is_initiator
        assert not b.is_initiator


async def test_delivery_is_asynchronous_and_ordered() -> None:
    async with memory_pair() as (a, b):
        rec = RecordingReceiver()
        b.set_receiver(rec)
        expected = bytearray()
        for i in range(100):
            chunk = bytes([i]) * (i + 1)
            a.write(chunk)
            assert rec.received == 0  # never delivered inside write()
            expected += chunk
        a.writelines([b"x", bytearray(b"y"), memoryview(b"z")])
        expected += b"xyz"
        assert rec.received == 0
        await _ticks()
        assert rec.data == expected
        assert not rec.violations


async def test_written_buffers_are_copied() -> None:
    async with memory_pair() as (a, b):
        rec = RecordingReceiver()
        b.set_receiver(rec)
        buf = bytearray(b"original")
        a.write(buf)
        buf[:] = b"mutated!"
        await _ticks()
        assert rec.data == b"original"


async def test_backpressure_is_end_to_end() -> None:
    async with memory_pair(write_high_water=1000, write_low_water=100) as (a, b):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        b.pause_reading()
        a.write(bytes(1000))
        assert not a.write_paused  # at the mark, not above it
        a.write(b"!")
        assert a.write_paused
        assert ra.write_pauses == 1
        drain = asyncio.ensure_future(a.drain())
        await _ticks(10)
        assert not drain.done()
        assert rb.received == 0  # paused reading stops delivery, so no credit
        b.resume_reading()
        assert rb.received == 0  # replay happens on the next loop pass, not inside resume
        async with asyncio.timeout(5):
            await drain
        assert rb.received == 1001
        assert not a.write_paused
        assert ra.write_resumes == 1


async def test_pause_reading_holds_back_eof_too() -> None:
    async with memory_pair() as (a, b):
        rec = RecordingReceiver()
        b.set_receiver(rec)
        b.pause_reading()
        a.write(b"data")
        a.write_eof()
        await _ticks()
        assert rec.received == 0
        assert not rec.eof
        b.resume_reading()
        await _ticks()
        assert rec.data == b"data"
        assert rec.eof


async def test_receiver_swap_during_replay_splits_the_stream_cleanly() -> None:
    async with memory_pair() as (a, b):
        for i in range(5):
            a.write(b"%d;" % i)
            await _ticks(2)  # separate packets, all queued (no receiver yet)
        second = RecordingReceiver()

        class HandOff(RecordingReceiver):
            def data_received(self, data: memoryview) -> None:
                super().data_received(data)
                b.set_receiver(second)

        first = HandOff()
        b.set_receiver(first)
        assert first.data == b"0;"
        assert second.data == b"1;2;3;4;"


async def test_pause_inside_replay_stops_it() -> None:
    async with memory_pair() as (a, b):
        for i in range(3):
            a.write(b"%d;" % i)
            await _ticks(2)

        class Pauser(RecordingReceiver):
            def data_received(self, data: memoryview) -> None:
                super().data_received(data)
                b.pause_reading()

        rec = Pauser()
        b.set_receiver(rec)
        assert rec.data == b"0;"
        b.resume_reading()
        await _ticks()
        assert rec.data == b"0;1;"


async def test_abort_resets_the_remote_and_writes_then_fail() -> None:
    async with memory_pair() as (a, b):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        a.write(b"lost in flight")
        a.abort()
        with pytest.raises(ClosedError):
            a.write(b"x")
        await _ticks()
        assert rb.lost
        assert isinstance(rb.lost_exc, ConnectionLost)
        assert rb.received == 0  # queued data is dropped by abort
        assert ra.lost
        assert ra.lost_exc is None
        with pytest.raises(ConnectionLost):
            b.write(b"x")


async def test_writing_to_a_closed_end_resets_the_writer() -> None:
    async with memory_pair() as (a, b):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        b.close()
        await _ticks()
        assert ra.eof
        assert not ra.lost
        a.write(b"anyone there?")
        await _ticks()
        assert ra.lost
        assert isinstance(ra.lost_exc, ConnectionLost)


async def test_closing_with_unread_input_resets_the_remote() -> None:
    async with memory_pair(write_high_water=10) as (a, b):
        ra = RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(RecordingReceiver())
        b.pause_reading()
        a.write(bytes(100))
        assert a.write_paused
        drain = asyncio.ensure_future(a.drain())
        await _ticks()
        b.close()
        async with asyncio.timeout(5):
            with pytest.raises(ConnectionLost):
                await drain  # not left waiting for credit that never comes
        assert isinstance(ra.lost_exc, ConnectionLost)


class HoldingNetwork(MemoryNetwork):
    """A stand-in simulator: holds every packet until released."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[MemoryConnection, MemoryPacket]] = []

    def schedule_delivery(self, sender: MemoryConnection, packet: MemoryPacket) -> None:
        self.held.append((sender, packet))

    def release(self) -> None:
        held, self.held = self.held, []
        for sender, packet in held:
            self.deliver(sender, packet)


async def test_delivery_goes_through_the_overridable_hook() -> None:
    network = HoldingNetwork()
    async with memory_pair(network) as (a, b):
        rec = RecordingReceiver()
        b.set_receiver(rec)
        a.write(b"one")
        await _ticks()
        a.writelines([b"two", b"three"])
        a.write_eof()
        await _ticks()
        assert rec.received == 0
        assert [p.data for _, p in network.held] == [b"one", b"twothree"]
        assert [p.eof for _, p in network.held] == [False, True]
        network.release()
        assert rec.data == b"onetwothree"
        assert rec.eof
        # A simulator breaks a link by delivering resets.
        assert isinstance(a, MemoryConnection)
        network.deliver(a, MemoryPacket(reset=True))  # reaches b, a's peer
        assert rec.lost
        assert isinstance(rec.lost_exc, ConnectionLost)


async def test_half_close_then_both_sides_finish_cleanly() -> None:
    async with memory_pair() as (a, b):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        a.write_eof()
        a.write_eof()  # idempotent
        with pytest.raises(ClosedError):
            a.write(b"x")
        await _ticks()
        assert rb.eof
        assert not rb.lost
        assert not ra.lost
        b.write(b"still talking")
        b.write_eof()
        await _ticks()
        assert ra.data == b"still talking"
        assert ra.eof
        assert ra.lost
        assert ra.lost_exc is None
        assert rb.lost
        assert rb.lost_exc is None
        assert a.is_closing
        assert b.is_closing


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=0, max_size=200), max_size=20),
    yields=st.lists(st.booleans(), max_size=20),
)
def test_any_write_pattern_arrives_as_the_same_stream(
    chunks: list[bytes], yields: list[bool]
) -> None:
    async def main() -> None:
        async with memory_pair(write_high_water=256) as (a, b):
            rec = RecordingReceiver()
            b.set_receiver(rec)
            for i, chunk in enumerate(chunks):
                a.write(chunk)
                if i < len(yields) and yields[i]:
                    await asyncio.sleep(0)
            a.write_eof()
            async with asyncio.timeout(5):
                await a.drain()
                await rec.wait_for(lambda: rec.eof)
            assert rec.data == b"".join(chunks)
            assert not rec.violations

    asyncio.run(main())


async def test_close_stops_reading_and_late_data_resets_the_writer() -> None:
    async with memory_pair() as (a, b):
        ra, rb = RecordingReceiver(), RecordingReceiver()
        a.set_receiver(ra)
        b.set_receiver(rb)
        a.close()
        b.write(b"crossing the FIN")  # sent before b has seen a's EOF
        await _ticks()
        assert ra.received == 0
        assert ra.lost
        assert ra.lost_exc is None
        assert rb.lost
        assert isinstance(rb.lost_exc, ConnectionLost)


async def test_drain_returns_once_both_sides_finished_cleanly() -> None:
    async with memory_pair(write_high_water=4) as (a, b):
        b.set_receiver(RecordingReceiver())
        b.pause_reading()
        a.write(b"0123456789")
        assert a.write_paused
        drain = asyncio.ensure_future(a.drain())
        a.write_eof()
        b.write_eof()
        b.resume_reading()
        async with asyncio.timeout(5):
            await drain
        await _ticks()
        assert a.is_closing
        await a.drain()  # ended cleanly: nothing to wait for, nothing to raise
