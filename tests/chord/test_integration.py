"""The Chord overlay over real nodes (memory transport) in the simulator, on virtual time.

Every test runs a whole network of ``peerwire.Node(overlay="chord")`` objects on
:class:`~peerwire.sim.Simulation` under the virtual clock, so minutes of
stabilisation take a few wall seconds and every run replays exactly. Waits
are bounded in virtual time; assertions are about the ring, never timing.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from peerwire.host.middleware import Hook
from peerwire.identity.peer_id import PeerId
from peerwire.overlay.chord.ring import key_to_int
from peerwire.sim import LinkSpec, SimNode, Simulation, run_virtual

from .helpers import Truth, chord, wait_for

LINK = LinkSpec(latency=0.01, jitter=0.005)


async def grow(sim: Simulation, count: int, rng: random.Random) -> list[SimNode]:
    """Start ``count`` nodes one after the other, each joining through a random live node."""
    first = sim.add_node()
    await sim.start(first)
    for _ in range(count - 1):
        node = sim.add_node(bootstrap=[rng.choice(sim.live())])
        await sim.start(node)
    return sim.live()


def simulate(body: Callable[[Simulation], Awaitable[None]], *, seed: int = 1) -> None:
    async def main() -> None:
        sim = Simulation(seed=seed, overlay="chord", fast_crypto=True, link=LINK)
        try:
            await body(sim)
        finally:
            await sim.stop_all()

    run_virtual(main(), seed=seed)


def truth(sim: Simulation) -> Truth:
    return Truth([n.node for n in sim.live()])


# ------------------------------------------------------------ convergence
def test_ring_converges_routes_within_log2_n_and_tree_is_exact() -> None:
    async def body(sim: Simulation) -> None:
        await grow(sim, 24, sim.rng("boot"))
        problems = await wait_for(lambda: truth(sim).problems(fingers=True), limit=120)
        assert problems == []
        t = truth(sim)
        # Successor lists hold the true successors, in order.
        for peer, node in t.nodes.items():
            succ = chord(node).successors()
            assert succ == t.successors(peer, len(succ))
            assert len(succ) >= 8
        # Relay: every route ends at the owner, within log2(N) hops.
        rng = sim.rng("keys")
        bound = math.log2(len(t.nodes))
        for _ in range(200):
            key = rng.randbytes(32)
            end, hops = t.route(rng.choice(t.order), key)
            assert end == t.owner(key_to_int(key))
            assert chord(t.nodes[end]).is_responsible(key)
            assert hops <= bound
        # Tree broadcast over the real lists: every other node exactly once.
        origin = t.order[5]
        got: dict[PeerId, int] = {}
        pending: list[tuple[PeerId, bytes | None]] = [(origin, None)]
        while pending:
            node, limit = pending.pop()
            for child, child_limit in chord(t.nodes[node]).tree_children(limit):
                got[child] = got.get(child, 0) + 1
                pending.append((child, child_limit))
        assert sum(got.values()) == len(t.nodes) - 1
        assert set(got) == set(t.nodes) - {origin}

    simulate(body)


def test_concurrent_joins_converge() -> None:
    async def body(sim: Simulation) -> None:
        first = sim.add_node()
        await sim.start(first)
        rng = sim.rng("boot")
        for _ in range(3):  # three waves of joins at the same moment
            live = sim.live()
            wave = [sim.add_node(bootstrap=[rng.choice(live)]) for _ in range(7)]
            await asyncio.gather(*(sim.start(n) for n in wave))
        assert len(sim.live()) == 22
        assert await wait_for(lambda: truth(sim).problems(), limit=120) == []

    simulate(body, seed=2)


# ------------------------------------------------------------------ churn
def test_crashed_nodes_are_repaired_around() -> None:
    async def body(sim: Simulation) -> None:
        await grow(sim, 20, sim.rng("boot"))
        assert await wait_for(lambda: truth(sim).problems(), limit=120) == []
        order = truth(sim).order
        by_peer = {n.peer_id: n for n in sim.live()}
        # Two neighbours vanish silently (only timeouts tell), a third resets.
        await sim.crash(by_peer[order[3]], mode="silent")
        await sim.crash(by_peer[order[4]], mode="silent")
        await sim.crash(by_peer[order[12]], mode="reset")
        assert len(sim.live()) == 17
        assert await wait_for(lambda: truth(sim).problems(), limit=120) == []
        t = truth(sim)
        rng = sim.rng("keys")
        for _ in range(100):
            key = rng.randbytes(32)
            assert t.route(rng.choice(t.order), key)[0] == t.owner(key_to_int(key))

    simulate(body, seed=3)


def test_graceful_leave_and_new_join_are_integrated() -> None:
    async def body(sim: Simulation) -> None:
        await grow(sim, 16, sim.rng("boot"))
        assert await wait_for(lambda: truth(sim).problems(), limit=120) == []
        leaving = sim.live()[7]
        await sim.leave(leaving)
        newcomer = sim.add_node(bootstrap=[sim.live()[0]])
        await sim.start(newcomer)
        assert chord(newcomer.node).ready
        assert await wait_for(lambda: truth(sim).problems(), limit=60) == []
        t = truth(sim)
        me = newcomer.peer_id
        assert chord(t.nodes[t.predecessor(me)]).successors()[0] == me
        assert chord(t.nodes[t.successors(me, 1)[0]]).predecessors()[0] == me

    simulate(body, seed=4)


def test_unreachable_bootstrap_is_retried_not_a_ring_of_one() -> None:
    async def body(sim: Simulation) -> None:
        nodes = await grow(sim, 6, sim.rng("boot"))
        target = nodes[2]
        sim.network.set_down(target.host)  # a black hole while the newcomer starts
        newcomer = sim.add_node(bootstrap=[target])
        await sim.start(newcomer)
        assert not chord(newcomer.node).ready
        sim.network.set_down(target.host, False)
        assert await wait_for(lambda: truth(sim).problems(), limit=120) == []

    simulate(body, seed=5)


# ------------------------------------------------------------------ hooks
def test_overlay_hooks_fire() -> None:
    async def body(sim: Simulation) -> None:
        events: list[tuple[str, Any]] = []
        watched = sim.add_node()

        def record(name: str) -> Callable[..., None]:
            return lambda *args: events.append((name, args))

        for hook in (
            Hook.SUCCESSOR_ADDED,
            Hook.SUCCESSOR_REMOVED,
            Hook.PREDECESSOR_ADDED,
            Hook.PREDECESSOR_REMOVED,
            Hook.FINGER_ADDED,
            Hook.NEIGHBOUR_ADDED,
            Hook.NEIGHBOUR_REMOVED,
        ):
            watched.node.use(hook, record(hook.name))

        async def async_hook(peer: PeerId) -> None:
            events.append(("async", (peer,)))

        watched.node.use(Hook.NEIGHBOUR_ADDED, async_hook)
        await sim.start(watched)
        rng = sim.rng("boot")
        for _ in range(9):
            node = sim.add_node(bootstrap=[rng.choice(sim.live())])
            await sim.start(node)
        assert await wait_for(lambda: truth(sim).problems(), limit=120) == []
        ov = chord(watched.node)
        names = {name for name, _ in events}
        assert {"SUCCESSOR_ADDED", "PREDECESSOR_ADDED", "FINGER_ADDED", "NEIGHBOUR_ADDED"} <= names
        added = {args[0] for name, args in events if name == "NEIGHBOUR_ADDED"}
        assert set(ov.neighbours()) <= added
        assert {args[0] for name, args in events if name == "async"} == added
        fingers = [args for name, args in events if name == "FINGER_ADDED"]
        assert all(isinstance(i, int) and 0 <= i < 256 for _, i in fingers)
        # A successor leaves: removal hooks name it.
        gone = ov.successors()[0]
        await sim.leave(next(n for n in sim.live() if n.peer_id == gone))
        assert await wait_for(lambda: truth(sim).problems(), limit=60) == []
        removed = {args[0] for name, args in events if name == "SUCCESSOR_REMOVED"}
        assert gone in removed
        assert gone in {args[0] for name, args in events if name == "NEIGHBOUR_REMOVED"}

    simulate(body, seed=6)


def test_simulator_driver_runs_a_scenario() -> None:
    from peerwire.overlay.chord.simdriver import ChordDriver
    from peerwire.sim.scenarios import Scenario, simulate

    scenario = Scenario(
        nodes=40, boot=2, overlay="chord", fast_crypto=True, lookups=30, settle=20.0
    )
    summary = simulate(scenario, driver=ChordDriver()).summary()
    assert summary["bootstrap_pct"] == 100.0
    assert summary["lookup_pct"] == 100.0


def test_two_rings_sharing_one_connection_merge() -> None:
    # The extreme of a "loopy" ring: two complete rings that know nothing of each
    # other. The periodic self-check through a random connected peer merges them.
    async def body(sim: Simulation) -> None:
        rng = sim.rng("boot")
        rings = []
        for _ in range(2):
            first = sim.add_node()
            await sim.start(first)
            group = [first]
            for _ in range(7):
                node = sim.add_node(bootstrap=[rng.choice(group)])
                await sim.start(node)
                group.append(node)
            rings.append(group)
        for group in rings:
            nodes = [n.node for n in group]
            assert await wait_for(lambda ns=nodes: Truth(ns).problems(), limit=60) == []
        await rings[0][0].node.connect(rings[1][0].addr)
        assert await wait_for(lambda: truth(sim).problems(), limit=600, step=5.0) == []

    simulate(body, seed=8)


def test_send_to_a_member_we_have_no_address_for_finds_it_on_the_ring() -> None:
    async def body(sim: Simulation) -> None:
        nodes = await grow(sim, 64, sim.rng("boot"))

        def unready() -> list[str]:
            return [n.host for n in nodes if not chord(n.node).ready]

        assert await wait_for(unready, limit=120) == []
        t = truth(sim)
        sender = nodes[0].node
        near = set(chord(sender).neighbours())
        target = next(n for n in nodes[1:] if n.peer_id not in near)
        # Make the target a stranger: no connection, no address on record.
        await sender.host.disconnect(target.peer_id)
        record = sender.host.peerstore.get(target.peer_id)
        if record is not None:
            record.addrs.clear()
        assert sender.host.peerstore.addrs(target.peer_id) == []
        got: list[bytes] = []
        target.node.add_handler("/test/hello/1.0.0", lambda msg: got.append(msg.data))
        async with asyncio.timeout(30):
            await sender.send(target.peer_id, "/test/hello/1.0.0", b"found you")
            while not got:
                await asyncio.sleep(0.05)
        assert got == [b"found you"]
        assert t.nodes[target.peer_id] is target.node

    simulate(body)
