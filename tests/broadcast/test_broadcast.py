"""``node.broadcast`` over real in-process nodes (memory transport, Noise, yamux)."""

from __future__ import annotations

import asyncio
import time

import pytest

import peerwire as pw
from peerwire.protocols.broadcast import BCAST_PROTOCOL, codec
from peerwire.testing import node_pair, running_nodes

from ..relay.ring import IdealRing, ring_network

PROTO = "/t/bcast/1.0.0"


async def wait_for(predicate: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def settle(nodes: list[pw.Node], timeout: float = 20.0, injected: int = 0) -> None:
    """Wait until every frame sent (plus ``injected`` ones sent by hand) was received
    or counted as dropped, then a bit more."""

    def balanced() -> bool:
        stats = [n.broadcast_stats() for n in nodes]
        sent = sum(s.frames_sent for s in stats) + injected
        return sent == sum(s.frames_received + s.dropped_congestion for s in stats)

    await wait_for(balanced, timeout)
    await asyncio.sleep(0.05)
    await wait_for(balanced, timeout)


def record(nodes: list[pw.Node]) -> dict[pw.PeerId, list[pw.Message]]:
    got: dict[pw.PeerId, list[pw.Message]] = {n.peer_id: [] for n in nodes}
    for node in nodes:

        def handler(msg: pw.Message, inbox: list[pw.Message] = got[node.peer_id]) -> None:
            inbox.append(msg)

        node.add_handler(PROTO, handler)
    return got


def total(nodes: list[pw.Node], name: str) -> int:
    return sum(getattr(n.broadcast_stats(), name) for n in nodes)


@pytest.mark.parametrize("count", [16, 100])
async def test_tree_delivers_exactly_n_minus_1(count: int) -> None:
    async with ring_network(count) as nodes:
        got = record(nodes)
        origin = nodes[1]
        await origin.broadcast(PROTO, b"tree!", mode="tree")
        await wait_for(lambda: total(nodes, "delivered") >= count - 1)
        await settle(nodes)
        assert total(nodes, "delivered") == count - 1
        assert total(nodes, "frames_received") == count - 1
        assert total(nodes, "duplicates") == 0
        assert got[origin.peer_id] == []
        for node in nodes:
            if node is origin:
                continue
            (msg,) = got[node.peer_id]
            assert msg.kind == "broadcast"
            assert msg.data == b"tree!"
            assert msg.sender == origin.peer_id
            assert msg.author == origin.peer_id
            assert msg.signature
            assert 1 <= msg.hops <= 8


async def test_all_modes_exactly_once_on_100_nodes() -> None:
    """Push, pull and tree on one 100-node network (its ~900 connections are made once)."""
    count = 100
    async with ring_network(count, seed=100) as nodes:
        got = record(nodes)
        for n, mode in enumerate(("push", "pull", "tree")):
            before = {name: total(nodes, name) for name in ("delivered", "bodies_received")}
            await nodes[n].broadcast(PROTO, mode.encode(), mode=mode)  # type: ignore[arg-type]
            base = before["delivered"]
            await wait_for(lambda base=base: total(nodes, "delivered") - base >= count - 1)
            await settle(nodes)
            assert total(nodes, "delivered") - before["delivered"] == count - 1
            if mode == "pull":
                assert total(nodes, "bodies_received") - before["bodies_received"] == count - 1
            for node in nodes:
                copies = [m for m in got[node.peer_id] if m.data == mode.encode()]
                assert len(copies) == (0 if node is nodes[n] else 1)


async def test_push_reaches_everyone_once() -> None:
    count = 16
    async with ring_network(count) as nodes:
        got = record(nodes)
        await nodes[0].broadcast(PROTO, b"push!", mode="push")
        await wait_for(lambda: total(nodes, "delivered") >= count - 1)
        await settle(nodes)
        assert total(nodes, "delivered") == count - 1
        assert all(len(got[n.peer_id]) == 1 for n in nodes[1:])
        assert total(nodes, "duplicates") == total(nodes, "frames_received") - (count - 1)
        assert total(nodes, "duplicates") > 0
        assert total(nodes, "bytes_received") == total(nodes, "bytes_sent")


async def test_pull_transfers_each_body_exactly_once() -> None:
    count = 16
    async with ring_network(count) as nodes:
        got = record(nodes)
        await nodes[0].broadcast(PROTO, b"p" * 5000, mode="pull")
        await wait_for(lambda: total(nodes, "delivered") >= count - 1)
        await settle(nodes)
        assert total(nodes, "delivered") == count - 1
        assert total(nodes, "bodies_received") == count - 1
        assert total(nodes, "bodies_sent") == count - 1
        assert total(nodes, "fetch_retries") == 0
        assert all(len(got[n.peer_id]) == 1 for n in nodes[1:])
        assert all(got[n.peer_id][0].data == b"p" * 5000 for n in nodes[1:])


async def test_tree_copies() -> None:
    async with ring_network(32) as nodes:
        got = record(nodes)
        await nodes[0].broadcast(PROTO, b"x", mode="tree", copies=3)
        await wait_for(lambda: total(nodes, "frames_received") >= 3 * 31)
        await settle(nodes)
        assert total(nodes, "delivered") == 31
        assert total(nodes, "frames_received") == 3 * 31
        assert all(len(got[n.peer_id]) == 1 for n in nodes[1:])


async def test_validator_refuses_and_stops_relaying() -> None:
    async with ring_network(16) as nodes:
        got = record(nodes)
        origin = nodes[0]
        ring = origin.overlay
        assert isinstance(ring, IdealRing)
        refuser_id = ring.tree_children(None)[-1][0]  # heads the biggest subtree
        refuser = next(n for n in nodes if n.peer_id == refuser_id)
        seen: list[pw.Message] = []

        def validate(msg: pw.Message) -> bool:
            seen.append(msg)
            return b"bad" not in msg.data

        refuser.set_broadcast_validator(PROTO, validate)
        await origin.broadcast(PROTO, b"bad news", mode="tree")
        await settle(nodes)
        assert seen
        assert seen[0].data == b"bad news"
        assert got[refuser_id] == []
        assert refuser.broadcast_stats().rejected == 1
        assert refuser.broadcast_stats().frames_sent == 0  # not relayed
        assert total(nodes, "delivered") < 15  # its subtree got nothing
        # A message the validator accepts flows as usual; async validators work too.

        async def async_ok(msg: pw.Message) -> bool:
            await asyncio.sleep(0)
            return True

        refuser.set_broadcast_validator(PROTO, async_ok)
        await origin.broadcast(PROTO, b"good news", mode="tree")
        await wait_for(
            lambda: all(any(m.data == b"good news" for m in got[n.peer_id]) for n in nodes[1:])
        )

        # A validator that raises refuses (fail closed).
        def broken(msg: pw.Message) -> bool:
            raise RuntimeError("validator bug")

        refuser.set_broadcast_validator(PROTO, broken)
        await origin.broadcast(PROTO, b"boom", mode="tree")
        await settle(nodes)
        assert not any(m.data == b"boom" for m in got[refuser_id])
        assert refuser.broadcast_stats().rejected == 2


async def test_forged_post_neither_delivered_nor_relayed() -> None:
    async with ring_network(8) as nodes:
        got = record(nodes)
        a, b = nodes[0], nodes[1]
        author = nodes[5].identity
        post = codec.encode_post(
            int(time.time() * 1000), 1, author.peer_id.to_bytes(), b"", PROTO, b"real", author.sign
        )
        forged = post.raw[:-4] + b"fake"  # payload swapped, signature kept
        await a.send(b.peer_id, BCAST_PROTOCOL, codec.encode_push(0, 8, forged))
        await wait_for(lambda: b.broadcast_stats().invalid == 1)
        await settle(nodes, injected=1)
        assert got[b.peer_id] == []
        assert b.broadcast_stats().frames_sent == 0
        # The genuine post, sent after the forgery, still goes everywhere (the forgery
        # was not remembered as seen).
        await a.send(b.peer_id, BCAST_PROTOCOL, codec.encode_push(0, 8, post.raw))
        await wait_for(lambda: total(nodes, "delivered") >= 7)
        assert all(m.author == author.peer_id for n in nodes for m in got[n.peer_id])


async def test_push_without_overlay_uses_connected_peers() -> None:
    async with node_pair() as (a, b):
        got = record([a, b])
        await a.broadcast(PROTO, b"hi")
        await wait_for(lambda: len(got[b.peer_id]) == 1)
        assert got[b.peer_id][0].hops == 1
        with pytest.raises(pw.UsageError):
            await a.broadcast(PROTO, b"hi", mode="tree")
        with pytest.raises(pw.UsageError):
            await a.broadcast(PROTO, b"hi", mode="flood")  # type: ignore[arg-type]
        with pytest.raises(pw.UsageError):
            await a.broadcast(PROTO, b"hi", mode="push", copies=2)


async def test_lone_node_broadcast_goes_nowhere() -> None:
    async with running_nodes(1) as (node,):
        msg_id = await node.broadcast(PROTO, b"echo?")
        assert len(msg_id) == 16
        assert node.broadcast_stats().originated == 1
        assert node.broadcast_stats().frames_sent == 0


async def test_broadcast_into_an_inbox_with_overflow() -> None:
    async with ring_network(4) as nodes:
        box = nodes[2].inbox(PROTO, maxsize=2)
        for i in range(5):  # more than the inbox holds: the rest waits in the overflow
            await nodes[0].broadcast(PROTO, b"m%d" % i, mode="push")
        received = []
        async with asyncio.timeout(10):
            while len(received) < 5:
                msg = await box.get()
                assert msg.kind == "broadcast"
                received.append(msg.data)
        assert sorted(received) == [b"m%d" % i for i in range(5)]
