"""The relay and broadcast flows of a scenario (``--routes``, ``--broadcasts``).

Both run after the lookup and send flows, on the same live nodes, with the
same faults (:mod:`.faults`: relay and broadcast frames travel as
``/peerwire/msg`` messages, so ``drop`` loses them at every receiving hop like
any direct message; ``delay`` does not apply to messages, only to requests).

**route**: ``routes`` messages, one started every ``interval`` seconds, each
from a random live node (``node.route``) to a random 32-byte key or to a
random other live node's id (``route_to``). The node that *should* get it is
computed from the live members alone (the driver's :meth:`owner`: Chord's
successor of the key, Kademlia's XOR-closest node), so a message delivered by
a node whose routing state is wrong counts as misdelivered, not delivered.
Recorded: delivered (anywhere), delivered at the right owner, hops
(``Message.hops`` at the receiver), simulated time to delivery, and the
relay counters summed over every node (retries, TTL and unroutable drops).

**broadcast**: for each mode, ``broadcasts`` messages, one every ``interval``
seconds, from random live nodes. A broadcast is waited for until every other
live node delivered it or ``timeout`` passed; then the flow lingers
:data:`LINGER` seconds so copies still in flight are counted too. Recorded
per mode: coverage of each message (the fraction of the live nodes other
than the origin that delivered it), deliveries, the time to the last
delivery of each fully covered message, and the broadcast counters summed
over every node (duplicates, frames and bytes sent, pull's bodies ...).

Both flows draw from their own random streams (``rng("relay")``,
``rng("broadcast")``), so their choices do not depend on the other flows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from ..errors import PeerwireError
from ..overlay.base import key_for

if TYPE_CHECKING:
    from ..node import Node
    from ..protocols.broadcast.core import BroadcastMode
    from ..protocols.messaging.message import Message
    from .drivers import OverlayDriver
    from .world import SimNode, Simulation

__all__ = [
    "BROADCAST_MODES",
    "BROADCAST_PROTOCOL",
    "LINGER",
    "ROUTE_PROTOCOL",
    "BroadcastOutcome",
    "FlowRecorder",
    "RelayOutcome",
    "RouteTarget",
    "run_broadcasts",
    "run_routes",
]

log = logging.getLogger("peerwire.sim")

ROUTE_PROTOCOL: Final = "/peerwire/sim/route/1.0.0"
"""Protocol of the route flow's messages."""
BROADCAST_PROTOCOL: Final = "/peerwire/sim/bcast/1.0.0"
"""Protocol of the broadcast flow's messages."""
BROADCAST_MODES: Final = ("push", "pull", "tree")
LINGER: Final = 2.0
"""Seconds a broadcast flow keeps running after its last message was fully
delivered (or timed out), so that duplicates and bodies still in flight are
counted: about 30 link latencies of the default 50 ms link."""

RouteTarget = Literal["keys", "nodes", "mixed"]

_RELAY_COUNTERS: Final = (
    "originated",
    "delivered",
    "forwarded",
    "retries",
    "dropped_ttl",
    "dropped_unroutable",
    "dropped_invalid",
    "dropped_no_handler",
)


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass(slots=True)
class RelayOutcome:
    """What the route flow measured (all deterministic for a given scenario)."""

    nodes: int = 0
    """Live members when the flow ran (the N of log2 N)."""
    attempted: int = 0
    skipped: int = 0
    """Routes not run: fewer than two live members."""
    refused: int = 0
    """``node.route`` raised (no next hop took the message at the source)."""
    delivered: int = 0
    """Delivered to some node's handler (right or wrong)."""
    correct: int = 0
    """Delivered at the owner the live members say is responsible."""
    hops: list[int] = field(default_factory=list)
    """``Message.hops`` of every delivered message."""
    times: list[float] = field(default_factory=list)
    """Simulated seconds from ``node.route`` to delivery."""
    stats: dict[str, int] = field(default_factory=dict)
    """Relay counters summed over every node, during the flow."""

    @property
    def pct(self) -> float | None:
        """Delivered at the right owner, percent of attempted."""
        return 100.0 * self.correct / self.attempted if self.attempted else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "attempted": self.attempted,
            "skipped": self.skipped,
            "refused": self.refused,
            "delivered": self.delivered,
            "correct": self.correct,
            "hops": self.hops,
            "times": self.times,
            "stats": self.stats,
        }

    def summary(self) -> dict[str, Any]:
        hops = [float(h) for h in self.hops]
        return {
            "routes": self.attempted,
            "routes_skipped": self.skipped,
            "route_pct": self.pct,
            "route_delivered_pct": (
                100.0 * self.delivered / self.attempted if self.attempted else None
            ),
            "route_misdelivered": self.delivered - self.correct,
            "route_refused": self.refused,
            "route_hops_median": _quantile(hops, 0.5),
            "route_hops_p95": _quantile(hops, 0.95),
            "route_hops_max": max(self.hops) if self.hops else None,
            "route_log2_nodes": _log2(self.nodes),
            "route_time_median": _quantile(self.times, 0.5),
            "route_time_p95": _quantile(self.times, 0.95),
        }


def _log2(n: int) -> float | None:
    return round(math.log2(n), 3) if n > 0 else None


@dataclass(slots=True)
class BroadcastOutcome:
    """What the broadcast flow measured for one mode."""

    mode: str
    copies: int = 1
    receivers: int = 0
    """Live nodes other than the origin: who each message should reach (N-1)."""
    broadcasts: int = 0
    refused: int = 0
    """``node.broadcast`` raised at the origin."""
    coverage: list[float] = field(default_factory=list)
    """Per message: fraction of the live nodes other than the origin that delivered it."""
    deliveries: int = 0
    """Handler deliveries of these messages over every node (once per node and message)."""
    max_hops: list[int] = field(default_factory=list)
    """Per message: the largest ``Message.hops`` of its deliveries."""
    times: list[float] = field(default_factory=list)
    """Per fully covered message: simulated seconds to its last delivery."""
    stats: dict[str, int] = field(default_factory=dict)
    """Broadcast counters (``BroadcastStats``) summed over every node, during the flow."""

    @property
    def coverage_pct(self) -> float | None:
        """Mean coverage, percent."""
        return 100.0 * sum(self.coverage) / len(self.coverage) if self.coverage else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "copies": self.copies,
            "receivers": self.receivers,
            "broadcasts": self.broadcasts,
            "refused": self.refused,
            "coverage": self.coverage,
            "deliveries": self.deliveries,
            "max_hops": self.max_hops,
            "times": self.times,
            "stats": self.stats,
        }

    def summary(self) -> dict[str, Any]:
        p = f"broadcast_{self.mode}_"
        n = self.broadcasts
        return {
            p + "count": n,
            p + "coverage_pct": self.coverage_pct,
            p + "coverage_min_pct": 100.0 * min(self.coverage) if self.coverage else None,
            p + "full": sum(1 for c in self.coverage if c >= 1.0),
            p + "receivers": self.receivers,
            p + "deliveries_per_message": self.deliveries / n if n else None,
            p + "duplicates_per_message": self.stats.get("duplicates", 0) / n if n else None,
            p + "frames_per_message": self.stats.get("frames_sent", 0) / n if n else None,
            p + "bodies_per_message": self.stats.get("bodies_received", 0) / n if n else None,
            p + "hops_max": max(self.max_hops) if self.max_hops else None,
            p + "time_median": _quantile(self.times, 0.5),
        }


class FlowRecorder:
    """The handlers the flows install on every node, and what they saw."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.routes: dict[int, tuple[SimNode, int, float]] = {}
        """Route index -> (first receiver, hops, time)."""
        self.route_extra = 0
        """Deliveries of a route after its first (a relay should never duplicate)."""
        self._route_waiters: dict[int, asyncio.Future[None]] = {}
        self._casts: dict[bytes, _Cast] = {}

    def install(self, node: SimNode) -> None:
        """Register the flow handlers on ``node`` (before or after it starts)."""

        def on_route(msg: Message) -> None:
            self._on_route(node, msg)

        def on_broadcast(msg: Message) -> None:
            self._on_broadcast(node, msg)

        node.node.add_handler(ROUTE_PROTOCOL, on_route)
        node.node.add_handler(BROADCAST_PROTOCOL, on_broadcast)

    def _on_route(self, node: SimNode, msg: Message) -> None:
        index = int.from_bytes(msg.data[:4], "big")
        if index in self.routes:
            self.route_extra += 1
            return
        self.routes[index] = (node, msg.hops, self._loop.time())
        waiter = self._route_waiters.get(index)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_broadcast(self, node: SimNode, msg: Message) -> None:
        cast = self._casts.get(msg.data)
        if cast is None:
            return  # a message of an earlier, finished flow
        cast.deliveries += 1
        cast.max_hops = max(cast.max_hops, msg.hops)
        if node.index in cast.expected and node.index not in cast.got:
            cast.got.add(node.index)
            cast.last = self._loop.time()
            if len(cast.got) == len(cast.expected) and not cast.done.done():
                cast.done.set_result(None)


@dataclass(slots=True)
class _Cast:
    tag: bytes
    expected: frozenset[int]
    done: asyncio.Future[None]
    got: set[int] = field(default_factory=set)
    deliveries: int = 0
    max_hops: int = 0
    last: float = 0.0


def _relay_totals(nodes: Sequence[SimNode]) -> dict[str, int]:
    totals = dict.fromkeys(_RELAY_COUNTERS, 0)
    for sim_node in nodes:
        stats = sim_node.node.relay_stats()
        for name in _RELAY_COUNTERS:
            totals[name] += getattr(stats, name)
    return totals


def _broadcast_totals(nodes: Sequence[SimNode]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for sim_node in nodes:
        stats = sim_node.node.broadcast_stats()
        for name in stats.__slots__:
            value = getattr(stats, name)
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
    return totals


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: value - before.get(name, 0) for name, value in after.items()}


async def run_routes(
    sim: Simulation,
    driver: OverlayDriver,
    recorder: FlowRecorder,
    members: Sequence[SimNode],
    *,
    count: int,
    interval: float,
    timeout: float,
    target: RouteTarget = "mixed",
) -> RelayOutcome:
    """The route flow (see the module docstring) over the live ``members``."""
    outcome = RelayOutcome()
    if count <= 0 or not driver.supports_relay:
        return outcome
    outcome.nodes = len(members)
    if len(members) < 2:
        outcome.skipped = count
        return outcome
    loop = asyncio.get_running_loop()
    rng = sim.rng("relay")
    # Draw every choice up front, so the plan does not depend on timing.
    plan: list[tuple[SimNode, bytes, SimNode | None]] = []
    for i in range(count):
        source = members[rng.randrange(len(members))]
        to_node = target == "nodes" or (target == "mixed" and i % 2 == 1)
        if to_node:
            other = members[rng.randrange(len(members) - 1)]
            if other is source:
                other = members[-1]
            key = key_for(other.peer_id)
        else:
            key = rng.randbytes(32)
        plan.append((source, key, driver.owner(members, key)))
    before = _relay_totals(sim.nodes)
    t0 = loop.time()
    await asyncio.gather(
        *(
            _one_route(recorder, outcome, i, source, key, owner, t0 + i * interval, timeout)
            for i, (source, key, owner) in enumerate(plan)
        )
    )
    outcome.stats = _delta(_relay_totals(sim.nodes), before)
    return outcome


async def _one_route(
    recorder: FlowRecorder,
    outcome: RelayOutcome,
    index: int,
    source: SimNode,
    key: bytes,
    owner: SimNode | None,
    at: float,
    timeout: float,
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, at - loop.time()))
    outcome.attempted += 1
    waiter = recorder._route_waiters[index] = loop.create_future()
    t0 = loop.time()
    try:
        async with asyncio.timeout(timeout):
            await source.node.route(key, ROUTE_PROTOCOL, index.to_bytes(4, "big"))
            await waiter
    except PeerwireError as exc:
        outcome.refused += 1
        log.info("route %d from %s refused: %s", index, source.host, exc)
        return
    except TimeoutError:
        log.info("route %d from %s toward %s: not delivered", index, source.host, owner)
        return
    finally:
        del recorder._route_waiters[index]
    receiver, hops, when = recorder.routes[index]
    outcome.delivered += 1
    outcome.hops.append(hops)
    outcome.times.append(round(when - t0, 9))
    if receiver is owner:
        outcome.correct += 1
    else:
        log.info("route %d delivered at %s, owner is %s", index, receiver.host, owner)


async def run_broadcasts(
    sim: Simulation,
    driver: OverlayDriver,
    recorder: FlowRecorder,
    members: Sequence[SimNode],
    *,
    modes: Sequence[str],
    count: int,
    interval: float,
    timeout: float,
    copies: int = 1,
) -> dict[str, BroadcastOutcome]:
    """The broadcast flow, one mode after the other (see the module docstring).

    Modes the overlay does not support (tree without Chord) are left out.
    """
    results: dict[str, BroadcastOutcome] = {}
    if count <= 0 or len(members) < 2:
        return results
    rng = sim.rng("broadcast")
    for mode in modes:
        if mode not in driver.broadcast_modes:
            log.info("the %s overlay has no %s broadcast: skipped", driver.name, mode)
            continue
        results[mode] = await _one_mode(
            sim, recorder, members, mode, count, interval, timeout, copies, rng
        )
    return results


async def _one_mode(
    sim: Simulation,
    recorder: FlowRecorder,
    members: Sequence[SimNode],
    mode: str,
    count: int,
    interval: float,
    timeout: float,
    copies: int,
    rng: random.Random,
) -> BroadcastOutcome:
    loop = asyncio.get_running_loop()
    live = frozenset(n.index for n in sim.live())
    outcome = BroadcastOutcome(
        mode=mode, copies=copies if mode == "tree" else 1, receivers=len(live) - 1
    )
    origins = [members[rng.randrange(len(members))] for _ in range(count)]
    before = _broadcast_totals(sim.nodes)
    t0 = loop.time()
    casts = await asyncio.gather(
        *(
            _one_broadcast(recorder, outcome, mode, i, origin, live, t0 + i * interval, timeout)
            for i, origin in enumerate(origins)
        )
    )
    await asyncio.sleep(LINGER)
    for job in casts:
        outcome.deliveries += job.deliveries
        outcome.max_hops.append(job.max_hops)
        covered = len(job.got) / len(job.expected) if job.expected else 1.0
        outcome.coverage.append(round(covered, 6))
        del recorder._casts[job.tag]
    outcome.stats = _delta(_broadcast_totals(sim.nodes), before)
    return outcome


async def _one_broadcast(
    recorder: FlowRecorder,
    outcome: BroadcastOutcome,
    mode: str,
    index: int,
    origin: SimNode,
    live: frozenset[int],
    at: float,
    timeout: float,
) -> _Cast:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, at - loop.time()))
    tag = f"{mode}/{index}".encode()
    job = _Cast(tag=tag, expected=live - {origin.index}, done=loop.create_future())
    recorder._casts[tag] = job
    outcome.broadcasts += 1
    node: Node = origin.node
    t0 = loop.time()
    try:
        async with asyncio.timeout(timeout):
            await node.broadcast(
                BROADCAST_PROTOCOL, tag, cast("BroadcastMode", mode), copies=outcome.copies
            )
            if job.expected:
                await job.done
    except PeerwireError as exc:
        outcome.refused += 1
        log.info("%s broadcast %d from %s refused: %s", mode, index, origin.host, exc)
    except TimeoutError:
        log.info("%s broadcast %d: %d of %d", mode, index, len(job.got), len(job.expected))
    else:
        outcome.times.append(round(job.last - t0, 9) if job.expected else 0.0)
    return job
