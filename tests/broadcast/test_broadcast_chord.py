"""Broadcast over the real Chord overlay: a joined ring of 16, an ideal ring of 100."""

from __future__ import annotations

import peerwire as pw

from ..relay.chord_net import ideal_chord, joined_chord
from .test_broadcast import PROTO, record, settle, total, wait_for


async def run_mode(nodes: list[pw.Node], origin: pw.Node, mode: str, copies: int = 1) -> None:
    count = len(nodes)
    before = {n: total(nodes, n) for n in ("delivered", "frames_received", "bodies_received")}
    await origin.broadcast(PROTO, mode.encode(), mode=mode, copies=copies)  # type: ignore[arg-type]
    await wait_for(lambda: total(nodes, "delivered") - before["delivered"] >= count - 1)
    await settle(nodes)
    assert total(nodes, "delivered") - before["delivered"] == count - 1
    if mode == "tree":
        frames = total(nodes, "frames_received") - before["frames_received"]
        assert frames == copies * (count - 1)
    if mode == "pull":
        assert total(nodes, "bodies_received") - before["bodies_received"] == count - 1


async def test_broadcast_over_a_joined_chord_ring() -> None:
    async with joined_chord(16, seed=4) as nodes:
        record(nodes)
        for mode in ("tree", "push", "pull"):
            await run_mode(nodes, nodes[3], mode)
        await run_mode(nodes, nodes[5], "tree", copies=3)


async def test_tree_over_an_ideal_chord_ring_of_100() -> None:
    async with ideal_chord(100, seed=5) as nodes:
        record(nodes)
        await run_mode(nodes, nodes[0], "tree")
        await run_mode(nodes, nodes[7], "tree", copies=2)
