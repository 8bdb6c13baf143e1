"""Broadcast under message loss and crashed nodes, on the simulator's virtual clock.

60 real nodes (plaintext inside the simulator, ``fast_crypto``), an ideal ring
whose lists still name the crashed nodes (as a ring does until stabilisation
repairs it), 5 % of broadcast frames dropped at every receiver, 10 % of the
nodes crashed silently (dials to them time out). Push must still reach every
live node; pull, which re-fetches from other announcers, too. Tree has no
redundancy with one copy; with three copies it must do better than with one.
"""

from __future__ import annotations

import asyncio

from peerwire import Message
from peerwire.protocols.broadcast import BCAST_PROTOCOL
from peerwire.sim import LinkSpec, MessageFaults, Simulation, run_virtual

from ..relay.ring import IdealRing

PROTO = "/t/sim-bcast/1.0.0"
NODES = 60


async def coverage(seed: int, runs: list[tuple[str, int]]) -> dict[tuple[str, int], float]:
    sim = Simulation(
        seed=seed, link=LinkSpec(latency=0.01, jitter=0.005), fast_crypto=True, overlay=None
    )
    faults = MessageFaults(drop=0.05, protocols=frozenset({BCAST_PROTOCOL}))
    nodes = [sim.add_node(faults=faults) for _ in range(NODES)]
    for sim_node in nodes:
        await sim.start(sim_node)
    members = [n.peer_id for n in nodes]
    got: dict[bytes, set[int]] = {}
    for sim_node in nodes:
        node = sim_node.node
        for other in nodes:
            if other is not sim_node:
                node.peerstore.add_addrs(other.peer_id, [other.addr])
        node.overlay = IdealRing(sim_node.peer_id, members)

        def handler(msg: Message, i: int = sim_node.index) -> None:
            got.setdefault(msg.data, set()).add(i)

        node.add_handler(PROTO, handler)
    rng = sim.rng("churn")
    for victim in rng.sample(nodes[1:], NODES // 10):
        await sim.crash(victim)
    live = {n.index for n in sim.live()}
    origin = nodes[0].node
    result: dict[tuple[str, int], float] = {}
    for mode, copies in runs:
        tag = f"{mode}/{copies}".encode()
        await origin.broadcast(PROTO, tag, mode=mode, copies=copies)  # type: ignore[arg-type]
        await asyncio.sleep(60)  # virtual seconds: dial timeouts, pull re-fetches
        reached = got.get(tag, set()) & live
        result[(mode, copies)] = len(reached) / (len(live) - 1)
    await sim.stop_all()
    return result


def test_push_and_pull_reach_every_live_node_under_loss_and_churn() -> None:
    runs = [("push", 1), ("pull", 1), ("tree", 1), ("tree", 3)]
    result = run_virtual(coverage(seed=7, runs=runs), seed=7)
    assert result[("push", 1)] == 1.0
    assert result[("pull", 1)] == 1.0
    assert result[("tree", 3)] >= result[("tree", 1)]
    assert result[("tree", 3)] >= 0.9


def test_same_seed_same_coverage() -> None:
    runs = [("tree", 1)]
    first = run_virtual(coverage(seed=11, runs=runs), seed=11)
    again = run_virtual(coverage(seed=11, runs=runs), seed=11)
    assert first == again
