"""Relay over the real overlays: Chord (a joined ring of 16, an ideal ring of 100), Kademlia."""

from __future__ import annotations

import math
import random

import pytest

import peerwire as pw
from peerwire.overlay.base import key_for, xor_distance
from peerwire.transport.memory import MemoryNetwork, MemoryTransport

from .chord_net import ideal_chord, joined_chord
from .ring import identities, owner_of
from .test_relay import PROTO, collect, wait_for


async def check_routes(nodes: list[pw.Node], keys: int, seed: int) -> None:
    rnd = random.Random(seed)
    got = collect(nodes)
    sent = [(rnd.randbytes(32), rnd.choice(nodes)) for _ in range(keys)]
    for key, src in sent:
        await src.route(key, PROTO, key)
    await wait_for(lambda: len(got) == keys)
    for key, src in sent:
        node, msg = got[key]
        assert node is owner_of(nodes, key)  # Chord's owner: the successor of the key
        assert msg.sender == src.peer_id
        assert msg.hops <= math.log2(len(nodes))
    key, src = sent[0]
    assert await src.route_request(key, PROTO, b"q", timeout=10) == b"re:q"


async def test_relay_over_a_joined_chord_ring() -> None:
    async with joined_chord(16, seed=1) as nodes:
        await check_routes(nodes, 40, seed=1)


@pytest.mark.parametrize("count", [100])
async def test_relay_over_an_ideal_chord_ring(count: int) -> None:
    async with ideal_chord(count, seed=2) as nodes:
        await check_routes(nodes, 60, seed=2)


async def test_relay_over_kademlia_reaches_the_closest_node() -> None:
    net = MemoryNetwork()
    nodes: list[pw.Node] = []
    try:
        for i, ident in enumerate(identities(20, seed=9)):
            node = pw.Node(
                ident,
                [f"/memory/kad-relay-{i}"],
                overlay="kademlia",
                bootstrap=[nodes[0].addrs[0]] if nodes else [],
                transports=[MemoryTransport(net)],
            )
            await node.start()
            nodes.append(node)
        got = collect(nodes)
        rnd = random.Random(9)
        keys = [rnd.randbytes(32) for _ in range(20)]
        for key in keys:
            await nodes[3].route(key, PROTO, key)
        await wait_for(lambda: len(got) == len(keys))
        for key in keys:
            closest = min(nodes, key=lambda n: xor_distance(key_for(n.peer_id), key))
            assert got[key][0] is closest
        assert await nodes[4].route_request(keys[0], PROTO, b"k", timeout=10) == b"re:k"
    finally:
        for node in nodes:
            await node.stop()
