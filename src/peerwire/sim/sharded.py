"""Running one scenario over several processes (``Scenario.shards``; see :mod:`.shard`).

Every shard builds the whole world (every identity and ``Node`` object, in
the same order) but starts only its own nodes; the others it *mirrors*:
it marks them up, crashed or down at the virtual times the scenario decides,
which every shard computes alike from the seed. What only a node's own
shard can know travels through barriers: which nodes joined, and the
deliveries of sends whose target runs elsewhere. Each phase ends at a
barrier, so all shards start the next one at the same virtual time.

Flows pick their source with a generator of their own (one per flow), and
only the source's shard runs the flow: choosing a target needs the
source's routing table.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import random
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any, cast

from ..errors import UsageError
from ..protocols.messaging.message import Message
from ._memory import MemoryProbe
from .clock import VirtualClockLoop, run_virtual
from .drivers import OverlayDriver, get_driver
from .network import SimNetwork
from .scenarios import (
    Scenario,
    ScenarioResult,
    _exit_without_collecting,
    _Run,
    run_scenario_phases,
)
from .shard import ShardedNetwork, ShardFailed, ShardGone, ShardWindow, owner_of
from .world import SimNode

__all__ = ["simulate_sharded"]


class _ShardedRun(_Run):
    """A :class:`_Run` that runs only its shard's nodes and mirrors the rest."""

    def __init__(self, scenario: Scenario, driver: OverlayDriver, window: ShardWindow) -> None:
        self.window = window
        super().__init__(scenario, driver)
        window.on("delivered", self._on_remote_delivery)
        self.ran_counters = 0
        self.ran_packets = 0

    def _network(self) -> Callable[..., SimNetwork]:
        count, index = self.sc.shards, self.window.index
        remote = {
            f"n{i}": owner_of(i, count) for i in range(self.sc.nodes) if owner_of(i, count) != index
        }
        return functools.partial(ShardedNetwork, self.window, remote)

    def _join_rng(self, node: SimNode) -> random.Random:
        return self.sim.rng(f"join/{node.index}")

    def mine(self, node: SimNode) -> bool:
        return owner_of(node.index, self.sc.shards) == self.window.index

    # ------------------------------------------------------------ phases
    async def _start(self, node: SimNode, at: float) -> None:
        if self.mine(node):
            await super()._start(node, at)
            return
        delay = at - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self.sim.mirror_start(node)

    async def _share_joined(self, name: str) -> None:
        mine = {n.index: ok for n, ok in self.joined.items() if self.mine(n)}
        nodes = self.sim.nodes
        for theirs in await self.window.barrier(name, mine):
            for index, ok in theirs.items():
                self.joined[nodes[index]] = ok

    async def bootstrap(self) -> None:
        sc = self.sc
        nodes = self.sim.nodes
        for node in nodes[: sc.boot]:
            await self._start(node, self.loop.time())
            await self.window.barrier(f"boot {node.index}")
        window = sc.join_window if sc.join_window is not None else sc.nodes / 50
        t0 = self.loop.time()
        times = sorted(t0 + self.rng.random() * window for _ in nodes[sc.boot :])
        await asyncio.gather(
            *(self._start(node, at) for node, at in zip(nodes[sc.boot :], times, strict=True))
        )
        await self._share_joined("joined")
        await asyncio.sleep(sc.settle)
        first = nodes[0]
        if self.mine(first) and first.alive and not self.joined.get(first):
            self.joined[first] = self.driver.routing_size(first) > 0
        await self._share_joined("settled")

    async def disconnect(self) -> None:
        sc = self.sc
        candidates = [n for n in self.sim.live() if n.index >= sc.boot]
        count = round(sc.disconnect * (sc.nodes - sc.boot))
        victims = self.rng.sample(candidates, min(count, len(candidates)))
        for node in victims:
            if not self.mine(node):
                self.sim.mirror_crash(node, mode=sc.disconnect_mode)
        await asyncio.gather(
            *(self.sim.crash(n, mode=sc.disconnect_mode) for n in victims if self.mine(n))
        )
        self.result.crashed = len(victims)
        await self.window.barrier("crashed")
        if victims:
            await asyncio.sleep(1.0)

    def _flow_pair(self, kind: str, i: int) -> tuple[bool, tuple[SimNode, SimNode] | None]:
        """Whether flow ``kind`` ``i`` runs here, and its (source, target) (None: skipped).

        The source is drawn from a generator of the flow's own, among joined
        nodes other than the boot nodes (every node dials those, so they know
        everyone; one process retries such sources instead, which needs every
        node's routing table). Only the source's shard goes on to pick a target
        the source does not know: 32 random draws, then every other node in
        random order.
        """
        live = [n for n in self.sim.live() if self.joined.get(n)]
        if len(live) < 2:
            return self.window.index == 0, None
        rng = self.sim.rng(f"{kind}/{i}")
        sources = [n for n in live if n.index >= self.sc.boot] or live
        source = sources[rng.randrange(len(sources))]
        if not self.mine(source):
            return False, None
        target = self._target(source, live, rng)
        return True, None if target is None else (source, target)

    async def find(self) -> None:
        await super().find()
        await self.window.barrier("found")

    async def send(self) -> None:
        await super().send()
        await self.window.barrier("sent")

    def _on_message(self, msg: Message) -> None:
        index = int.from_bytes(msg.data[:4], "big")
        if index in self.waiters:
            super()._on_message(msg)
            return
        # The sender runs in another shard: tell every shard (the sender's resolves).
        at = self.loop.time()
        for shard in range(self.sc.shards):
            if shard != self.window.index:
                self.window.signal(shard, "delivered", (index, at))

    def _on_remote_delivery(self, payload: tuple[int, float]) -> None:
        index, at = payload
        self.received.setdefault(index, at)
        waiter = self.waiters.get(index)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def collect(self) -> None:
        super().collect()
        ran = [n for n in self.sim.nodes if n.started_at is not None and self.mine(n)]
        stats = self.sim.network.stats
        self.ran_counters = sum(n.counters.total for n in ran)
        self.ran_packets = sum(stats[n.host].packets_received for n in ran)

    async def stop(self) -> None:
        live = [n for n in self.sim.live() if self.mine(n)]
        for node in self.sim.live():
            node.state = "left"
        await asyncio.gather(*(n.node.stop() for n in live), return_exceptions=True)
        await self.window.barrier("stopped")
        self.window.detach()


# ------------------------------------------------------------- one shard
async def _run_shard(
    scenario: Scenario, window: ShardWindow, driver: OverlayDriver | None
) -> tuple[ScenarioResult, dict[str, Any]]:
    window.attach(cast(VirtualClockLoop, asyncio.get_running_loop()))
    cpu = time.process_time()
    probe = MemoryProbe(scenario.memory)
    run = _ShardedRun(scenario, driver or get_driver(scenario.overlay), window)
    try:
        result = await run_scenario_phases(run, probe)
    finally:
        probe.close()
        # On an error, the loop's clean-up must not wait for shards that are gone.
        window.detach()
    extras = {
        "ran": sum(1 for n in run.sim.nodes if n.started_at is not None),
        "counters": run.ran_counters,
        "packets": run.ran_packets,
        "memory": (result.memory_per_node or 0) * scenario.nodes,
        "cpu": time.process_time() - cpu,
    }
    return result, extras


def _shard(
    scenario: Scenario, index: int, links: Mapping[int, Connection], driver: OverlayDriver | None
) -> tuple[ScenarioResult, dict[str, Any]]:
    # Every shard's probe divides by all nodes; the merge sums the shards' growth.
    window = ShardWindow(index, scenario.shards, links, scenario.link.latency)
    return run_virtual(_run_shard(scenario, window, driver), seed=scenario.seed)


def _shard_process(
    scenario: Scenario, index: int, links: dict[int, Connection], out: Connection
) -> None:
    """Entry point of a worker process: run shard ``index``, send back its result."""
    import gc

    gc.disable()
    try:
        outcome: Any = ("ok", _shard(scenario, index, links, None))
    except BaseException as exc:  # reported to the coordinator, which raises it
        status = "gone" if isinstance(exc, ShardGone) else "error"
        outcome = (status, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    for link in links.values():
        link.close()
    out.send(outcome)
    out.close()
    _exit_without_collecting()


# ------------------------------------------------------------- merging
def _merge(
    scenario: Scenario, parts: list[tuple[ScenarioResult, dict[str, Any]]], wall: float
) -> ScenarioResult:
    first = parts[0][0]
    merged = ScenarioResult(scenario, first.crypto)
    merged.live_nodes = first.live_nodes
    merged.bootstrapped = first.bootstrapped
    merged.crashed = first.crashed
    merged.sim_time = max(r.sim_time for r, _ in parts)
    merged.phases = dict(first.phases)
    for result, _ in parts:
        merged.bootstrap_times += result.bootstrap_times
        merged.lookups_run += result.lookups_run
        merged.lookups_ok += result.lookups_ok
        merged.lookups_skipped += result.lookups_skipped
        merged.lookup_rounds += result.lookup_rounds
        merged.lookup_messages += result.lookup_messages
        merged.lookup_times += result.lookup_times
        merged.sends_attempted += result.sends_attempted
        merged.sends_skipped += result.sends_skipped
        merged.sends_ok += result.sends_ok
        merged.send_times += result.send_times
    ran = parts[0][1]["ran"]
    if ran:
        merged.messages_per_node = round(sum(x["counters"] for _, x in parts) / ran, 3)
        merged.packets_per_node = round(sum(x["packets"] for _, x in parts) / ran, 3)
    if scenario.memory != "off":
        total = sum(x["memory"] for _, x in parts)
        merged.memory_per_node = total // scenario.nodes if total > 0 else None
    merged.wall_time = round(wall, 3)
    merged.cpu_time = round(sum(x["cpu"] for _, x in parts), 3)
    return merged


def _root_cause(failures: list[tuple[bool, str]]) -> str:
    """The first failure that is not just "another shard is gone" (those follow it)."""
    for gone, text in failures:
        if not gone:
            return text
    return failures[0][1]


def simulate_sharded(scenario: Scenario, *, driver: OverlayDriver | None = None) -> ScenarioResult:
    """Run ``scenario`` over ``scenario.shards`` processes: shard 0 here, the rest spawned."""
    if driver is not None:
        raise UsageError("a sharded simulation runs the scenario's own overlay driver")
    started = time.perf_counter()
    count = scenario.shards
    ctx = multiprocessing.get_context("spawn")
    pipes = {(a, b): ctx.Pipe(duplex=True) for a in range(count) for b in range(a + 1, count)}

    def links_of(shard: int) -> dict[int, Connection]:
        out: dict[int, Connection] = {}
        for (a, b), (end_a, end_b) in pipes.items():
            if a == shard:
                out[b] = end_a
            elif b == shard:
                out[a] = end_b
        return out

    workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    ours = links_of(0)
    try:
        for shard in range(1, count):
            receive, send = ctx.Pipe(duplex=False)
            process = ctx.Process(
                target=_shard_process,
                args=(scenario, shard, links_of(shard), send),
                name=f"peerwire-sim-shard-{shard}",
                daemon=True,
            )
            process.start()
            send.close()
            workers.append((process, receive))
        for (a, _), (end_a, end_b) in pipes.items():
            # Keep only our own ends open, so a worker that dies shows up as EOF.
            end_b.close()
            if a != 0:
                end_a.close()
        parts = [_shard(scenario, 0, ours, driver)]
        failures: list[tuple[bool, str]] = []
        for proc, receive in workers:
            try:
                status, value = receive.recv()
            except EOFError:
                failures.append((False, f"{proc.name} died (exit code {proc.exitcode})"))
                continue
            if status == "ok":
                parts.append(value)
            else:
                failures.append((status == "gone", f"{proc.name} failed: {value}"))
        if failures:
            raise ShardFailed(_root_cause(failures))
    except ShardGone as exc:
        # Shard 0 only saw another shard vanish: report why that one stopped.
        failures = []
        for proc, receive in workers:
            if receive.poll(10):
                try:
                    status, value = receive.recv()
                except EOFError:
                    continue
                if status != "ok":
                    failures.append((status == "gone", f"{proc.name} failed: {value}"))
        if failures:
            raise ShardFailed(_root_cause(failures)) from exc
        raise
    finally:
        for link in ours.values():
            link.close()  # a worker still waiting for us sees EOF and stops
        for proc, receive in workers:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            receive.close()
    return _merge(scenario, parts, time.perf_counter() - started)
