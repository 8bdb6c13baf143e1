"""The ``bcast`` workload: nnet's broadcast benchmark, push vs tree, one node per process.

nnet (github.com/nknorg/nnet, README "Benchmark" and
``examples/message-benchmark``) shows that on 16 nodes flooding (push)
delivers ~300 unique 1 KiB messages per second to each node and the Chord
spanning tree ~3,000: every node receives a pushed message from each of its
~15 neighbours, but a tree message once. This workload measures the same
thing on the real stack:

* ``--bcast-nodes`` (default 16) nodes, each a :mod:`peerwire.bench.bcast_worker`
  process on 127.0.0.1 (TCP + Noise + yamux, default ``Config``), join one Chord
  ring through node 0;
* the runner waits until **every** node's lists match the converged ring
  computed from the PeerIds (successor, predecessor, both lists, the neighbour
  set and the tree each node heads), checked in one sweep over all nodes;
* for each mode (push, then tree; the order alternates by round), from a
  common wall-clock start, every sender (default: every node, like the issue
  asks; ``--bcast-senders 1`` is nnet's layout, where node 0 alone sends)
  calls ``await node.broadcast(...)`` in a loop for ``--bcast-seconds``: the
  broadcast's own backpressure paces it, nothing is sent without waiting for
  room. Each node counts the *unique* broadcasts its handler got inside the
  window and how long each took from its author's timestamp; then the runner
  polls every node's ``broadcast_stats()`` until no frame is in flight
  anywhere (sent = received + dropped, summed over the ring) and takes the
  counters' deltas over the whole mode;
* before each mode the ring is checked again (push load may have upset it).

The figures: unique messages/s per node (median over nodes) for each mode,
their ratio (tree / push, same ring, same run), frames sent per delivered
message (sum over nodes of ``frames_sent`` / ``delivered``), and frames the
stack dropped (``dropped_congestion`` + ``dropped_validation_limit`` +
``dropped_fetch_limit``): forwarding never waits, so a relay whose queue to a
neighbour is full drops the frame and counts it.

Payload: 1 KiB, nnet's default (``-m 1024``). Differences from nnet's
benchmark, on purpose: each node is its own OS process (nnet runs all 16 in
one Go process), every node sends by default (nnet: node 0 only), and every
broadcast is signed by its author and verified by each receiver.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from .proc import Worker, WorkerError

WORKLOADS: Final = ("bcast",)
"""Workloads this module runs (not in the default set: 16 processes, ~1 min)."""
SUBJECT: Final = "peerwire"
MODES: Final = ("push", "tree")
DEFAULT_NODES: Final = 16
DEFAULT_SIZE: Final = 1024
DEFAULT_SECONDS: Final = 10.0
QUICK_SECONDS: Final = 3.0
MAX_NODES: Final = 64
"""Largest ring the benchmark starts (every node is a ~50 MB Python process)."""
STARTUP_TIMEOUT: Final = 60.0
"""Seconds for all node processes to start and listen (they import in parallel)."""
STABLE_TIMEOUT: Final = 60.0
STABLE_PER_NODE: Final = 3.0
"""Ring convergence may take STABLE_TIMEOUT + this per node before the run fails."""
CHECK_INTERVAL: Final = 0.5
CHECK_TIMEOUT: Final = 20.0
"""Seconds one node has to answer a ``check`` (it may be busy stabilising)."""
LEAD_S: Final = 1.0
"""The common start is this long after the ``go`` commands are sent."""
DRAIN_MAX_S: Final = 20.0
"""Longest wait, after the window, for every frame sent to have arrived; what is still
in flight then is reported (``in_flight_after_drain``)."""
DRAIN_POLL_S: Final = 0.2
STDERR_LINES: Final = 5
"""Last lines of each node's stderr kept in the details (warnings the stack logged)."""
RESULT_SLACK: Final = 30.0
DROP_FIELDS: Final = ("dropped_congestion", "dropped_validation_limit", "dropped_fetch_limit")

METRIC_SPECS: Final[tuple[dict[str, Any], ...]] = tuple(
    {"key": key, "label": label, "unit": unit, "higher_is_better": higher}
    for key, label, unit, higher in (
        ("push_msgs_per_s", "bcast push", "msg/s/node", True),
        ("tree_msgs_per_s", "bcast tree", "msg/s/node", True),
        ("tree_vs_push", "bcast tree÷push", "x", True),
        ("push_frames_per_msg", "bcast push cost", "frames/msg", False),
        ("tree_frames_per_msg", "bcast tree cost", "frames/msg", False),
        ("push_dropped", "bcast push dropped", "frames", False),
        ("tree_dropped", "bcast tree dropped", "frames", False),
    )
)
"""Table rows (``runner.Metric`` fields; every value comes from the runner: ``source``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BcastParams:
    """One ``bcast`` measurement's settings (from ``BenchOptions``)."""

    nodes: int = DEFAULT_NODES
    size: int = DEFAULT_SIZE
    seconds: float = DEFAULT_SECONDS
    senders: int = 0
    """How many nodes send (nodes 0..senders-1); 0: all of them."""
    uvloop: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.nodes <= MAX_NODES:
            raise ValueError(f"bcast needs 2..{MAX_NODES} nodes, not {self.nodes}")
        if self.size < 1 or self.seconds <= 0 or not 0 <= self.senders <= self.nodes:
            raise ValueError("bcast: size >= 1, seconds > 0, 0 <= senders <= nodes")

    @property
    def sending(self) -> int:
        return self.senders or self.nodes

    def deadline(self) -> float:
        """Seconds after which a node process ends itself, whatever it is doing."""
        per_mode = LEAD_S + self.seconds + DRAIN_MAX_S + 2 * RESULT_SLACK
        return STARTUP_TIMEOUT + self.stable_timeout() * 3 + per_mode * len(MODES) + 60

    def stable_timeout(self) -> float:
        return STABLE_TIMEOUT + STABLE_PER_NODE * self.nodes


# ---------------------------------------------------------------- processes
def _node(index: int, params: BcastParams, bootstrap: str = "") -> Worker:
    argv = [sys.executable, "-m", "peerwire.bench.bcast_worker", "--index", str(index),
            "--size", str(params.size), "--deadline", str(round(params.deadline()))]  # fmt: skip
    if bootstrap:
        argv += ["--bootstrap", bootstrap]
    if not params.uvloop:
        argv.append("--no-uvloop")
    return Worker(argv, name=f"bcast node {index}")


def _send(worker: Worker, **command: Any) -> None:
    worker.send(json.dumps(command, separators=(",", ":")))


def _finish_all(workers: Sequence[Worker]) -> None:
    """Close every stdin first (all nodes stop together), then wait; kill stragglers by PID."""
    for w in workers:
        if w.proc.stdin is not None:
            with contextlib.suppress(OSError):
                w.proc.stdin.close()
    for w in workers:
        w.finish()


def wait_stable(workers: Sequence[Worker], timeout: float) -> tuple[float, int]:
    """Until one sweep finds every node's lists converged; (seconds, sweeps). Raises on timeout."""
    started = time.monotonic()
    sweeps = 0
    while True:
        sweeps += 1
        for w in workers:
            _send(w, cmd="check")
        states = [w.expect("state", CHECK_TIMEOUT) for w in workers]
        if all(s.get("stable") for s in states):
            return time.monotonic() - started, sweeps
        if time.monotonic() - started > timeout:
            bad = {int(s["index"]): sorted(k for k, v in s.items() if v is False) for s in states}
            bad = {i: parts for i, parts in bad.items() if parts}
            raise WorkerError(f"bcast: ring not converged after {timeout:.0f} s: {bad}")
        time.sleep(CHECK_INTERVAL)


def _in_flight(windows: Sequence[dict[str, Any]], snapshots: Sequence[dict[str, Any]]) -> int:
    """Frames sent (and not dropped) since the window started that no node received yet."""
    before = {int(w["index"]): w["before"] for w in windows}
    left = 0
    for snap in snapshots:
        now, then = snap["stats"], before[int(snap["index"])]
        for key, sign in (("frames_sent", 1), ("dropped_congestion", -1), ("frames_received", -1)):
            left += sign * (int(now[key]) - int(then[key]))
    return left


def drain(
    workers: Sequence[Worker], windows: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int, float]:
    """Sweep every node's counters until nothing is in flight (at most DRAIN_MAX_S).

    Returns the last sweep, the frames still in flight (0 once drained) and the
    seconds it took. Global, not per node: a leaf may sit idle while frames for
    it wait in a busy relay's queue.
    """
    started = time.monotonic()
    while True:
        for w in workers:
            _send(w, cmd="stats")
        snaps = [w.expect("stats", CHECK_TIMEOUT) for w in workers]
        left = _in_flight(windows, snaps)
        took = time.monotonic() - started
        if left <= 0 or took > DRAIN_MAX_S:
            return snaps, left, took
        time.sleep(DRAIN_POLL_S)


def _run_mode(workers: Sequence[Worker], mode: str, params: BcastParams) -> dict[str, Any]:
    start = time.time() + LEAD_S
    for i, w in enumerate(workers):
        _send(w, cmd="go", mode=mode, start=start, seconds=params.seconds,
              send=i < params.sending)  # fmt: skip
    wait = LEAD_S + params.seconds + RESULT_SLACK
    windows = [w.expect("window", wait) for w in workers]
    snaps, left, took = drain(workers, windows)
    for w in workers:
        _send(w, cmd="resume")
    got = summarize_mode(windows, snaps, params)
    got["in_flight_after_drain"] = left
    got["drain_s"] = round(took, 2)
    return got


# ---------------------------------------------------------------- figures
def summarize_mode(
    windows: Sequence[dict[str, Any]], finals: Sequence[dict[str, Any]], params: BcastParams
) -> dict[str, Any]:
    """Figures of one mode from every node's ``window`` and final ``stats`` events.

    Pure (tested directly). Rates count the window only; the counters (frames,
    deliveries, drops) run from the window's start until the traffic drained.
    """
    nodes = len(windows)
    final = {int(f["index"]): f for f in finals}
    # Per node: over the nodes that had something to receive (with one sender, not it).
    receivers = [w for w in windows if params.sending > 1 or int(w["index"]) >= params.sending]
    rates = sorted(float(w["rate"]) for w in receivers)
    total: dict[str, int] = {}
    for w in windows:
        after = final[int(w["index"])]["stats"]
        for k, v in after.items():
            total[k] = total.get(k, 0) + int(v) - int(w["before"].get(k, 0))
    delivered, originated = total.get("delivered", 0), total.get("originated", 0)
    missing, late_senders = {}, {}
    for w in windows:
        index = int(w["index"])
        expected = params.sending - (1 if index < params.sending else 0)
        if int(final[index]["authors_total"]) < expected:
            missing[index] = expected - int(final[index]["authors_total"])
        if int(w["authors"]) < expected:
            late_senders[index] = expected - int(w["authors"])
    sent = sorted(int(w["sent"]) for w in windows if int(w["index"]) < params.sending)
    cpu = [float(w["cpu_s"]) for w in windows]

    def per_msg(key: str) -> float | None:
        return round(total.get(key, 0) / delivered, 3) if delivered else None

    return {
        "msgs_per_s": statistics.median(rates),
        "msgs_per_s_min": rates[0],
        "msgs_per_s_max": rates[-1],
        "sent_per_s_per_sender": [round(x / params.seconds, 1) for x in (
            sent[0], statistics.median(sent), sent[-1])] if sent else [0, 0, 0],
        "frames_per_msg": per_msg("frames_sent"),
        "frames_received_per_msg": per_msg("frames_received"),
        "duplicates_per_msg": per_msg("duplicates"),
        "dropped": sum(total.get(k, 0) for k in DROP_FIELDS),
        "reach": round(delivered / (originated * (nodes - 1)), 4) if originated else None,
        "nodes_missing_authors": missing,
        "nodes_missing_authors_in_window": late_senders,
        "handler_duplicates": sum(int(f["handler_duplicates"]) for f in finals),
        "ring_upset": sorted(
            int(f["index"]) for f in finals if f["ring"] and not f["ring"]["stable"]
        ),
        "delay_p50_ms_median": statistics.median(float(w["delay_p50_ms"]) for w in receivers),
        "delay_p99_ms_max": max(float(w["delay_p99_ms"]) for w in receivers),
        "late_max_s": max(float(w["late_s"]) for w in windows),
        "cpu_pct_sum": round(100 * sum(cpu) / params.seconds, 1),
        "cpu_pct_node_median": round(100 * statistics.median(cpu) / params.seconds, 1),
        "totals": total,
        "nodes": [
            {k: w[k] for k in ("index", "sent", "unique", "rate", "authors", "cpu_s",
                               "delay_p50_ms", "delay_p99_ms")}
            for w in sorted(windows, key=lambda w: int(w["index"]))
        ],
    }  # fmt: skip


def values_of(modes: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The table's values (``METRIC_SPECS`` keys) from each mode's summary."""
    values: dict[str, float] = {}
    for mode, got in modes.items():
        values[f"{mode}_msgs_per_s"] = float(got["msgs_per_s"])
        if got["frames_per_msg"] is not None:
            values[f"{mode}_frames_per_msg"] = float(got["frames_per_msg"])
        values[f"{mode}_dropped"] = float(got["dropped"])
    if values.get("push_msgs_per_s") and "tree_msgs_per_s" in values:
        values["tree_vs_push"] = round(values["tree_msgs_per_s"] / values["push_msgs_per_s"], 3)
    return values


def measure(round_no: int, params: BcastParams) -> tuple[dict[str, float], dict[str, Any], str]:
    """Start the ring, measure both modes, stop it: (values, details, event loop name)."""
    workers: list[Worker] = []
    details: dict[str, Any] = {
        "nodes": params.nodes, "senders": params.sending, "size": params.size,
        "seconds": params.seconds, "modes": {},
    }  # fmt: skip
    try:
        t0 = time.monotonic()
        workers.append(_node(0, params))
        first = workers[0].expect("ready", STARTUP_TIMEOUT)
        workers += [_node(i, params, str(first["addr"])) for i in range(1, params.nodes)]
        ready = [first] + [w.expect("ready", STARTUP_TIMEOUT) for w in workers[1:]]
        details["started_s"] = round(time.monotonic() - t0, 2)
        peers = [str(r["peer"]) for r in ready]
        for w in workers:
            _send(w, cmd="ring", peers=peers)
        order = MODES if round_no % 2 else tuple(reversed(MODES))
        for mode in order:
            took, sweeps = wait_stable(workers, params.stable_timeout())
            details.setdefault("stable_s", {})[mode] = round(took, 2)
            details.setdefault("stable_sweeps", {})[mode] = sweeps
            details["modes"][mode] = _run_mode(workers, mode, params)
        return values_of(details["modes"]), details, str(first.get("loop", ""))
    finally:
        _finish_all(workers)
        logged = {i: w.stderr_tail(STDERR_LINES) for i, w in enumerate(workers)}
        details["stderr"] = {i: text for i, text in logged.items() if text}


def warnings(details: dict[str, Any]) -> list[str]:
    """What a reader of the figures must know: drops, nodes that missed senders, a ring
    that changed under load, traffic that had not drained, duplicate deliveries."""
    out = []
    for mode, got in details.get("modes", {}).items():
        if got["dropped"]:
            out.append(f"{mode}: the stack dropped {got['dropped']:,} frames (congestion)")
        if got["nodes_missing_authors"]:
            out.append(f"{mode}: nodes that got nothing from some senders (node: senders "
                       f"missed): {got['nodes_missing_authors']}")  # fmt: skip
        if got["totals"].get("ring_changes"):
            out.append(f"{mode}: {got['totals']['ring_changes']} changes of Chord lists during "
                       "the run (a tree may have missed nodes)")  # fmt: skip
        if got["ring_upset"]:
            out.append(f"{mode}: ring lists changed during the run on nodes {got['ring_upset']}")
        if got.get("in_flight_after_drain"):
            out.append(f"{mode}: {got['in_flight_after_drain']} frames still in flight "
                       f"{DRAIN_MAX_S:.0f} s after the window")  # fmt: skip
        if got["handler_duplicates"]:
            out.append(f"{mode}: {got['handler_duplicates']} messages delivered twice")
    return out


def describe(report: dict[str, Any]) -> list[str]:
    """One line per mode per ``bcast`` sample, for under the table."""
    lines = []
    for sample in report.get("samples", []):
        details = sample.get("server", {}).get("bcast")
        if sample.get("workload") not in WORKLOADS or not details:
            continue
        waited = ", ".join(f"{m} {t:g} s" for m, t in details.get("stable_s", {}).items())
        lines.append(
            f"bcast round {sample['round']}: {details['nodes']} nodes, {details['senders']} "
            f"sending, {details['size']} B, {details['seconds']:g} s per mode; processes up "
            f"in {details['started_s']:g} s; wait for a converged ring before each mode: {waited}"
        )
        for mode, got in details["modes"].items():
            fpm, dpm = got["frames_per_msg"], got["duplicates_per_msg"]
            low, mid, high = got["sent_per_s_per_sender"]
            lines.append(
                f"  {mode}: {got['msgs_per_s']:,.0f} msg/s/node "
                f"({got['msgs_per_s_min']:,.0f}..{got['msgs_per_s_max']:,.0f}); sent/s per "
                f"sender {low:,.0f}..{mid:,.0f}..{high:,.0f} (min..median..max); per delivery "
                f"{'?' if fpm is None else f'{fpm:.2f}'} frames sent, "
                f"{'?' if dpm is None else f'{dpm:.2f}'} duplicates; delay from author "
                f"{got['delay_p50_ms_median']:,.0f} ms median, {got['delay_p99_ms_max']:,.0f} ms "
                "p99 (worst node); "
                f"reach {100 * (got['reach'] or 0):.1f}%; dropped {got['dropped']:,}; "
                f"CPU {got['cpu_pct_sum']:.0f}% of one core, summed over nodes"
            )
        lines += [f"  warning: {w}" for w in warnings(details)]
    return lines
