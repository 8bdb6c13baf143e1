"""The overlay half of ``peerwire demo``: a Chord ring, one relay hop by hop,
and push vs pull vs tree broadcast side by side (nnet's efficient-broadcast example).
"""

from __future__ import annotations

import asyncio
import hashlib
import math

from rich.console import Console
from rich.table import Table

from ..host.middleware import Hook
from ..identity.identity import Identity
from ..node import Node
from ..overlay.base import key_for
from ..protocols.messaging import Message
from ..protocols.relay import RELAY_PROTOCOL, codec

DEMO_PROTOCOL = "/demo/1.0.0"
BROADCAST_FIELDS = ("frames_sent", "bytes_sent", "bodies_sent", "delivered", "duplicates")


async def _form_ring(count: int) -> tuple[list[Node], dict[object, str]]:
    nodes: list[Node] = []
    for i in range(count):
        seed = hashlib.sha256(b"peerwire-demo-%d" % i).digest()
        boot = [str(nodes[0].addrs[0])] if nodes else []
        node = Node(
            Identity.from_seed(seed), ["/ip4/127.0.0.1/tcp/0"], overlay="chord", bootstrap=boot
        )
        await node.start()  # node 0 first, so the others can bootstrap from it
        nodes.append(node)
    for _ in range(4):  # stabilisation also runs by itself every ~2 s; hurry it along
        await asyncio.gather(*(n.overlay.maintain() for n in nodes if n.overlay is not None))
    return nodes, {n.peer_id: f"n{i:02d}" for i, n in enumerate(nodes)}


def _ring_table(nodes: list[Node], names: dict[object, str]) -> Table:
    table = Table(title=f"Chord ring of {len(nodes)} nodes (first 4, in ring order)")
    for col in ("node", "key", "successors", "predecessor", "distinct fingers"):
        table.add_column(col, no_wrap=True)
    ordered = sorted(nodes, key=lambda n: key_for(n.peer_id))
    for node in ordered[:4]:
        chord = node.overlay
        assert chord is not None
        succ = [names.get(p, "?") for p in chord.successors()[:3]]  # type: ignore[attr-defined]
        pred = chord.predecessors()[:1]  # type: ignore[attr-defined]
        fingers = chord.distinct_fingers()  # type: ignore[attr-defined]
        table.add_row(
            names[node.peer_id],
            key_for(node.peer_id).hex()[:10] + "…",
            " ".join(succ),
            names.get(pred[0], "?") if pred else "-",
            " ".join(names.get(p, "?") for _, p in fingers),
        )
    return table


async def _relay_table(nodes: list[Node], names: dict[object, str]) -> Table:
    path: list[str] = []
    delivered: asyncio.Queue[tuple[str, Message]] = asyncio.Queue()
    for node in nodes:
        here = names[node.peer_id]

        def watch(msg: Message, here: str = here) -> Message:
            if msg.protocol == RELAY_PROTOCOL:
                path.append(f"{here} (hop {codec.decode(msg.data).hops + 1})")
            return msg

        def got(msg: Message, here: str = here) -> None:
            delivered.put_nowait((here, msg))

        node.use(Hook.MESSAGE_RECEIVED, watch)
        node.add_handler(DEMO_PROTOCOL, got)
    # Not n00: everyone bootstrapped through it, so it knows (almost) every node.
    source = nodes[len(nodes) // 2]
    src = names[source.peer_id]
    bound = math.log2(len(nodes))
    table = Table(title=f"Relay from {src} (at most log2({len(nodes)}) = {bound:.0f} hops)")
    for col in ("key", "path", "owner", "hops"):
        table.add_column(col, no_wrap=True)
    for word in ("apple", "banana", "cherry", "damson", "elderberry"):
        key = hashlib.sha256(word.encode()).digest()
        path.clear()
        await source.route(key, DEMO_PROTOCOL, word.encode())
        owner, msg = await asyncio.wait_for(delivered.get(), 10)
        table.add_row(f"{word} {key.hex()[:8]}…", " → ".join([src, *path]), owner, str(msg.hops))
    return table


async def _broadcast_table(nodes: list[Node]) -> Table:
    received = 0
    done = asyncio.Event()
    expected = len(nodes) - 1

    def count(msg: Message) -> None:
        nonlocal received
        received += 1
        if received >= expected:
            done.set()

    for node in nodes:
        node.remove_handler(DEMO_PROTOCOL)
        node.add_handler(DEMO_PROTOCOL, count)
    table = Table(title=f"One 1 KiB broadcast to {expected} nodes: total over the network")
    table.add_column("mode")
    for field in BROADCAST_FIELDS:
        table.add_column(field.replace("_", " "), justify="right")
    for mode in ("push", "pull", "tree"):
        before = [n.broadcast_stats() for n in nodes]
        received = 0
        done.clear()
        await nodes[0].broadcast(DEMO_PROTOCOL, b"x" * 1024, mode=mode)
        await asyncio.wait_for(done.wait(), 15)
        await asyncio.sleep(0.3)  # let duplicate copies (push) finish arriving
        after = [n.broadcast_stats() for n in nodes]
        totals = [
            sum(getattr(a, f) - getattr(b, f) for a, b in zip(after, before, strict=True))
            for f in BROADCAST_FIELDS
        ]
        table.add_row(mode, *(f"{t:,}" for t in totals))
    return table


async def run_overlay_demo(count: int, console: Console) -> None:
    nodes, names = await _form_ring(count)
    try:
        console.print(_ring_table(nodes, names))
        console.print(await _relay_table(nodes, names))
        console.print(await _broadcast_table(nodes))
    finally:
        await asyncio.gather(*(n.stop() for n in nodes))
