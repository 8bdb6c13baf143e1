"""The scenario runner: the Spacemesh p2p test matrix over any overlay, on virtual time.

One :class:`Scenario` is one row of the matrix: ``nodes`` nodes of which
``boot`` are boot nodes, an overlay (a driver from :mod:`.drivers`) with its
bucket parameters, one fault, and the flows:

1. **bootstrap**: boot nodes start one after another (each bootstrapping from
   the ones before); every other node starts at a random time within
   ``join_window`` seconds, bootstrapping from all boot nodes. A node has
   bootstrapped if the driver says it joined (Kademlia: its routing table is
   not empty).
2. **faults**, after ``settle`` seconds: ``disconnect`` crashes that fraction
   of the non-boot nodes (``disconnect_mode``); ``drop`` / ``delay`` make every
   node drop or delay that fraction of the requests and messages it receives
   (from the start: they also hit the bootstrap).
3. **find**: ``lookups`` lookups, each from a random live node for a random
   live node it does not know (not in its routing table, not connected), one
   started every ``interval`` seconds.
4. **send**: ``sends`` direct messages, each from a random live node to a
   random live node it does not know: lookup, dial, deliver (``node.send``);
   a send succeeds when the target's handler got the message.
5. **route**: ``routes`` relayed messages (``node.route``) to random keys or
   node ids, checked against the owner computed from the live nodes;
6. **broadcast**: ``broadcasts`` messages per mode of ``broadcast_modes``,
   with their coverage of the live nodes. Both in :mod:`.overlay_flows`,
   for overlays whose driver supports them.

Metrics (:class:`ScenarioResult`): bootstrap success among live nodes,
lookup success, FIND_NODE rounds and messages per lookup, lookup time in
simulated seconds, send success and time, messages handled per node, wall
time, peak memory per node. Everything except wall time and memory is a
function of the scenario alone: the same scenario (seed included) gives the
same numbers (:meth:`ScenarioResult.metrics`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import multiprocessing
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import Config
from ..errors import PeerwireError, UsageError
from ..protocols.messaging.message import Message
from ._huge_pages import allocator_label
from ._memory import MemoryProbe
from .clock import run_virtual
from .drivers import OverlayDriver, OverlayParams, get_driver
from .faults import MessageFaults
from .network import LinkSpec, SimNetwork
from .overlay_flows import (
    BROADCAST_MODES,
    BroadcastOutcome,
    FlowRecorder,
    RelayOutcome,
    RouteTarget,
    run_broadcasts,
    run_routes,
)
from .world import CrashMode, SimNode, Simulation

__all__ = [
    "DEFAULT_LINK",
    "SEND_PROTOCOL",
    "Scenario",
    "ScenarioResult",
    "matrix",
    "run_scenario",
    "simulate",
]

log = logging.getLogger("peerwire.sim")

SEND_PROTOCOL = "/peerwire/sim/1.0.0"
"""Protocol of the send flow's messages."""
DEFAULT_LINK = LinkSpec(latency=0.05, jitter=0.01)
"""50 ms one way plus up to 10 ms jitter: a wide-area link."""

MemoryMode = Literal["rss", "tracemalloc", "off"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One row of the matrix. All times in simulated seconds."""

    nodes: int = 100
    boot: int = 5
    overlay: str = "kademlia"
    bucket_size: int | None = None
    bucket_count: int | None = None
    lookups: int = 100
    sends: int = 0
    disconnect: float = 0.0
    """Fraction of non-boot nodes crashed after ``settle``."""
    disconnect_mode: CrashMode = "silent"
    drop: float = 0.0
    """Fraction of received requests/messages every node drops."""
    delay: float = 0.0
    """Fraction of received requests every node answers ``delay_by`` late."""
    delay_by: float = 2.0
    link: LinkSpec = DEFAULT_LINK
    join_window: float | None = None
    """Non-boot nodes start within this many seconds; None: ``nodes / 50`` (50 joins/s)."""
    settle: float = 5.0
    """Seconds between the last join and the faults/flows."""
    interval: float = 0.05
    """Seconds between the starts of two lookups (or two sends)."""
    send_timeout: float = 60.0
    max_connections: int | None = None
    """Every node's ``Config.max_connections``; None: ``max(512, nodes + 16)``, so
    that boot nodes (which every joining node dials) never refuse anyone. Lower
    it to study what the limit does to bootstrap."""
    idle_timeout: float | None = None
    """Every node's ``Config.idle_timeout`` (close connections without streams after
    this long); None: the library default. Lower it to bound the connections (and
    memory) of large networks, as a connection manager would."""
    routes: int = 0
    """Relayed messages (``node.route``) in the route flow; overlays with relay only."""
    route_to: RouteTarget = "mixed"
    """Route to random ``"keys"``, to random live ``"nodes"``' ids, or alternate (``"mixed"``)."""
    broadcasts: int = 0
    """Broadcasts per mode in the broadcast flow."""
    broadcast_modes: tuple[str, ...] = BROADCAST_MODES
    """Modes the broadcast flow runs, in order (ones the overlay lacks are skipped)."""
    tree_copies: int = 1
    """``copies=`` of tree broadcasts (K spanning trees)."""
    flow_timeout: float = 30.0
    """Seconds a routed message or a broadcast is waited for."""
    seed: int = 1
    fast_crypto: bool = False
    memory: MemoryMode = "rss"
    shards: int = 1
    """Processes one simulation is spread over (:mod:`peerwire.sim.shard`): up to one
    per core. Deterministic for a given count; jitter and loss draw from one
    generator per shard, so the figures differ from a single-process run's."""

    def __post_init__(self) -> None:
        if self.nodes < 2 or not 1 <= self.boot <= self.nodes:
            raise UsageError("need nodes >= 2 and 1 <= boot <= nodes")
        for name in ("disconnect", "drop", "delay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"{name} must be a fraction in [0, 1]")
        if min(self.lookups, self.sends, self.routes, self.broadcasts) < 0:
            raise UsageError("lookups, sends, routes and broadcasts must be >= 0")
        unknown = set(self.broadcast_modes) - set(BROADCAST_MODES)
        if unknown:
            raise UsageError(
                f"unknown broadcast modes {sorted(unknown)}; known: {', '.join(BROADCAST_MODES)}"
            )
        if self.route_to not in ("keys", "nodes", "mixed"):
            raise UsageError("route_to must be 'keys', 'nodes' or 'mixed'")
        if self.tree_copies < 1 or self.flow_timeout <= 0:
            raise UsageError("tree_copies must be >= 1 and flow_timeout > 0")
        if self.shards < 1:
            raise UsageError("shards must be >= 1")
        if self.shards > 1:
            if self.routes or self.broadcasts:
                raise UsageError("the route and broadcast flows run in one process only (shards=1)")
            if self.link.latency <= 0:
                raise UsageError(
                    "shards > 1 needs a link latency > 0: it is how far each shard "
                    "may run ahead of the others"
                )
            if self.shards > self.nodes:
                raise UsageError("shards may not exceed nodes")

    @property
    def connection_limit(self) -> int:
        """The ``max_connections`` every node runs with."""
        return self.max_connections or max(512, self.nodes + 16)

    @property
    def fault_label(self) -> str:
        parts = []
        if self.disconnect:
            parts.append(f"{self.disconnect:.0%} disconnect")
        if self.drop:
            parts.append(f"{self.drop:.0%} drop")
        if self.delay:
            parts.append(f"{self.delay:.0%} delay {self.delay_by:g}s")
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["link"] = dataclasses.asdict(self.link)
        return out


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass(slots=True)
class ScenarioResult:
    """What one scenario measured. ``metrics()`` is the deterministic part."""

    scenario: Scenario
    crypto: str
    live_nodes: int = 0
    bootstrapped: int = 0
    """Live nodes (at the end) whose join succeeded."""
    crashed: int = 0
    bootstrap_times: list[float] = field(default_factory=list)
    lookups_run: int = 0
    lookups_ok: int = 0
    lookups_skipped: int = 0
    """Lookups not run because no node had a live node it did not know."""
    lookup_rounds: list[int] = field(default_factory=list)
    lookup_messages: list[int] = field(default_factory=list)
    lookup_times: list[float] = field(default_factory=list)
    """Simulated seconds per successful lookup."""
    sends_attempted: int = 0
    sends_skipped: int = 0
    sends_ok: int = 0
    send_times: list[float] = field(default_factory=list)
    messages_per_node: float = 0.0
    """Requests + direct messages handled per node (mean over every node that ran)."""
    packets_per_node: float = 0.0
    sim_time: float = 0.0
    wall_time: float = 0.0
    cpu_time: float = 0.0
    """CPU seconds the process spent, summed over the processes of a sharded run
    (on a shared machine, wall time also counts the time other processes had
    the CPU)."""
    memory_per_node: int | None = None
    """Peak bytes per simulated node (``memory`` mode of the scenario), None if off."""
    relay: RelayOutcome = field(default_factory=RelayOutcome)
    """The route flow (empty when it did not run)."""
    broadcast: dict[str, BroadcastOutcome] = field(default_factory=dict)
    """The broadcast flow, per mode that ran."""
    phases: dict[str, float] = field(default_factory=dict)
    """Wall seconds per phase."""

    @property
    def bootstrap_pct(self) -> float:
        return 100.0 * self.bootstrapped / self.live_nodes if self.live_nodes else 0.0

    @property
    def lookup_pct(self) -> float | None:
        n = self.lookups_run
        return 100.0 * self.lookups_ok / n if n else None

    @property
    def send_pct(self) -> float | None:
        n = self.sends_attempted
        return 100.0 * self.sends_ok / n if n else None

    def metrics(self) -> dict[str, Any]:
        """Every simulated (deterministic) figure: equal for equal scenarios."""
        return {
            "crypto": self.crypto,
            "live_nodes": self.live_nodes,
            "bootstrapped": self.bootstrapped,
            "crashed": self.crashed,
            "bootstrap_times": self.bootstrap_times,
            "lookups_run": self.lookups_run,
            "lookups_ok": self.lookups_ok,
            "lookups_skipped": self.lookups_skipped,
            "lookup_rounds": self.lookup_rounds,
            "lookup_messages": self.lookup_messages,
            "lookup_times": self.lookup_times,
            "sends_attempted": self.sends_attempted,
            "sends_skipped": self.sends_skipped,
            "sends_ok": self.sends_ok,
            "send_times": self.send_times,
            "messages_per_node": self.messages_per_node,
            "packets_per_node": self.packets_per_node,
            "sim_time": self.sim_time,
            "relay": self.relay.to_dict(),
            "broadcast": {mode: out.to_dict() for mode, out in self.broadcast.items()},
        }

    def summary(self) -> dict[str, Any]:
        """The headline figures (what the table and ``--json`` show)."""
        rounds = [float(r) for r in self.lookup_rounds]
        msgs = [float(m) for m in self.lookup_messages]
        flows: dict[str, Any] = self.relay.summary()
        for out in self.broadcast.values():
            flows.update(out.summary())
        return {
            "nodes": self.scenario.nodes,
            "boot": self.scenario.boot,
            "overlay": self.scenario.overlay,
            "bucket_size": self.scenario.bucket_size,
            "bucket_count": self.scenario.bucket_count,
            "faults": self.scenario.fault_label,
            "crypto": self.crypto,
            "allocator": allocator_label(),
            "seed": self.scenario.seed,
            "shards": self.scenario.shards,
            "live_nodes": self.live_nodes,
            "bootstrap_pct": self.bootstrap_pct,
            "bootstrap_time_median": _quantile(self.bootstrap_times, 0.5),
            "lookups": self.lookups_run,
            "lookups_skipped": self.lookups_skipped,
            "lookup_pct": self.lookup_pct,
            "rounds_median": _quantile(rounds, 0.5),
            "rounds_p95": _quantile(rounds, 0.95),
            "rounds_max": max(rounds) if rounds else None,
            "messages_per_lookup_median": _quantile(msgs, 0.5),
            "lookup_time_median": _quantile(self.lookup_times, 0.5),
            "lookup_time_p95": _quantile(self.lookup_times, 0.95),
            "sends": self.sends_attempted,
            "sends_skipped": self.sends_skipped,
            "send_pct": self.send_pct,
            "send_time_median": _quantile(self.send_times, 0.5),
            **flows,
            "messages_per_node": self.messages_per_node,
            "packets_per_node": self.packets_per_node,
            "sim_time": self.sim_time,
            "wall_time": self.wall_time,
            "cpu_time": self.cpu_time,
            "memory_per_node": self.memory_per_node,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.to_dict(),
            "summary": self.summary(),
            "metrics": self.metrics(),
            "phases": self.phases,
        }


class _Run:
    """The state of one scenario run (see :func:`run_scenario`)."""

    def __init__(self, scenario: Scenario, driver: OverlayDriver) -> None:
        self.sc = scenario
        self.driver = driver
        limit = scenario.connection_limit
        config = Config(max_connections=limit, max_pending_handshakes=max(64, limit // 8))
        if scenario.idle_timeout is not None:
            config = dataclasses.replace(config, idle_timeout=scenario.idle_timeout)
        base = driver.configure(
            config,
            OverlayParams(
                bucket_size=scenario.bucket_size,
                bucket_count=scenario.bucket_count,
                seed=scenario.seed,
            ),
        )
        self.sim = self._simulation(base)
        self.rng = self.sim.rng("scenario")
        self.result = ScenarioResult(scenario, self.sim.crypto)
        self.joined: dict[SimNode, bool] = {}
        self.received: dict[int, float] = {}
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self.loop = asyncio.get_running_loop()
        self.flows = FlowRecorder(self.loop)
        self.wall = time.perf_counter()

    def _simulation(self, config: Config) -> Simulation:
        sc = self.sc
        return Simulation(
            seed=sc.seed,
            link=sc.link,
            fast_crypto=sc.fast_crypto,
            overlay=self.driver.overlay,
            config=config,
            network=self._network(),
        )

    def _network(self) -> Callable[..., SimNetwork]:
        """What builds the simulation's network (a sharded run's is different)."""
        return SimNetwork

    def _join_rng(self, node: SimNode) -> random.Random:
        """The generator an overlay driver's ``join`` draws from for ``node``."""
        return self.rng

    def _phase(self, name: str) -> None:
        now = time.perf_counter()
        self.result.phases[name] = round(now - self.wall, 3)
        self.wall = now

    # ------------------------------------------------------------ building
    def build(self) -> None:
        sc = self.sc
        faults = None
        if sc.drop or sc.delay:
            faults = MessageFaults(drop=sc.drop, delay=sc.delay, delay_by=sc.delay_by)
        boots: list[SimNode] = []
        for i in range(sc.nodes):
            node = self.sim.add_node(bootstrap=boots, faults=faults)
            node.node.add_handler(SEND_PROTOCOL, self._on_message)
            self.flows.install(node)
            if i < sc.boot:
                boots = [*boots, node]

    def _on_message(self, msg: Message) -> None:
        index = int.from_bytes(msg.data[:4], "big")
        self.received.setdefault(index, self.loop.time())
        waiter = self.waiters.get(index)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _start(self, node: SimNode, at: float) -> None:
        delay = at - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = self.loop.time()
        try:
            await self.sim.start(node)
            ok = await self.driver.join(self.sim, node, self._join_rng(node))
        except PeerwireError as exc:
            log.info("%s failed to start: %s", node.host, exc)
            ok = False
        self.joined[node] = ok
        if ok:
            self.result.bootstrap_times.append(round(self.loop.time() - t0, 9))

    async def bootstrap(self) -> None:
        sc = self.sc
        nodes = self.sim.nodes
        for node in nodes[: sc.boot]:
            await self._start(node, self.loop.time())
        window = sc.join_window if sc.join_window is not None else sc.nodes / 50
        t0 = self.loop.time()
        times = sorted(t0 + self.rng.random() * window for _ in nodes[sc.boot :])
        await asyncio.gather(
            *(self._start(node, at) for node, at in zip(nodes[sc.boot :], times, strict=True))
        )
        await asyncio.sleep(sc.settle)
        # The first boot node has nobody to join through: it founded the network,
        # and counts as joined once others found it.
        first = nodes[0]
        if first.alive and not self.joined.get(first):
            self.joined[first] = self.driver.routing_size(first) > 0

    async def disconnect(self) -> None:
        sc = self.sc
        candidates = [n for n in self.sim.live() if n.index >= sc.boot]
        count = round(sc.disconnect * (sc.nodes - sc.boot))
        victims = self.rng.sample(candidates, min(count, len(candidates)))
        await asyncio.gather(*(self.sim.crash(n, mode=sc.disconnect_mode) for n in victims))
        self.result.crashed = len(victims)
        if victims:
            await asyncio.sleep(1.0)

    # --------------------------------------------------------------- flows
    def _pair(self) -> tuple[SimNode, SimNode] | None:
        """A random joined source and a random joined target it does not know.

        Up to 8 sources are tried; for each, 32 random draws, then every other
        node in random order. None if no source has an unknown target (small
        networks, where every node knows every other): the flow is skipped.
        """
        live = [n for n in self.sim.live() if self.joined.get(n)]
        if len(live) < 2:
            return None
        rng = self.rng
        for _ in range(8):
            source = live[rng.randrange(len(live))]
            target = self._target(source, live, rng)
            if target is not None:
                return source, target
        return None

    def _target(self, source: SimNode, live: list[SimNode], rng: random.Random) -> SimNode | None:
        """A node of ``live`` that ``source`` does not know: 32 random draws, then
        every other node in random order; None if it knows them all."""
        knows = self.driver.knows
        for _ in range(32):
            target = live[rng.randrange(len(live))]
            if target is not source and not knows(source, target):
                return target
        others = [n for n in live if n is not source]
        rng.shuffle(others)
        for target in others:
            if not knows(source, target):
                return target
        return None

    def _flow_pair(self, kind: str, i: int) -> tuple[bool, tuple[SimNode, SimNode] | None]:
        """Whether flow ``kind`` ``i`` runs in this process, and its (source, target)
        (None: skipped). One process runs every flow; a sharded run overrides this."""
        return True, self._pair()

    async def _flow_at(self, kind: str, i: int, at: float) -> tuple[SimNode, SimNode] | None:
        """Wait until ``at``; then flow ``kind`` ``i``'s (source, target) if it runs in
        this process, else None. A skipped flow (no pair) is counted by the process
        it belongs to, so a sharded run counts it once."""
        await asyncio.sleep(max(0.0, at - self.loop.time()))
        here, pair = self._flow_pair(kind, i)
        if here and pair is None:
            if kind == "lookup":
                self.result.lookups_skipped += 1
            else:
                self.result.sends_skipped += 1
        return pair

    async def _one_lookup(self, i: int, at: float) -> None:
        pair = await self._flow_at("lookup", i, at)
        if pair is not None:
            await self._lookup(*pair)

    async def _lookup(self, source: SimNode, target: SimNode) -> None:
        t0 = self.loop.time()
        outcome = await self.driver.lookup(source, target)
        res = self.result
        res.lookups_run += 1
        # An overlay that cannot say (a Chord lookup that failed before any answer)
        # adds nothing, rather than a 0 that would read as "found at once".
        if outcome.rounds is not None:
            res.lookup_rounds.append(outcome.rounds)
        if outcome.messages is not None:
            res.lookup_messages.append(outcome.messages)
        if outcome.found:
            res.lookups_ok += 1
            res.lookup_times.append(round(self.loop.time() - t0, 9))

    async def find(self) -> None:
        sc = self.sc
        if not sc.lookups or not self.driver.supports_lookup:
            return
        t0 = self.loop.time()
        await asyncio.gather(
            *(self._one_lookup(i, t0 + i * sc.interval) for i in range(sc.lookups))
        )

    async def _one_send(self, i: int, at: float) -> None:
        pair = await self._flow_at("send", i, at)
        if pair is not None:
            await self._send(i, *pair)

    async def _send(self, i: int, source: SimNode, target: SimNode) -> None:
        self.result.sends_attempted += 1
        self.driver.prepare_send(source, target)
        t0 = self.loop.time()
        waiter = self.waiters[i] = self.loop.create_future()
        try:
            async with asyncio.timeout(self.sc.send_timeout):
                await source.node.send(target.peer_id, SEND_PROTOCOL, i.to_bytes(4, "big"))
                await waiter
        except (PeerwireError, TimeoutError) as exc:
            log.info("send %d %s -> %s failed: %s", i, source.host, target.host, exc)
            return
        finally:
            del self.waiters[i]
        self.result.sends_ok += 1
        self.result.send_times.append(round(self.received[i] - t0, 9))

    async def send(self) -> None:
        sc = self.sc
        if not sc.sends:
            return
        t0 = self.loop.time()
        await asyncio.gather(*(self._one_send(i, t0 + i * sc.interval) for i in range(sc.sends)))

    def _members(self) -> list[SimNode]:
        return [n for n in self.sim.live() if self.joined.get(n)]

    async def route(self) -> None:
        sc = self.sc
        self.result.relay = await run_routes(
            self.sim,
            self.driver,
            self.flows,
            self._members(),
            count=sc.routes,
            interval=sc.interval,
            timeout=sc.flow_timeout,
            target=sc.route_to,
        )

    async def broadcast(self) -> None:
        sc = self.sc
        self.result.broadcast = await run_broadcasts(
            self.sim,
            self.driver,
            self.flows,
            self._members(),
            modes=sc.broadcast_modes,
            count=sc.broadcasts,
            interval=sc.interval,
            timeout=sc.flow_timeout,
            copies=sc.tree_copies,
        )

    # ------------------------------------------------------------ metrics
    def collect(self) -> None:
        res = self.result
        ran = [n for n in self.sim.nodes if n.started_at is not None]
        live = self.sim.live()
        res.live_nodes = len(live)
        res.bootstrapped = sum(1 for n in live if self.joined.get(n))
        if ran:
            res.messages_per_node = round(sum(n.counters.total for n in ran) / len(ran), 3)
            stats = self.sim.network.stats
            packets = sum(stats[n.host].packets_received for n in ran)
            res.packets_per_node = round(packets / len(ran), 3)
        res.sim_time = round(self.loop.time(), 9)

    async def stop(self) -> None:
        await self.sim.stop_all()


async def run_scenario(
    scenario: Scenario, *, driver: OverlayDriver | None = None
) -> ScenarioResult:
    """Run one scenario on the running loop (a :class:`VirtualClockLoop`, normally)."""
    started = time.perf_counter()
    cpu = time.process_time()
    probe = MemoryProbe(scenario.memory)
    run = _Run(scenario, driver or get_driver(scenario.overlay))
    try:
        result = await run_scenario_phases(run, probe)
    finally:
        probe.close()
    result.wall_time = round(time.perf_counter() - started, 3)
    result.cpu_time = round(time.process_time() - cpu, 3)
    return result


async def run_scenario_phases(run: _Run, probe: MemoryProbe) -> ScenarioResult:
    """Build, run every phase of, measure and stop ``run`` (the body of :func:`run_scenario`)."""
    scenario = run.sc
    peerwire_log = logging.getLogger("peerwire")
    level = peerwire_log.level
    if not peerwire_log.isEnabledFor(logging.INFO):
        peerwire_log.setLevel(logging.CRITICAL)  # thousands of expected failures otherwise
    try:
        run.build()
        await run.bootstrap()
        run._phase("bootstrap")
        probe.sample()
        await run.disconnect()
        await run.find()
        run._phase("find")
        await run.send()
        run._phase("send")
        await run.route()
        run._phase("route")
        await run.broadcast()
        run._phase("broadcast")
        probe.sample()
        run.collect()
        result = run.result
        result.memory_per_node = probe.per_node(scenario.nodes)
        await run.stop()
        run._phase("stop")
    finally:
        peerwire_log.setLevel(level)
    return result


def simulate(
    scenario: Scenario, *, driver: OverlayDriver | None = None, reclaim: bool = True
) -> ScenarioResult:
    """Run one scenario on a fresh virtual-clock loop (synchronous entry point).

    The cyclic garbage collector is off while the scenario runs and collects
    once at the end. A simulation holds millions of long-lived objects that
    every full collection rescans, and makes almost no cyclic garbage: at 400
    nodes, collecting as usual (thresholds 50,000/20/100) cost 11 s of 69 s CPU
    and left the same peak memory per node (1.16 MB) as collecting only at the
    end. Reference counting still frees everything else at once.

    ``reclaim=False`` skips that final collection, for a process that ends
    right after (see :func:`_exit_without_collecting`).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        if scenario.shards > 1:
            from .sharded import simulate_sharded

            return simulate_sharded(scenario, driver=driver)
        return run_virtual(run_scenario(scenario, driver=driver), seed=scenario.seed)
    finally:
        if enabled:
            gc.enable()
        if reclaim:
            gc.collect()


def _exit_without_collecting() -> None:
    """Let the process end without a garbage collection over the last simulation.

    A stopped simulation is tens of millions of objects in reference cycles,
    and the interpreter runs a full collection as it shuts down: 4 minutes
    after the 10,000-node run, for memory the operating system reclaims
    anyway. Freezing moves every object out of the collector's reach.
    """
    gc.freeze()


def _simulate_then_exit(scenario: Scenario) -> ScenarioResult:
    """One scenario in a worker process that ends right after it."""
    result = simulate(scenario, reclaim=False)
    _exit_without_collecting()
    return result


def simulate_all(
    scenarios: Sequence[Scenario], *, jobs: int = 1, then_exit: bool = False
) -> Iterator[ScenarioResult]:
    """Run ``scenarios`` and yield their results in order, ``jobs`` at a time.

    One simulation is one event loop on one core; a matrix is many independent
    ones, so with ``jobs`` > 1 each runs in a fresh worker process of its own
    (spawned, so it starts from a clean interpreter rather than a copy of ours,
    and one scenario's freed memory cannot hide the next one's growth). Seeds
    make the results the same whatever ``jobs`` is; only wall and CPU times
    and memory per node differ.
    A script that calls this with ``jobs`` > 1 needs the usual
    ``if __name__ == "__main__":`` guard: spawned workers import it.

    ``then_exit``: the calling process ends once the last result is used (the
    CLI), so the last simulation's objects are not collected, here or at exit.
    """
    if jobs < 1:
        raise UsageError("jobs must be >= 1")
    if jobs == 1 or len(scenarios) <= 1:
        for i, scenario in enumerate(scenarios, start=1):
            last = then_exit and i == len(scenarios)
            result = simulate(scenario, reclaim=not last)
            if last:
                _exit_without_collecting()
            yield result
        return
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(scenarios)),
        mp_context=multiprocessing.get_context("spawn"),
        max_tasks_per_child=1,
    )
    try:
        yield from pool.map(_simulate_then_exit, scenarios)
    finally:
        # On an error or an interrupt, do not start the scenarios still queued.
        pool.shutdown(wait=True, cancel_futures=True)


FaultKind = Literal["none", "disconnect", "drop", "delay"]
FAULT_KINDS: tuple[FaultKind, ...] = ("none", "disconnect", "drop", "delay")


def matrix(
    base: Scenario,
    *,
    nodes: Sequence[int] = (10, 100, 1000),
    boots: Sequence[int] = (3, 5, 10),
    faults: Sequence[FaultKind] = FAULT_KINDS,
    rate: float = 0.1,
) -> Iterator[Scenario]:
    """The Spacemesh matrix: every nodes x boot x fault combination, ``rate`` for the fault."""
    for n in nodes:
        for b in boots:
            if b > n:
                continue
            for kind in faults:
                changes: dict[str, Any] = {
                    "nodes": n,
                    "boot": b,
                    "disconnect": 0.0,
                    "drop": 0.0,
                    "delay": 0.0,
                }
                if kind != "none":
                    changes[kind] = rate
                yield dataclasses.replace(base, **changes)
