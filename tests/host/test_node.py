"""Node behaviour over the memory and TCP transports: connect, ping, identify, streams."""

from __future__ import annotations

import asyncio
import os

import pytest

import peerwire as pw
from peerwire.config import MPLEX, PLAINTEXT, YAMUX
from peerwire.testing import make_node, node_pair, running_nodes

TRANSPORTS = ["memory", "tcp"]
MUXERS = [YAMUX, MPLEX]


async def echo_handler(stream: pw.Stream) -> None:
    while data := await stream.read(65536):
        await stream.write(data)
    await stream.close_write()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("muxer", MUXERS)
async def test_connect_ping_identify(transport: str, muxer: str) -> None:
    cfg = pw.Config(muxers=(muxer,))
    async with node_pair(transport, config_a=cfg, config_b=cfg) as (a, b):  # type: ignore[arg-type]
        assert b.peer_id in a.peers()
        assert a.peer_id in b.peers()
        conn = a.connection(b.peer_id)
        assert conn is not None
        assert conn.security_protocol == "/noise"
        assert conn.muxer_protocol == muxer
        rtt = await a.ping(b.peer_id)
        assert 0 < rtt < 10
        info = await a.identify(b.peer_id)
        assert info.peer_id == b.peer_id
        assert info.agent_version.startswith("peerwire/")
        assert "/ipfs/ping/1.0.0" in info.protocols
        assert "/ipfs/id/1.0.0" in info.protocols
        assert [str(x) for x in info.listen_addrs] == [str(x) for x in b.host.listen_addrs]
        back = await b.identify(a.peer_id)
        assert back.peer_id == a.peer_id


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("muxer", MUXERS)
async def test_echo_one_mebibyte(transport: str, muxer: str) -> None:
    cfg = pw.Config(muxers=(muxer,))
    async with node_pair(transport, config_a=cfg, config_b=cfg) as (a, b):  # type: ignore[arg-type]
        b.set_stream_handler("/echo/1.0.0", echo_handler)
        payload = os.urandom(1 << 20)
        stream = await a.open_stream(b.peer_id, "/echo/1.0.0")
        assert stream.protocol == "/echo/1.0.0"

        async def send() -> None:
            await stream.write(payload)
            await stream.close_write()

        async with asyncio.timeout(30):
            sender = asyncio.ensure_future(send())
            received = await stream.read()
            await sender
        assert received == payload
        await stream.close()


async def test_many_concurrent_streams() -> None:
    async with node_pair() as (a, b):
        b.set_stream_handler("/echo/1.0.0", echo_handler)

        async def one(i: int) -> bytes:
            s = await a.open_stream(b.peer_id, "/echo/1.0.0")
            await s.write(i.to_bytes(4, "big") * 100)
            await s.close_write()
            return await s.read()

        async with asyncio.timeout(30):
            results = await asyncio.gather(*(one(i) for i in range(200)))
        assert all(r == i.to_bytes(4, "big") * 100 for i, r in enumerate(results))


@pytest.mark.parametrize("muxer", MUXERS)
async def test_slow_reader_slows_writer_without_killing_stream(muxer: str) -> None:
    """Backpressure: a writer far ahead of a paused reader waits, then everything arrives."""
    cfg = pw.Config(muxers=(muxer,))
    got: asyncio.Queue[pw.Stream] = asyncio.Queue(maxsize=1)

    async def hold(stream: pw.Stream) -> None:
        await got.put(stream)
        await asyncio.sleep(60)  # the test drives this stream directly

    async with node_pair("tcp", config_a=cfg, config_b=cfg) as (a, b):
        b.set_stream_handler("/sink/1.0.0", hold)
        stream = await a.open_stream(b.peer_id, "/sink/1.0.0")
        await stream.write(b"x")
        remote = await asyncio.wait_for(got.get(), 10)
        total = 16 << 20
        chunk = os.urandom(64 << 10)
        written = 0

        async def writer() -> None:
            nonlocal written
            while written < total:
                await stream.write(chunk)
                written += len(chunk)
            await stream.close_write()

        task = asyncio.ensure_future(writer())
        await asyncio.sleep(1.0)
        # Nothing is being read: the writer must be stuck well short of the total.
        assert not task.done()
        assert written < total
        received = 0
        async with asyncio.timeout(60):
            while data := await remote.read(1 << 20):
                received += len(data)
        await task
        assert received == total + 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_unknown_protocol_is_a_negotiation_error(transport: str) -> None:
    async with node_pair(transport) as (a, b):  # type: ignore[arg-type]
        with pytest.raises(pw.NegotiationError):
            await a.open_stream(b.peer_id, "/nobody/speaks/this")
        # The connection still serves other streams.
        assert await a.ping(b.peer_id) > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_wrong_peer_id_is_refused(transport: str) -> None:
    async with running_nodes(2, transport) as (a, b):  # type: ignore[arg-type]
        impostor = pw.Identity.generate().peer_id
        addr = b.host.listen_addrs[0].with_peer_id(impostor)
        with pytest.raises(pw.PeerIdMismatch):
            await a.connect(addr)
        assert a.peers() == []
        # b keeps serving.
        assert await a.connect(b.addrs[0]) == b.peer_id
        assert await a.ping(b.peer_id) > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_simultaneous_dial_converges_on_one_connection(transport: str) -> None:
    async with running_nodes(2, transport) as (a, b):  # type: ignore[arg-type]
        for _ in range(5):
            await asyncio.gather(a.connect(b.addrs[0]), b.connect(a.addrs[0]))
            ca, cb = a.connection(b.peer_id), b.connection(a.peer_id)
            assert ca is not None
            assert cb is not None
            # Both sides keep the connection dialled by the smaller peer id.
            dialer_a = a.peer_id if ca.raw.is_initiator else b.peer_id
            dialer_b = b.peer_id if cb.raw.is_initiator else a.peer_id
            assert dialer_a == dialer_b == min(a.peer_id, b.peer_id)
            assert await a.ping(b.peer_id) > 0
            await a.disconnect(b.peer_id)
            async with asyncio.timeout(10):
                while a.connection(b.peer_id) or b.connection(a.peer_id):
                    await asyncio.sleep(0.01)
        # Retired duplicates get closed: at most one live connection each way.
        async with asyncio.timeout(15):
            while len(a.host.connections()) > 1:
                await asyncio.sleep(0.05)


async def test_concurrent_connects_share_one_dial() -> None:
    async with running_nodes(2) as (a, b):
        peers = await asyncio.gather(*(a.connect(b.addrs[0]) for _ in range(10)))
        assert set(peers) == {b.peer_id}
        assert len(a.host.connections()) == 1


async def test_identify_push_announces_new_protocols() -> None:
    async with node_pair() as (a, b):
        await a.identify(b.peer_id)
        b.set_stream_handler("/late/1.0.0", echo_handler)
        async with asyncio.timeout(10):
            while True:
                info = a.host.peerstore.get(b.peer_id)
                if info is not None and "/late/1.0.0" in info.protocols:
                    break
                await asyncio.sleep(0.02)


async def test_plaintext_refused_by_default() -> None:
    plain = pw.Config(security=(PLAINTEXT,), allow_plaintext=True)
    async with running_nodes(2, configs=[plain, None]) as (a, b):
        with pytest.raises(pw.NegotiationError):
            await a.connect(b.addrs[0])
        assert b.peers() == []


async def test_plaintext_when_both_sides_ask_for_it() -> None:
    plain = pw.Config(security=(PLAINTEXT,), allow_plaintext=True)
    async with node_pair(config_a=plain, config_b=plain) as (a, b):
        conn = a.connection(b.peer_id)
        assert conn is not None
        assert conn.security_protocol == PLAINTEXT
        assert await a.ping(b.peer_id) > 0


def test_plaintext_needs_explicit_opt_in() -> None:
    with pytest.raises(pw.UsageError):
        pw.Config(security=(PLAINTEXT,))


async def test_max_connections_refuses_inbound() -> None:
    limited = pw.Config(max_connections=1)
    async with running_nodes(3, configs=[limited, None, None]) as (hub, b, c):
        await b.connect(hub.addrs[0])
        with pytest.raises((pw.ConnectionLost, pw.ProtocolError)):
            await c.connect(hub.addrs[0])
        assert hub.peers() == [b.peer_id]
        with pytest.raises(pw.LimitExceeded) as info:
            await hub.connect(c.addrs[0])
        assert info.value.limit_name == "max_connections"


async def test_stream_reset_reaches_the_other_side() -> None:
    got: asyncio.Queue[pw.Stream] = asyncio.Queue(maxsize=1)

    async def hold(stream: pw.Stream) -> None:
        await got.put(stream)
        await asyncio.sleep(30)

    async with node_pair() as (a, b):
        b.set_stream_handler("/hold/1.0.0", hold)
        s = await a.open_stream(b.peer_id, "/hold/1.0.0")
        await s.write(b"hi")
        remote = await asyncio.wait_for(got.get(), 5)
        assert await remote.readexactly(2) == b"hi"
        await s.reset()
        with pytest.raises(pw.StreamReset):
            async with asyncio.timeout(5):
                await remote.read(10)


async def test_connection_loss_fails_open_streams() -> None:
    got: asyncio.Queue[pw.Stream] = asyncio.Queue(maxsize=1)

    async def hold(stream: pw.Stream) -> None:
        await got.put(stream)
        await asyncio.sleep(30)

    async with node_pair("tcp") as (a, b):
        b.set_stream_handler("/hold/1.0.0", hold)
        s = await a.open_stream(b.peer_id, "/hold/1.0.0")
        await s.write(b"hi")
        await asyncio.wait_for(got.get(), 5)
        conn = b.connection(a.peer_id)
        assert conn is not None
        conn.raw.abort()
        with pytest.raises(pw.ConnectionLost):
            async with asyncio.timeout(5):
                await s.read(10)


async def test_stop_is_graceful_and_idempotent() -> None:
    a = make_node()
    await a.start()
    await a.stop()
    await a.stop()
    assert not a.host.is_running


async def test_unknown_overlay_is_a_clear_error() -> None:
    with pytest.raises(pw.UsageError):
        pw.Node(overlay="pastry")
