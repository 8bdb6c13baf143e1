"""One node of the ``bcast`` benchmark: a Chord ring member in its own OS process.

Run as ``python -m peerwire.bench.bcast_worker --index I [--bootstrap ADDR]``
(:mod:`peerwire.bench.broadcast_bench` builds the command line). The process is
a real :class:`peerwire.Node` (TCP + Noise + yamux, default
:class:`peerwire.Config`, ``overlay="chord"``) on 127.0.0.1, with a
deterministic identity per index so every run forms the same ring.

It talks to the coordinator through its standard streams only: JSON events
on stdout (``ready``, ``state``, ``window``, ``stats``, and ``result`` with
``ok: false`` on failure) and one JSON command per stdin line:

* ``{"cmd": "ring", "peers": [...]}`` -- every member's PeerId: from them the
  node computes what its lists must hold in a converged ring (the ideal ring
  of :func:`peerwire.overlay.chord.ideal_rings`) and, while they do not, runs
  extra stabilisation rounds to get there sooner;
* ``{"cmd": "check"}`` -- answer ``state``: do the lists match the ideal ring?
* ``{"cmd": "go", "mode": ..., "start": ..., "seconds": ..., "send": ...}`` --
  from wall-clock ``start`` (``time.time()``, shared by every process on the
  machine) broadcast as fast as backpressure allows for ``seconds`` (if
  ``send``), count the unique broadcasts delivered in that window, and answer
  ``window`` (with the counters as they were at the start);
* ``{"cmd": "stats"}`` -- answer ``stats``: the broadcast counters now, the
  handler's totals and the ring check (the coordinator sweeps these until no
  frame is in flight anywhere);
* ``{"cmd": "resume"}`` -- extra stabilisation rounds may run again;
* end of file -- stop the node and exit.

The process also ends itself after ``--deadline`` seconds whatever it is
doing, so it can never outlive its benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict
from typing import Any, Final

from .. import Hook, Identity, Message, Node
from .._runtime import run
from ..identity.peer_id import PeerId
from ..overlay.base import key_for
from . import _wire

BCAST_PROTOCOL: Final = "/bench/bcast/1.0.0"
"""Application protocol the benchmark's broadcasts are delivered to."""
LISTEN: Final = "/ip4/127.0.0.1/tcp/0"
SEED_PREFIX: Final = b"peerwire-bench-bcast-%d"
"""Identity seed of node ``i``: sha256 of this with ``i`` filled in (the same ring every run)."""
HURRY_INTERVAL: Final = 0.3
"""Seconds between the extra stabilisation rounds run while the lists are not converged
(Chord's own round runs every ~2 s; the benchmark need not wait for it)."""
MODES: Final = ("push", "tree")
MAX_DELAYS: Final = 200_000
"""Delivery delays kept per node and mode (memory bound; ~40 s at 5,000 msg/s)."""
PROFILE_ENV: Final = "PEERWIRE_BENCH_PROFILE"
"""Set to a directory to profile every node (cProfile, CPU time) from each mode's start
until its traffic drained, into ``bcast-node-I-MODE.prof`` there: where a node's time
goes (the profiler slows every node down, so the rates of such a run mean nothing)."""


log = logging.getLogger("peerwire.bench.bcast")


def seed_for(index: int) -> bytes:
    return hashlib.sha256(SEED_PREFIX % index).digest()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bcast_worker", description="peerwire bcast bench node")
    p.add_argument("--index", type=int, required=True, help="node number (picks the identity)")
    p.add_argument("--bootstrap", default="", help="multiaddr of the ring's first node")
    p.add_argument("--size", type=int, default=1024, help="payload bytes per broadcast")
    p.add_argument("--deadline", type=float, default=300.0, help="seconds before forced exit")
    p.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    args = p.parse_args(argv)
    if args.index < 0 or args.size < 1 or args.deadline <= 0:
        p.error("--index must be >= 0, --size >= 1, --deadline > 0")
    return args


# ------------------------------------------------------------------ the ring
class RingCheck:
    """Whether this node's Chord lists are what they are in the converged ring."""

    def __init__(self, node: Node, peers: list[PeerId]) -> None:
        from ..overlay.chord import ideal_rings

        cfg = node.config.chord
        members = [(int.from_bytes(key_for(p), "big"), p) for p in peers]
        self.ideal = ideal_rings(members, **cfg.list_sizes())[node.peer_id]
        self.node = node

    def state(self) -> dict[str, bool]:
        """Which parts of the lists match: successor and predecessor (the ring itself),
        the whole lists, and the broadcast tree this node heads (what tree mode uses)."""
        chord: Any = self.node.overlay
        ideal = self.ideal
        successors, predecessors = chord.successors(), chord.predecessors()
        want_tree = [(p, k.to_bytes(32, "big")) for p, k in ideal.tree_children(None)]
        parts = {
            "successor": successors[:1] == list(ideal.successors()[:1]),
            "predecessor": predecessors[:1] == list(ideal.predecessors()[:1]),
            "successors": successors == list(ideal.successors()),
            "predecessors": predecessors == list(ideal.predecessors()),
            "neighbours": set(chord.neighbours()) == set(ideal.neighbours()),
            "tree": chord.tree_children(None) == want_tree,
        }
        parts["stable"] = all(parts.values())
        return parts


async def hurry(node: Node, check: RingCheck, paused: asyncio.Event) -> None:
    """Run stabilisation rounds back to back (bounded by HURRY_INTERVAL) until converged."""
    overlay = node.overlay
    assert overlay is not None
    while True:
        await asyncio.sleep(HURRY_INTERVAL)
        if paused.is_set() or check.state()["stable"]:
            continue
        try:
            await overlay.maintain()
        except Exception as exc:  # a round can fail while peers join; the next one retries
            log.info("stabilisation round failed: %s", exc)


# ------------------------------------------------------------ measuring
class Deliveries:
    """The handler: counts unique broadcasts delivered, and those inside the window."""

    __slots__ = ("authors", "by_author", "delays", "duplicates", "hi", "in_window", "lo", "seen")

    def __init__(self) -> None:
        self.lo = math.inf
        self.hi = -math.inf
        self.seen: set[tuple[PeerId | None, int]] = set()
        self.by_author: dict[PeerId | None, int] = {}
        """Messages per author inside the window."""
        self.authors: set[PeerId | None] = set()
        """Authors heard from since the reset, window or not."""
        self.delays: list[float] = []
        """Seconds from the author's timestamp to delivery here, inside the window
        (the queueing a message met on its way; every process shares the clock)."""
        self.in_window = 0
        self.duplicates = 0

    def reset(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi
        self.seen.clear()
        self.by_author.clear()
        self.authors.clear()
        self.delays.clear()
        self.in_window = self.duplicates = 0

    def __call__(self, msg: Message) -> None:
        key = (msg.author, msg.id)
        if key in self.seen:
            self.duplicates += 1  # the broadcast layer delivered one message twice
            return
        self.seen.add(key)
        self.authors.add(msg.author)
        now = time.time()
        if self.lo <= now <= self.hi:
            self.in_window += 1
            if len(self.delays) < MAX_DELAYS:
                self.delays.append(now - msg.timestamp_ms / 1000)
            self.by_author[msg.author] = self.by_author.get(msg.author, 0) + 1


RING_HOOKS: Final = (
    Hook.SUCCESSOR_ADDED,
    Hook.SUCCESSOR_REMOVED,
    Hook.PREDECESSOR_ADDED,
    Hook.PREDECESSOR_REMOVED,
    Hook.FINGER_ADDED,
    Hook.FINGER_REMOVED,
    Hook.NEIGHBOUR_ADDED,
    Hook.NEIGHBOUR_REMOVED,
)


class RingChanges:
    """Counts every change of this node's Chord lists (overlay hooks): a converged ring
    under load should show none; a change mid-run means a tree may have missed nodes."""

    def __init__(self, node: Node) -> None:
        self.count = 0
        for hook in RING_HOOKS:
            node.use(hook, self._changed)

    def _changed(self, *args: object) -> None:
        self.count += 1


def stats_dict(node: Node, changes: RingChanges) -> dict[str, int]:
    return {**asdict(node.broadcast_stats()), "ring_changes": changes.count}


def _delay_fields(delays: list[float]) -> dict[str, float]:
    """Median and p99 delivery delay in milliseconds (0 with no deliveries)."""
    delays.sort()
    return {
        "delay_p50_ms": round(_wire.percentile(delays, 0.5) * 1000, 1),
        "delay_p99_ms": round(_wire.percentile(delays, 0.99) * 1000, 1),
    }


async def measure(
    node: Node, deliveries: Deliveries, changes: RingChanges, cmd: dict[str, Any], size: int
) -> dict[str, Any]:
    """One mode's window: send (if asked) and count; the coordinator then waits for the
    traffic to drain (``stats`` sweeps) before it reads the final counters."""
    mode = str(cmd["mode"])
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    start, seconds = float(cmd["start"]), float(cmd["seconds"])
    end = start + seconds
    payload = os.urandom(size)
    # The counters are read now, before the common start, while nothing moves (the
    # previous mode drained): read at the start, a node that woke late would miss
    # frames others sent it in its first milliseconds.
    before = stats_dict(node, changes)
    deliveries.reset(start, end)
    await asyncio.sleep(max(0.0, start - time.time()))
    late = max(0.0, time.time() - start)
    cpu0 = _wire.cpu_seconds()
    sent = 0
    if cmd.get("send"):
        broadcast = node.broadcast
        clock = time.time
        while clock() < end:
            # Backpressure: broadcast() waits when a neighbour's queue is full. When it
            # finds room it returns without suspending, so yield once per message or
            # this loop would starve the node's own receiving and forwarding.
            await broadcast(BCAST_PROTOCOL, payload, mode)  # type: ignore[arg-type]
            sent += 1
            await asyncio.sleep(0)
    await asyncio.sleep(max(0.0, end - time.time()))
    return {
        "mode": mode,
        "sent": sent,
        "unique": deliveries.in_window,
        "rate": round(deliveries.in_window / seconds, 2),
        "authors": len(deliveries.by_author),
        **_delay_fields(deliveries.delays),
        "late_s": round(late, 4),
        "cpu_s": round(_wire.cpu_seconds() - cpu0, 4),
        "before": before,
    }


class Profile:
    """cProfile per mode when ``PEERWIRE_BENCH_PROFILE`` names a directory, else nothing."""

    def __init__(self, index: int) -> None:
        self.dir = os.environ.get(PROFILE_ENV, "")
        self.index = index
        self.running: tuple[Any, str] | None = None

    def start(self, mode: str) -> None:
        if self.dir and self.running is None:
            import cProfile

            prof = cProfile.Profile(time.process_time)
            prof.enable()
            self.running = (prof, mode)

    def stop(self) -> None:
        if self.running is not None:
            prof, mode = self.running
            prof.disable()
            prof.dump_stats(os.path.join(self.dir, f"bcast-node-{self.index}-{mode}.prof"))
            self.running = None


# ------------------------------------------------------------------ process
async def amain(args: argparse.Namespace) -> int:
    logging.getLogger("peerwire.broadcast").setLevel(logging.ERROR)
    # ^ under overload every refused frame logs a warning; thousands of lines to stderr
    # would slow the node they describe. The drops are counted (broadcast_stats) and
    # reported in the results instead.
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def on_line(line: str) -> None:
        if line:
            try:
                cmd = json.loads(line)
            except ValueError:
                cmd = {"cmd": "not JSON", "line": line[:80]}  # refused in the loop below
            loop.call_soon_threadsafe(commands.put_nowait, cmd)

    _wire.watch_stdin(on_line, lambda: loop.call_soon_threadsafe(commands.put_nowait, None))
    node = Node(
        Identity.from_seed(seed_for(args.index)),
        [LISTEN],
        overlay="chord",
        bootstrap=[args.bootstrap] if args.bootstrap else [],
    )
    deliveries = Deliveries()
    node.on(BCAST_PROTOCOL)(deliveries)
    changes = RingChanges(node)
    await node.start()
    loop_name = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    _wire.emit(
        "ready",
        index=args.index,
        addr=str(node.addrs[0]),
        peer=str(node.peer_id),
        pid=os.getpid(),
        loop=loop_name,
    )
    check: RingCheck | None = None
    profile = Profile(args.index)
    paused = asyncio.Event()
    helper: asyncio.Task[None] | None = None
    try:
        while (cmd := await commands.get()) is not None:
            kind = cmd.get("cmd")
            if kind == "ring":
                check = RingCheck(node, [PeerId.from_string(p) for p in cmd["peers"]])
                if helper is None:
                    helper = asyncio.create_task(hurry(node, check, paused))
            elif kind == "check":
                _wire.emit("state", index=args.index, **(check.state() if check else {}))
            elif kind == "go":
                profile.start(str(cmd["mode"]))
                paused.set()  # no extra stabilisation rounds until the traffic drained
                _wire.emit("window", index=args.index,
                           **await measure(node, deliveries, changes, cmd, args.size))  # fmt: skip
            elif kind == "stats":
                _wire.emit(
                    "stats",
                    index=args.index,
                    stats=stats_dict(node, changes),
                    delivered_total=len(deliveries.seen),
                    authors_total=len(deliveries.authors),
                    handler_duplicates=deliveries.duplicates,
                    ring=check.state() if check else {},
                )
            elif kind == "resume":
                profile.stop()
                paused.clear()
            else:
                raise ValueError(f"unknown command {cmd!r}")
    finally:
        if helper is not None:
            helper.cancel()
        await node.stop()
    return 0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    _wire.arm_guard(args.deadline)
    try:
        code = run(amain(args), use_uvloop=not args.no_uvloop)
    except BaseException as exc:
        _wire.emit(
            "result", ok=False, role=f"node {args.index}", error=f"{type(exc).__name__}: {exc}"
        )
        code = _wire.EXIT_FAILED
    _wire.hard_exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
