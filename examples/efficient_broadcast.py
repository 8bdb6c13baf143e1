"""Efficient broadcast: push vs pull vs tree on one Chord ring, side by side.

Run it with ``python examples/efficient_broadcast.py``. In one process, over
the in-memory transport, 32 nodes join a Chord ring; then one node broadcasts
a 4 KiB message in each mode and the table shows what it cost the network:

* ``push`` floods the whole message to every neighbour; every node gets it
  once, but many copies cross the network and are dropped as duplicates;
* ``pull`` announces only the 16-byte id; each node fetches the body once,
  so bodies cross the network exactly N-1 times;
* ``tree`` sends the message down a spanning tree of the Chord fingers
  (limit-interval scheme): exactly N-1 frames, no duplicate at all;
* ``tree x2`` uses two trees with different split points, for robustness.

A validator shows the Spacemesh rule "relay only what validated": every node
refuses messages that start with ``SPAM``, so they are neither delivered nor
passed on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import peerwire as pw
from peerwire.transport.memory import MemoryNetwork, MemoryTransport

NODES = 32
NEWS = "/example/news/1.0.0"
FIELDS = ("delivered", "frames_sent", "duplicates", "bytes_sent", "bodies_sent")


def totals(nodes: list[pw.Node]) -> dict[str, int]:
    stats = [n.broadcast_stats() for n in nodes]
    return {f: sum(getattr(s, f) for s in stats) for f in (*FIELDS, "frames_received", "rejected")}


async def quiet(nodes: list[pw.Node]) -> None:
    """Wait (bounded) until every frame sent has been received."""
    for _ in range(500):
        t = totals(nodes)
        if t["frames_sent"] == t["frames_received"]:
            await asyncio.sleep(0.05)
            if totals(nodes) == t:
                return
        await asyncio.sleep(0.01)


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    net = MemoryNetwork()
    nodes = [
        pw.Node(
            pw.Identity.from_seed(hashlib.sha256(b"bcast-example-%d" % i).digest()),
            [f"/memory/bcast-{i}"],
            overlay="chord",
            bootstrap=[] if i == 0 else ["/memory/bcast-0"],
            transports=[MemoryTransport(net)],
        )
        for i in range(NODES)
    ]
    await nodes[0].start()
    await asyncio.gather(*(n.start() for n in nodes[1:]))
    for _ in range(4):
        await asyncio.gather(*(n.overlay.maintain() for n in nodes if n.overlay))
    received: dict[bytes, int] = {}
    for node in nodes:
        node.add_handler(
            NEWS, lambda msg: received.__setitem__(msg.data, received.get(msg.data, 0) + 1)
        )
        node.set_broadcast_validator(NEWS, lambda msg: not msg.data.startswith(b"SPAM"))
    print(f"{NODES} nodes on a Chord ring; one 4 KiB broadcast per mode")
    print(f"{'mode':<8} {'delivered':>9} {'frames':>7} {'dups':>6} {'bodies':>7} {'KiB sent':>9}")
    origin = nodes[0]
    for label, mode, copies in (
        ("push", "push", 1),
        ("pull", "pull", 1),
        ("tree", "tree", 1),
        ("tree x2", "tree", 2),
    ):
        before = totals(nodes)
        payload = label.encode().ljust(4096, b".")
        await origin.broadcast(NEWS, payload, mode=mode, copies=copies)  # type: ignore[arg-type]
        await quiet(nodes)
        after = totals(nodes)
        d = {f: after[f] - before[f] for f in FIELDS}
        print(
            f"{label:<8} {d['delivered']:>9} {d['frames_sent']:>7} {d['duplicates']:>6} "
            f"{d['bodies_sent']:>7} {d['bytes_sent'] / 1024:>9.1f}"
        )
        assert received[payload] == NODES - 1
    before = totals(nodes)
    await origin.broadcast(NEWS, b"SPAM spam spam", mode="push")
    await quiet(nodes)
    after = totals(nodes)
    print(
        f"a SPAM broadcast: delivered {received.get(b'SPAM spam spam', 0)} times, "
        f"refused by {after['rejected'] - before['rejected']} validators, "
        f"relayed {after['frames_sent'] - before['frames_sent']} times (only by its author)"
    )
    for node in nodes:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
