"""The DHT over real peerwire nodes on the in-memory transport (Noise + yamux, real time)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

import peerwire as pw
from peerwire.errors import NegotiationError, StreamReset, UsageError
from peerwire.overlay import key_for, xor_distance
from peerwire.protocols.kad import KAD_PROTOCOL, KadConfig, LookupReport, NotFound
from peerwire.protocols.kad.messages import KadMessage, KadRecord, MessageType, encode
from peerwire.protocols.kad.routing import RoutingTable, position
from peerwire.transport.memory import MemoryNetwork, MemoryTransport
from peerwire.varint import encode_length_prefixed, encode_uvarint

_names = itertools.count()


def make_node(net: MemoryNetwork, boot: list[pw.Node], *, seed: int, **kad: Any) -> pw.Node:
    config = pw.Config(kad=KadConfig(seed=seed, **kad))
    return pw.Node(
        listen=[f"/memory/kad-{next(_names)}"],
        overlay="kademlia",
        bootstrap=[b.addrs[0] for b in boot],
        config=config,
        transports=[MemoryTransport(net)],
    )


@asynccontextmanager
async def kad_network(count: int, *, boot: int = 2, **kad: Any) -> AsyncIterator[list[pw.Node]]:
    """``count`` started nodes; each bootstraps through the first ``boot`` ones."""
    net = MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes: list[pw.Node] = []
        for i in range(count):
            node = make_node(net, nodes[:boot], seed=i, **kad)
            await stack.enter_async_context(node)
            nodes.append(node)
        yield nodes


def forget(node: pw.Node, peer: pw.PeerId) -> None:
    """Make ``node`` forget everything about ``peer`` (test-only: no public API for it)."""
    node.peerstore._records.pop(peer, None)
    node.dht.table.remove(peer)


async def disconnect(node: pw.Node, peer: pw.PeerId) -> None:
    await node.disconnect(peer)
    async with asyncio.timeout(5):
        while node.connection(peer) is not None:
            await asyncio.sleep(0.01)


def true_closest(
    nodes: list[pw.Node], wire_key: bytes, count: int, exclude: pw.PeerId
) -> list[pw.PeerId]:
    """The ``count`` node ids nearest to sha256(wire_key), by brute force."""
    target = int.from_bytes(hashlib.sha256(wire_key).digest(), "big")
    ids = [n.peer_id for n in nodes if n.peer_id != exclude]
    return sorted(ids, key=lambda p: position(p) ^ target)[:count]


async def test_bootstrap_fills_tables_and_lookups_find_the_true_closest() -> None:
    async with kad_network(30, k=8) as nodes:
        for node in nodes:
            assert len(node.dht.table) >= 8
            assert node.overlay is not None
            assert node.overlay.neighbours() == node.dht.table.peers()
        # Every node is in somebody's table: findable.
        in_tables = {p for n in nodes for p in n.dht.table.peers()}
        assert in_tables == {n.peer_id for n in nodes}
        for origin, key in ((nodes[5], b"some key"), (nodes[21], b"another"), (nodes[0], b"x")):
            got = await origin.dht.get_closest_peers(key)
            assert got == true_closest(nodes, key, 8, origin.peer_id)


async def test_find_peer_of_a_node_not_in_the_table() -> None:
    async with kad_network(40, k=4) as nodes:
        origin = nodes[-1]
        candidates = [n for n in nodes[:-1] if n.peer_id not in origin.dht.table]
        assert candidates, "k=4 over 40 nodes leaves most peers out of any one table"
        target = candidates[len(candidates) // 2]
        if origin.connection(target.peer_id) is not None:
            await disconnect(origin, target.peer_id)
        reports: list[LookupReport] = []
        origin.dht.lookup_listeners.append(reports.append)
        info = await origin.dht.find_peer(target.peer_id)
        assert info.peer_id == target.peer_id
        assert target.addrs[0].without_peer_id() in info.addrs
        (report,) = reports
        assert report.kind == "find_peer"
        assert report.found
        assert report.stats.rounds >= 1
        assert report.stats.messages >= 1
        assert report.stats.duration >= 0
        # By string, too; and ourselves without a lookup.
        assert (await origin.dht.find_peer(str(target.peer_id))).peer_id == target.peer_id
        assert (await origin.dht.find_peer(origin.peer_id)).addrs


async def test_find_peer_of_an_unknown_peer_raises_not_found() -> None:
    async with kad_network(12, k=4) as nodes:
        stranger = pw.Identity.from_seed(b"\x77" * 32).peer_id
        with pytest.raises(NotFound):
            await nodes[3].dht.find_peer(stranger)


async def test_put_and_get_values() -> None:
    async with kad_network(30, k=8) as nodes:
        stored = await nodes[3].dht.put_value(b"/app/greeting", b"hello")
        assert stored == 8
        holders = [n for n in nodes if b"/app/greeting" in n.dht.records]
        assert len(holders) >= 8
        reader = next(n for n in nodes if n not in holders)
        assert await reader.dht.get_value(b"/app/greeting") == b"hello"
        # An update reaches the same k peers and wins over the old value.
        assert await nodes[9].dht.put_value(b"/app/greeting", b"hi again") == 8
        assert await reader.dht.get_value(b"/app/greeting") == b"hi again"
        with pytest.raises(NotFound):
            await reader.dht.get_value(b"/app/missing")
        # PeerId keys: their bytes are the wire key.
        await nodes[4].dht.put_value(nodes[4].peer_id, b"by peer id")
        assert await nodes[20].dht.get_value(nodes[4].peer_id.to_bytes()) == b"by peer id"


async def test_public_key_records_are_validated() -> None:
    async with kad_network(10, k=4) as nodes:
        a, b = nodes[2], nodes[6]
        key = b"/pk/" + a.peer_id.to_bytes()
        with pytest.raises(UsageError):
            await a.dht.put_value(key, b.identity.public_key.to_protobuf())
        assert await a.dht.put_value(key, a.identity.public_key.to_protobuf()) >= 1
        got = await nodes[8].dht.get_value(key)
        assert got == a.identity.public_key.to_protobuf()
        # A node answers /pk/ queries for itself even with nothing stored.
        key_b = b"/pk/" + b.peer_id.to_bytes()
        assert await nodes[1].dht.get_value(key_b, quorum=1) == b.identity.public_key.to_protobuf()


async def test_provide_and_find_providers() -> None:
    async with kad_network(30, k=8) as nodes:
        assert await nodes[7].dht.provide(b"content-id") == 8
        assert await nodes[12].dht.provide(b"content-id") == 8
        found = await nodes[25].dht.find_providers(b"content-id")
        assert {info.peer_id for info in found} == {nodes[7].peer_id, nodes[12].peer_id}
        for info in found:
            assert info.addrs
        assert await nodes[25].dht.find_providers(b"nobody-has-this") == []
        mine = await nodes[7].dht.find_providers(b"content-id", count=1)
        assert [info.peer_id for info in mine] == [nodes[7].peer_id]


async def test_send_to_an_unknown_peer_is_resolved_through_the_dht() -> None:
    async with kad_network(25, k=4) as nodes:
        sender, target = nodes[-1], nodes[10]
        got: asyncio.Queue[bytes] = asyncio.Queue()
        target.add_handler("/test/chat/1.0.0", lambda msg: got.put_nowait(msg.data))
        target.add_handler("/test/echo/1.0.0", lambda msg: b"echo:" + msg.data)
        if sender.connection(target.peer_id) is not None:
            await disconnect(sender, target.peer_id)
        forget(sender, target.peer_id)
        assert sender.peerstore.addrs(target.peer_id) == []
        await sender.send(target.peer_id, "/test/chat/1.0.0", b"found you")
        async with asyncio.timeout(10):
            assert await got.get() == b"found you"
        await disconnect(sender, target.peer_id)
        forget(sender, target.peer_id)
        reply = await sender.request(target.peer_id, "/test/echo/1.0.0", b"x", timeout=10)
        assert reply == b"echo:x"


async def test_client_mode_uses_the_dht_but_is_never_in_tables() -> None:
    async with kad_network(12, k=8) as nodes:
        net_node = nodes[0]
        transport = net_node.host.transports[0]
        assert isinstance(transport, MemoryTransport)
        client = make_node(transport.network, nodes[:2], seed=99, k=8, mode="client")
        async with client:
            assert client.dht.mode == "client"
            assert len(client.dht.table) >= 8
            info = await client.dht.find_peer(nodes[7].peer_id)
            assert info.peer_id == nodes[7].peer_id
            assert await client.dht.put_value(b"/app/from-client", b"v") == 8
            assert await nodes[4].dht.get_value(b"/app/from-client") == b"v"
            for node in nodes:
                assert client.peer_id not in node.dht.table
            # Nobody can find a client through the DHT...
            if nodes[3].connection(client.peer_id) is not None:
                await disconnect(nodes[3], client.peer_id)
            forget(nodes[3], client.peer_id)
            with pytest.raises(NotFound):
                await nodes[3].dht.find_peer(client.peer_id)
            # ...and, dialled directly, it does not speak the kad protocol.
            await nodes[3].connect(client.addrs[0])
            with pytest.raises(NegotiationError):
                await nodes[3].open_stream(client.peer_id, KAD_PROTOCOL)
            # Switching to server mode makes it serve (and identify push tells the peers).
            client.dht.set_mode("server")
            stream = await nodes[3].open_stream(client.peer_id, KAD_PROTOCOL)
            await stream.close()


async def test_greedy_next_hop_reaches_the_closest_node() -> None:
    async with kad_network(30, k=8) as nodes:
        by_id = {n.peer_id: n for n in nodes}
        for name in (b"alpha", b"beta", b"gamma"):
            key = key_for(hashlib.sha256(name).digest())
            closest = min(nodes, key=lambda n: xor_distance(key_for(n.peer_id), key))
            current = nodes[0]
            for _ in range(len(nodes)):
                assert current.overlay is not None
                hop = current.overlay.next_hop(key)
                if hop is None:
                    break
                assert xor_distance(key_for(hop), key) < xor_distance(key_for(current.peer_id), key)
                current = by_id[hop]
            assert current is closest
            assert current.overlay is not None
            assert current.overlay.is_responsible(key)
        with pytest.raises(UsageError):
            nodes[0].overlay.next_hop(b"short")  # type: ignore[union-attr]


async def expect_reset(node: pw.Node, peer: pw.PeerId, data: bytes = b"") -> None:
    """Open a kad stream, send ``data``, and expect the remote to reset it (at any point)."""

    async def attempt() -> None:
        async with asyncio.timeout(5):
            stream = await node.open_stream(peer, KAD_PROTOCOL)
            if data:
                await stream.write(data)
            await stream.read()

    with pytest.raises(StreamReset):
        await attempt()


async def test_bad_input_resets_the_stream_and_the_node_keeps_serving() -> None:
    async with kad_network(8, k=4, max_inbound_rpcs_per_peer=2, inbound_timeout=2.0) as nodes:
        server, attacker = nodes[1], nodes[5]
        # Garbage that is not a protobuf kad message.
        await expect_reset(attacker, server.peer_id, encode_uvarint(3) + b"\xff\xff\xff")
        # A length prefix beyond max_message_size.
        await expect_reset(attacker, server.peer_id, encode_uvarint(50 << 20))
        # A record that fails validation.
        bad = KadMessage(
            MessageType.PUT_VALUE,
            key=b"/pk/x",
            record=KadRecord(b"/pk/x", b"not a key"),
        )
        await expect_reset(attacker, server.peer_id, encode_length_prefixed(encode(bad)))
        assert b"/pk/x" not in server.dht.records
        # More concurrent streams than max_inbound_rpcs_per_peer.
        idle = [await attacker.open_stream(server.peer_id, KAD_PROTOCOL) for _ in range(2)]
        await asyncio.sleep(0.1)
        await expect_reset(attacker, server.peer_id)
        for s in idle:
            await s.reset()
        # Still serving everyone.
        assert (await attacker.dht.find_peer(nodes[6].peer_id)).peer_id == nodes[6].peer_id
        assert server.dht.metrics.requests_received >= 1


async def test_maintenance_republishes_and_expires() -> None:
    async with kad_network(
        10, k=4, republish_interval=0.3, record_ttl=1.0, refresh_interval=0.0
    ) as nodes:
        publisher = nodes[2]
        await publisher.dht.put_value(b"/app/republished", b"v")
        holders = [n for n in nodes if n is not publisher and b"/app/republished" in n.dht.records]
        assert holders
        loop = asyncio.get_running_loop()
        before = holders[0].dht.records.get(b"/app/republished", loop.time())
        assert before is not None
        first_received = before.received
        await asyncio.sleep(0.35)
        await publisher.dht.maintain()
        after = holders[0].dht.records.get(b"/app/republished", loop.time())
        assert after is not None
        assert after.received > first_received
        # A record nobody republishes is gone after record_ttl.
        await nodes[4].dht.put_value(b"/app/orphan", b"x")
        nodes[4].dht.records.unpublish(b"/app/orphan")
        await asyncio.sleep(1.05)
        for node in nodes:
            await node.dht.maintain()
            assert node.dht.records.get(b"/app/orphan", loop.time()) is None
            assert b"/app/orphan" not in node.dht.records  # maintain() dropped it


async def test_unreachable_peers_leave_the_routing_table() -> None:
    async with kad_network(10, k=8, max_failures=2) as nodes:
        watcher, victim = nodes[0], nodes[7]
        assert victim.peer_id in watcher.dht.table
        await victim.stop()
        for _ in range(3):
            await watcher.dht.get_closest_peers(victim.peer_id)
        assert victim.peer_id not in watcher.dht.table
        assert watcher.dht.metrics.requests_failed >= 2


async def test_dht_needs_the_kademlia_overlay() -> None:
    node = pw.Node()
    assert node.overlay is None
    with pytest.raises(UsageError):
        _ = node.dht
    with pytest.raises(UsageError):
        pw.Node(overlay="pastry")


async def test_stale_buckets_are_refreshed() -> None:
    async with kad_network(10, k=4, refresh_interval=0.5) as nodes:
        node = nodes[5]
        await node.dht.refresh()  # whatever went stale since the bootstrap
        assert await node.dht.refresh() == 0  # everything is fresh now
        await asyncio.sleep(0.55)
        before = node.dht.metrics.lookups
        # Snapshot first: the refresh lookups may learn a peer that splits a bucket, and
        # the halves inherit the (fresh) timestamp of the bucket they came from.
        stale = len(node.dht.table.buckets())
        count = await node.dht.refresh()
        assert count == stale
        assert node.dht.metrics.lookups == before + count
        loop = asyncio.get_running_loop()
        for info in node.dht.table.buckets():
            assert loop.time() - info.last_refreshed < 0.5


async def wait_for_pings(node: pw.Node, at_least: int) -> None:
    async with asyncio.timeout(10):
        while node.dht.metrics.pings < at_least or node.dht._pinging:
            await asyncio.sleep(0.01)


async def test_a_full_bucket_keeps_its_oldest_peer_while_it_answers_pings() -> None:
    async with kad_network(5, k=1, bucket_count=1, ping_after=0.0, max_failures=100) as nodes:
        watcher, old, newcomer = nodes[0], nodes[1], nodes[2]
        loop = asyncio.get_running_loop()
        # One bucket of one slot, held by ``old``.
        watcher.dht.table = RoutingTable(
            watcher.peer_id.to_bytes(), k=1, bucket_count=1, ping_after=0.0, max_failures=100
        )
        watcher.dht.table.add(old.peer_id, loop.time() - 1.0)
        # ``newcomer`` answers the bootstrap lookup and wants the slot: ``old`` is pinged,
        # answers, and stays.
        await watcher.dht.bootstrap([newcomer.peer_id])
        await wait_for_pings(watcher, 1)
        assert watcher.dht.table.peers() == [old.peer_id]
        # Once ``old`` is gone, its failed ping hands the slot to a newcomer.
        await old.stop()
        pings = watcher.dht.metrics.pings
        await watcher.dht.bootstrap([newcomer.peer_id])
        await wait_for_pings(watcher, pings + 1)
        assert old.peer_id not in watcher.dht.table
        assert len(watcher.dht.table) == 1
