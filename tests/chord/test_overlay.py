"""``ChordOverlay`` on a single node: the Node wiring, relay priority, the wire protocol.

The ring state is filled with synthetic PeerIds where a whole network is not
needed; the protocol tests talk to a real node over the memory transport.
"""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

import peerwire as pw
from peerwire.errors import UsageError
from peerwire.host.middleware import Hook
from peerwire.identity.peer_id import PeerId
from peerwire.mux.stream import Stream
from peerwire.overlay.base import key_for
from peerwire.overlay.chord import CHORD_PROTOCOL, ChordConfig, ChordOverlay
from peerwire.overlay.chord.ring import clockwise, key_to_int
from peerwire.overlay.chord.wire import Codec, Request, RequestType, Status
from peerwire.transport.memory import MemoryNetwork, MemoryTransport
from peerwire.varint import encode_length_prefixed

from .helpers import chord


def fake_peer(rng: random.Random) -> PeerId:
    """A valid sha2-256 PeerId with no key behind it (enough for ring state)."""
    return PeerId.from_bytes(bytes((0x12, 0x20)) + rng.randbytes(32))


def memory_node(net: MemoryNetwork, name: str, **kwargs: object) -> pw.Node:
    return pw.Node(
        listen=[f"/memory/{name}"],
        transports=[MemoryTransport(net)],
        **kwargs,  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------- wiring
def test_node_overlay_argument() -> None:
    node = memory_node(MemoryNetwork(), "wiring", overlay="chord")
    assert isinstance(node.overlay, ChordOverlay)
    assert node.overlay.name == "chord"
    assert memory_node(MemoryNetwork(), "none").overlay is None
    with pytest.raises(UsageError):
        memory_node(MemoryNetwork(), "bad", overlay="pastry")


async def test_alone_node_owns_every_key() -> None:
    net = MemoryNetwork()
    async with memory_node(net, "alone", overlay="chord") as node:
        ov = chord(node)
        assert ov.ready
        assert ov.neighbours() == []
        assert ov.is_responsible(bytes(32))
        assert ov.next_hop(b"\xff" * 32) is None
        assert ov.tree_children(None) == []
        assert ov.key == key_for(node.peer_id)
        assert await ov.find_successors(bytes(32)) == [node.peer_id]


async def test_two_nodes_over_noise_form_a_ring() -> None:
    net = MemoryNetwork()
    async with memory_node(net, "a", overlay="chord") as a:
        async with memory_node(net, "b", overlay="chord", bootstrap=[a.addrs[0]]) as b:
            ov_a, ov_b = chord(a), chord(b)
            assert ov_b.ready
            async with asyncio.timeout(10):
                while ov_a.successors() != [b.peer_id]:
                    await asyncio.sleep(0.01)
            assert ov_b.successors() == [a.peer_id]
            assert ov_a.predecessors() == [b.peer_id]
            assert ov_b.predecessors() == [a.peer_id]
            # Each owns its own key and (other, self].
            assert ov_a.is_responsible(a.peer_id)
            assert not ov_a.is_responsible(b.peer_id)
            assert ov_a.next_hop(b.peer_id) == b.peer_id
            assert await ov_a.find_successors(b.peer_id, 2) == [b.peer_id, a.peer_id]
            assert [p for p, _ in ov_a.tree_children(None)] == [b.peer_id]
            await ov_a.maintain()  # a manual round works alongside the periodic one


# -------------------------------------------------------- relay priority
def synthetic_overlay(count: int, seed: int) -> tuple[ChordOverlay, list[PeerId]]:
    net = MemoryNetwork()
    node = memory_node(net, f"synthetic-{seed}", overlay="chord")
    ov = chord(node)
    rng = random.Random(seed)
    peers = [fake_peer(rng) for _ in range(count)]
    ov.service.ring.offer([(key_to_int(key_for(p)), p) for p in peers])
    return ov, peers


def key_with_candidates(ov: ChordOverlay, seed: int) -> tuple[bytes, list[PeerId]]:
    """A key with at least two candidates in the highest finger interval before it."""
    ring = ov.service.ring
    rng = random.Random(seed)
    for _ in range(1000):
        key = rng.randbytes(32)
        hops = ov.next_hops(key, limit=8)
        if ring.owner_run(key_to_int(key), 1) is not None or len(hops) < 2:
            continue
        distances = [ring.distance_of(p) for p in hops]
        if any(d is None or d >= clockwise(ring.key, key_to_int(key)) for d in distances):
            continue  # a step back to the node after the key: not a greedy choice
        bits = [d.bit_length() for d in distances if d is not None]
        top = [p for p, b in zip(hops, bits, strict=True) if b == bits[0]]
        if len(top) >= 2:
            return key, top
    raise AssertionError("no suitable key")


def test_default_priority_prefers_lower_rtt() -> None:
    ov, _ = synthetic_overlay(60, seed=1)
    key, top = key_with_candidates(ov, seed=2)
    assert ov.next_hop(key) == top[0]  # all unmeasured: the closest to the key
    ov.service.rtt[top[-1]] = 0.001
    assert ov.next_hop(key) == top[-1]
    assert ov.priority(top[-1]) == pytest.approx(-1.0)
    assert ov.priority(top[0]) == pytest.approx(-ov.config.unknown_rtt * 1000)


def test_relay_priority_hook_chain(caplog: pytest.LogCaptureFixture) -> None:
    ov, _ = synthetic_overlay(60, seed=3)
    key, top = key_with_candidates(ov, seed=4)
    favourite = top[-1]
    seen: list[tuple[PeerId, float]] = []

    def broken(peer: PeerId, priority: float) -> float:
        raise RuntimeError("bug in a hook")

    def prefer(peer: PeerId, priority: float) -> float:
        seen.append((peer, priority))
        return 1e9 if peer == favourite else priority

    def stop_chain(peer: PeerId, priority: float) -> tuple[float, bool]:
        return priority, False

    mw = ov.middleware
    remove_broken = mw.use(Hook.RELAY_PRIORITY, broken, priority=10)
    remove = mw.use(Hook.RELAY_PRIORITY, prefer)
    with caplog.at_level(logging.ERROR, logger="peerwire.chord"):
        assert ov.next_hop(key) == favourite
    assert "bug in a hook" in caplog.text
    assert seen
    assert all(p < 0 for _, p in seen)  # the default it was given: -RTT in ms
    # A higher-priority function that stops the chain hides ``prefer``.
    remove_stop = mw.use(Hook.RELAY_PRIORITY, stop_chain, priority=5)
    assert ov.next_hop(key) == top[0]
    remove_stop()
    remove()
    remove_broken()
    assert ov.next_hop(key) == top[0]

    async def not_sync(peer: PeerId, priority: float) -> float:
        return priority

    with pytest.raises(UsageError):
        mw.use(Hook.RELAY_PRIORITY, not_sync)


def test_next_hops_exclude_gives_alternatives() -> None:
    ov, _ = synthetic_overlay(60, seed=5)
    key, _ = key_with_candidates(ov, seed=6)
    first = ov.next_hop(key)
    assert first is not None
    assert ov.next_hop(key, exclude={first}) not in (None, first)
    assert ov.next_hops(key, limit=3)[0] == first


def test_tree_children_accepts_bytes_limits() -> None:
    ov, _ = synthetic_overlay(30, seed=7)
    children = ov.tree_children(None)
    assert children
    assert children[-1][1] == ov.key
    assert all(len(limit) == 32 for _, limit in children)
    assert ov.tree_children(ov.key)[:-1] == children[:-1]


def test_config_validation() -> None:
    with pytest.raises(UsageError):
        ChordConfig(finger_successors=0)
    with pytest.raises(UsageError):
        ChordConfig(min_successors=10, max_successors=9)
    with pytest.raises(UsageError):
        ChordConfig(jitter=1.0)
    with pytest.raises(UsageError):
        ChordConfig(protocol="no-slash")
    assert ChordConfig().finger_successors == 3


# ---------------------------------------------------------- wire protocol
async def answer(stream: Stream) -> bytes:
    """What the server sent back: b"" if it reset or closed the stream without answering."""
    try:
        async with asyncio.timeout(10):
            return await stream.read()
    except pw.ConnectionLost:
        return b""


async def test_bad_requests_reset_the_stream_and_the_node_keeps_serving() -> None:
    net = MemoryNetwork()
    codec = Codec(64)
    async with memory_node(net, "server", overlay="chord") as server:
        async with memory_node(net, "client") as client:
            await client.connect(server.addrs[0])
            limit = chord(server).config.max_message_size
            for junk in (
                b"\xff\xff\xff",  # not a protobuf
                encode_length_prefixed(b"\x08\x63"),  # unknown request type 99
                encode_length_prefixed(b"\x08\x01\x12\x01\x00"),  # 1-byte lookup key
                encode_length_prefixed(b"\x00" * (limit + 1)),  # over max_message_size
            ):
                stream = await client.open_stream(server.peer_id, CHORD_PROTOCOL)
                await stream.write(junk)
                await stream.close_write()
                assert await answer(stream) == b""
            # Still serving: a well-formed request, fed one byte at a time, is answered.
            stream = await client.open_stream(server.peer_id, CHORD_PROTOCOL)
            request = encode_length_prefixed(codec.encode_request(Request(type=RequestType.PING)))
            for i in range(len(request)):
                await stream.write(request[i : i + 1])
            await stream.close_write()
            reply = await answer(stream)
            assert codec.decode_response(reply[1:]).status is Status.OK


# ---------------------------------------------------------------- pruning
async def test_prune_closes_only_idle_connections_the_overlay_dialled() -> None:
    net = MemoryNetwork()
    async with memory_node(net, "p-a", overlay="chord") as a:
        async with memory_node(net, "p-b", overlay="chord", bootstrap=[a.addrs[0]]) as b:
            async with memory_node(net, "p-c", overlay="chord", bootstrap=[b.addrs[0]]) as c:
                async with memory_node(net, "p-app") as app_peer:
                    svc = chord(c).service
                    # c joined through b (a bootstrap connection: the node's, not the
                    # overlay's) and dialled a itself, having learned of it from b.
                    assert set(svc.ring.neighbours()) == {a.peer_id, b.peer_id}
                    assert a.peer_id in svc._dialled
                    assert b.peer_id not in svc._dialled
                    await c.connect(app_peer.addrs[0])  # the application's own connection
                    loop = asyncio.get_running_loop()
                    for peer in (a.peer_id, b.peer_id):
                        svc._drop(peer)
                        svc._dead[peer] = loop.time() + 3600  # keep them out of the lists
                    svc._prune(loop.time() + svc.config.prune_after + 1)
                    async with asyncio.timeout(10):
                        while c.connection(a.peer_id) is not None:
                            await asyncio.sleep(0.01)
                    assert c.connection(b.peer_id) is not None  # not ours to close
                    assert c.connection(app_peer.peer_id) is not None
