"""``node.route`` / ``node.route_request`` over real in-process nodes on an ideal ring."""

from __future__ import annotations

import asyncio
import math
import random
import time

import pytest

import peerwire as pw
from peerwire.overlay.base import key_for
from peerwire.protocols.relay import RELAY_PROTOCOL, RelayConfig, codec
from peerwire.protocols.relay.service import Unroutable
from peerwire.testing import running_nodes

from .ring import IdealRing, owner_of, ring_network

PROTO = "/t/relay/1.0.0"


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    """Poll ``predicate()`` until true (bounded by ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)


def collect(nodes: list[pw.Node]) -> dict[bytes, tuple[pw.Node, pw.Message]]:
    """Handlers on every node recording ``data -> (node, msg)``; requests echo."""
    got: dict[bytes, tuple[pw.Node, pw.Message]] = {}
    for node in nodes:

        def handler(msg: pw.Message, node: pw.Node = node) -> bytes:
            got[msg.data] = (node, msg)
            return b"re:" + msg.data

        node.add_handler(PROTO, handler)
    return got


@pytest.mark.parametrize("count", [16, 100])
async def test_route_reaches_owner_within_log2_hops(count: int) -> None:
    rnd = random.Random(count)
    async with ring_network(count) as nodes:
        got = collect(nodes)
        keys = [rnd.randbytes(32) for _ in range(60)]
        sources = [rnd.choice(nodes) for _ in keys]
        for key, src in zip(keys, sources, strict=True):
            await src.route(key, PROTO, key)
        await wait_for(lambda: len(got) == len(keys))
        for key, src in zip(keys, sources, strict=True):
            node, msg = got[key]
            assert node is owner_of(nodes, key)
            assert msg.kind == "relay"
            assert msg.sender == src.peer_id
            assert msg.author == src.peer_id  # signed by the source
            assert msg.signature
            assert msg.protocol == PROTO
            assert msg.hops <= math.log2(count)
            assert (msg.hops == 0) == (node is src)
        delivered = sum(n.relay_stats().delivered for n in nodes)
        assert delivered == len(keys)
        histogram: dict[int, int] = {}
        for n in nodes:
            for hops, c in n.relay_stats().hops.items():
                histogram[hops] = histogram.get(hops, 0) + c
        assert sum(histogram.values()) == len(keys)
        assert max(histogram) <= math.log2(count)
        assert sum(n.relay_stats().dropped_unroutable for n in nodes) == 0


async def test_route_to_peer_id_key_and_local_delivery() -> None:
    async with ring_network(8) as nodes:
        got = collect(nodes)
        target = nodes[5]
        # A PeerId key maps to sha256(peer id): its owner is the peer itself.
        await nodes[0].route(target.peer_id, PROTO, b"to-5")
        await wait_for(lambda: b"to-5" in got)
        assert got[b"to-5"][0] is target
        # Routing to a key we own ourselves delivers locally, with hops 0.
        await target.route(key_for(target.peer_id), PROTO, b"self")
        assert got[b"self"][0] is target
        assert got[b"self"][1].hops == 0


async def test_route_request_reply_routed_back() -> None:
    async with ring_network(32) as nodes:
        collect(nodes)
        rnd = random.Random(7)
        for _ in range(20):
            src = rnd.choice(nodes)
            key = rnd.randbytes(32)
            reply = await src.route_request(key, PROTO, key, timeout=10)
            assert reply == b"re:" + key
        answered = sum(n.relay_stats().replies_sent for n in nodes)
        assert answered == 20
        assert sum(n.relay_stats().replies_received for n in nodes) == 20


async def test_reply_routed_when_no_direct_connection() -> None:
    async with ring_network(32) as nodes:
        collect(nodes)
        src = nodes[0]
        # Pick a key whose owner needs at least two hops, so the owner has no
        # connection to the source and must route the reply back.
        rnd = random.Random(3)
        for _ in range(200):
            key = rnd.randbytes(32)
            owner = owner_of(nodes, key)
            ring, back = src.overlay, owner.overlay
            assert isinstance(ring, IdealRing)
            assert isinstance(back, IdealRing)
            if (
                owner is not src
                and owner.peer_id not in ring.neighbours()
                and src.peer_id not in back.neighbours()
            ):
                break
        else:
            pytest.fail("no far key found")
        assert owner.connection(src.peer_id) is None
        reply = await src.route_request(key, PROTO, b"far", timeout=10)
        assert reply == b"re:far"
        # The reply crossed at least one intermediate node.
        assert owner.connection(src.peer_id) is None
        forwarded = sum(n.relay_stats().forwarded for n in nodes if n not in (src, owner))
        assert forwarded >= 2


async def test_ttl_exceeded_reports_error_to_origin() -> None:
    tight = pw.Config(relay=RelayConfig(ttl=1))
    async with ring_network(32, config=tight) as nodes:
        collect(nodes)
        src = nodes[0]
        ring = src.overlay
        assert isinstance(ring, IdealRing)
        rnd = random.Random(5)
        for _ in range(500):
            key = rnd.randbytes(32)
            if owner_of(nodes, key).peer_id not in ring.neighbours():
                break
        with pytest.raises(pw.RemoteError) as info:
            await src.route_request(key, PROTO, b"x", timeout=10)
        assert info.value.code == codec.ERR_TTL
        assert sum(n.relay_stats().dropped_ttl for n in nodes) == 1
        assert sum(n.relay_stats().delivered for n in nodes) == 0


async def test_no_handler_and_handler_error() -> None:
    async with ring_network(8) as nodes:
        key = key_for(nodes[3].peer_id)
        with pytest.raises(pw.ProtocolNotSupported):
            await nodes[0].route_request(key, "/nobody/1.0.0", b"x", timeout=10)

        @nodes[3].on("/boom/1.0.0")
        async def boom(msg: pw.Message) -> bytes:
            raise ValueError("kaput")

        with pytest.raises(pw.RemoteError) as info:
            await nodes[0].route_request(key, "/boom/1.0.0", b"x", timeout=10)
        assert info.value.code == codec.ERR_HANDLER
        assert "kaput" in info.value.remote_message


async def test_inbox_and_node_reply() -> None:
    async with ring_network(8) as nodes:
        owner = nodes[6]
        box = owner.inbox(PROTO)

        async def serve() -> None:
            async for msg in box:
                assert msg.kind == "relay"
                await owner.reply(msg, msg.data[::-1])

        task = asyncio.ensure_future(serve())
        try:
            reply = await nodes[1].route_request(owner.peer_id, PROTO, b"abc", timeout=10)
            assert reply == b"cba"
        finally:
            task.cancel()


async def test_retries_around_a_crashed_next_hop() -> None:
    async with ring_network(32) as nodes:
        got = collect(nodes)
        src = nodes[0]
        ring = src.overlay
        assert isinstance(ring, IdealRing)
        rnd = random.Random(11)
        by_peer = {n.peer_id: n for n in nodes}
        for _ in range(500):
            key = rnd.randbytes(32)
            hops = ring.next_hops(key)
            owner = owner_of(nodes, key)
            if len(hops) >= 2 and by_peer[hops[0]] is not owner:
                break
        else:
            pytest.fail("no key with two candidate next hops")
        dead = by_peer[hops[0]]
        await dead.stop()
        await src.route(key, PROTO, b"around")
        await wait_for(lambda: b"around" in got)
        assert got[b"around"][0] is owner
        assert src.relay_stats().retries >= 1


async def test_unroutable_raises_at_origin() -> None:
    async with ring_network(4) as nodes:
        src = nodes[0]
        for other in nodes[1:]:
            await other.stop()
        ring = src.overlay
        assert ring is not None
        rnd = random.Random(1)
        target = next(
            k for k in (rnd.randbytes(32) for _ in range(100)) if not ring.is_responsible(k)
        )
        with pytest.raises(Unroutable):
            await src.route(target, PROTO, b"x")
        assert src.relay_stats().dropped_unroutable == 1


async def test_route_needs_an_overlay() -> None:
    async with running_nodes(1) as (node,):
        with pytest.raises(pw.UsageError):
            await node.route(bytes(32), PROTO, b"x")


async def test_forged_and_malformed_frames_are_dropped() -> None:
    async with ring_network(8) as nodes:
        got = collect(nodes)
        src, owner = nodes[0], nodes[4]
        frame = codec.RelayFrame(
            kind=codec.DATA,
            hops=0,
            ttl=8,
            id=1,
            reply_to=0,
            timestamp_ms=int(time.time() * 1000),
            dest=key_for(owner.peer_id),
            src=nodes[2].peer_id.to_bytes(),  # claims to come from node 2
            to=b"",
            protocol=PROTO,
            key=b"",
            signature=src.identity.sign(b"not the frame"),
            payload=b"forged",
        )
        await src.send(owner.peer_id, RELAY_PROTOCOL, codec.encode(frame))
        await src.send(owner.peer_id, RELAY_PROTOCOL, b"\x01garbage")
        await wait_for(lambda: owner.relay_stats().dropped_invalid == 2)
        assert b"forged" not in got
        # A genuine frame replayed is refused the second time.
        frame.src = src.peer_id.to_bytes()
        frame.payload = b"once"
        frame.signature = src.identity.sign(codec.signed_bytes(frame))
        await src.send(owner.peer_id, RELAY_PROTOCOL, codec.encode(frame))
        await src.send(owner.peer_id, RELAY_PROTOCOL, codec.encode(frame))
        await wait_for(lambda: owner.relay_stats().dropped_invalid == 3)
        assert got[b"once"][0] is owner
        assert owner.relay_stats().delivered == 1
