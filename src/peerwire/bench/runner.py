"""``peerwire bench``: every subject and workload, interleaved in rounds, in one run.

PERF_NOTES' method: the machine is shared and drifts ~1.5x between runs, so
absolute numbers mean little on their own. Each round runs every subject on a
workload back to back (raw-tcp, raw-aead, peerwire, ..., py-libp2p), then the
next workload; ``--runs`` rounds; the report gives each figure's median over
the rounds and its ratio to the baselines measured in the *same* run.

Every measurement is two fresh OS processes on 127.0.0.1 (server + client,
see :mod:`peerwire.bench.proc`), so start-up, memory and CPU are per process
and nothing leaks between subjects.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from . import _wire, broadcast_bench
from .proc import Worker, WorkerError, worker_args, worker_argv

SUBJECTS: Final = ("raw-tcp", "raw-aead", "peerwire", "peerwire-stream", "py-libp2p")
BASELINES: Final = ("raw-tcp", "raw-aead")
STREAM_ONLY: Final = _wire.ONEWAY
"""Workloads ``peerwire-stream`` runs (the raw-stream floor under the messaging layer)."""
KIB: Final = 1024
MIB: Final = 1 << 20

# Counts sized for ~1-3 s per measurement at the speeds each subject reaches
# (raw ~1-2M msg/s, peerwire target 150k msg/s, py-libp2p ~3-6k msg/s).
COUNTS: Final[dict[str, dict[str, int]]] = {
    "oneway-1k": {"raw-tcp": 1_000_000, "raw-aead": 1_000_000, "peerwire": 300_000,
                  "peerwire-stream": 300_000, "py-libp2p": 6_000},
    "oneway-1m": {"raw-tcp": 3_000, "raw-aead": 1_500, "peerwire": 1_000,
                  "peerwire-stream": 1_000, "py-libp2p": 200},
    "rtt-1k": {"raw-tcp": 5_000, "raw-aead": 5_000, "peerwire": 5_000, "py-libp2p": 1_000},
    "inflight64-1k": {"raw-tcp": 200_000, "raw-aead": 150_000, "peerwire": 100_000,
                      "py-libp2p": 4_000},
    "first-ping": {"raw-tcp": 3, "raw-aead": 3, "peerwire": 3, "py-libp2p": 2},
    "connect-rate": {"raw-tcp": 2_000, "raw-aead": 1_000, "peerwire": 300, "py-libp2p": 10},
    "idle-conn-mem": {"raw-tcp": 200, "raw-aead": 200, "peerwire": 200, "py-libp2p": 100},
}  # fmt: skip
QUICK_DIVISOR: Final = {"first-ping": 3, "connect-rate": 4, "idle-conn-mem": 4}
"""``--quick`` divides counts by this (default 10); first-ping then spawns one client."""
SIZES: Final = {"oneway-1m": MIB}
WARMUP: Final = {"py-libp2p": 50}
DEFAULT_WARMUP: Final = 200
STARTUP_TIMEOUT: Final = 30.0
RUN_TIMEOUT: Final = 120.0
"""Seconds a single measurement may take before its workers are killed."""
SETTLE_S: Final = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One table row kind: which result field, its unit, and which way is better."""

    workload: str
    key: str
    label: str
    unit: str
    higher_is_better: bool
    source: str = "client"  # which process's result holds ``key``


METRICS: Final = (
    Metric(workload="oneway-1k", key="msgs_per_s", label="oneway-1k", unit="msg/s",
           higher_is_better=True, source="server"),
    Metric(workload="oneway-1m", key="mb_per_s", label="oneway-1m", unit="MB/s",
           higher_is_better=True, source="server"),
    Metric(workload="rtt-1k", key="rtt_p50_us", label="rtt-1k p50", unit="µs",
           higher_is_better=False),
    Metric(workload="rtt-1k", key="rtt_p99_us", label="rtt-1k p99", unit="µs",
           higher_is_better=False),
    Metric(workload="inflight64-1k", key="req_per_s", label="inflight64-1k", unit="req/s",
           higher_is_better=True),
    Metric(workload="first-ping", key="first_ping_ms", label="first-ping", unit="ms",
           higher_is_better=False, source="runner"),
    Metric(workload="connect-rate", key="conns_per_s", label="connect-rate", unit="conn/s",
           higher_is_better=True),
    Metric(workload="idle-conn-mem", key="kib_per_conn", label="idle-conn-mem",
           unit="KiB/conn", higher_is_better=False, source="runner"),
    *(Metric(workload="bcast", source="runner", **spec) for spec in broadcast_bench.METRIC_SPECS),
)  # fmt: skip


@dataclass(slots=True, kw_only=True)
class BenchOptions:
    """What ``peerwire bench`` was asked to do."""

    runs: int = 3
    quick: bool = False
    scale: float = 1.0
    """Multiplies every count (tests use a tiny scale); 1.0 for real measurements."""
    uvloop: bool = True
    pin_rtt: bool = True
    """Pin both rtt-1k processes to CPU 0: measures software cost, not VM wake-ups."""
    pylibp2p_python: str | None = None
    subjects: tuple[str, ...] = SUBJECTS
    workloads: tuple[str, ...] = _wire.WORKLOADS
    bcast_nodes: int = broadcast_bench.DEFAULT_NODES
    bcast_size: int = broadcast_bench.DEFAULT_SIZE
    bcast_seconds: float | None = None
    """Sending window per mode; None: 10 s (3 s with ``--quick``)."""
    bcast_senders: int = 0
    """Nodes that broadcast (0: all; 1: nnet's layout, node 0 alone)."""


@dataclass(slots=True, kw_only=True)
class Sample:
    """One measurement: one subject, one workload, one round."""

    subject: str
    workload: str
    round: int
    values: dict[str, float] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    client: dict[str, Any] = field(default_factory=dict)
    loop: str = ""
    error: str = ""
    na: str = ""


ALL_WORKLOADS: Final = _wire.WORKLOADS + broadcast_bench.WORKLOADS
"""What ``--workloads`` accepts; the default is ``_wire.WORKLOADS`` (bcast is opt-in)."""


def applies(subject: str, workload: str) -> bool:
    if workload in broadcast_bench.WORKLOADS:
        return subject == broadcast_bench.SUBJECT
    return subject != "peerwire-stream" or workload in STREAM_ONLY


def params_for(subject: str, workload: str, opts: BenchOptions) -> dict[str, Any]:
    """Counts, sizes and flags for one measurement."""
    count = COUNTS[workload][subject if subject in COUNTS[workload] else "peerwire"]
    if opts.quick:
        count = max(1, count // QUICK_DIVISOR.get(workload, 10))
    count = max(2 if workload in _wire.ONEWAY else 1, round(count * opts.scale))
    params: dict[str, Any] = {
        "count": count,
        "size": SIZES.get(workload, KIB),
        "deadline": RUN_TIMEOUT + 30,
        "no_uvloop": not opts.uvloop,
    }
    if workload == "rtt-1k":
        warmup = WARMUP.get(subject, DEFAULT_WARMUP)
        params["warmup"] = max(1, round(warmup * (0.2 if opts.quick else 1.0) * opts.scale))
        if opts.pin_rtt:
            params["pin_cpu"] = 0
    return params


def _start_server(subject: str, workload: str, params: dict[str, Any], opts: BenchOptions,
                  ) -> tuple[Worker, dict[str, Any]]:  # fmt: skip
    argv = worker_argv(subject, pylibp2p_python=opts.pylibp2p_python)
    server = Worker(argv + worker_args("server", subject, workload, params),
                    name=f"{subject} {workload} server")  # fmt: skip
    try:
        ready = server.expect("ready", STARTUP_TIMEOUT)
    except BaseException:
        server.finish()
        raise
    return server, ready


def _client(subject: str, workload: str, params: dict[str, Any], opts: BenchOptions,
            addr: str) -> Worker:  # fmt: skip
    argv = worker_argv(subject, pylibp2p_python=opts.pylibp2p_python)
    args = worker_args("client", subject, workload, params, connect=addr)
    return Worker(argv + args, name=f"{subject} {workload} client")


def _stable_rss(pid: int, timeout: float = 3.0) -> int:
    """VmRSS of ``pid`` once two reads ``SETTLE_S`` apart agree within 1%."""
    last = _wire.rss_kib(pid)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(SETTLE_S)
        now = _wire.rss_kib(pid)
        if abs(now - last) <= max(64, last // 100):
            return now
        last = now
    return last


def _measure_bcast(workload: str, round_no: int, opts: BenchOptions) -> Sample:
    """A fresh ring of ``opts.bcast_nodes`` processes (:mod:`.broadcast_bench`)."""
    sample = Sample(subject=broadcast_bench.SUBJECT, workload=workload, round=round_no)
    seconds = opts.bcast_seconds
    if seconds is None:
        seconds = broadcast_bench.QUICK_SECONDS if opts.quick else broadcast_bench.DEFAULT_SECONDS
    params = broadcast_bench.BcastParams(
        nodes=opts.bcast_nodes, size=opts.bcast_size, seconds=seconds,
        senders=opts.bcast_senders, uvloop=opts.uvloop,
    )  # fmt: skip
    try:
        sample.values, details, sample.loop = broadcast_bench.measure(round_no, params)
        sample.server = {"bcast": details}
    except WorkerError as exc:
        sample.error = str(exc)
    return sample


def measure(subject: str, workload: str, round_no: int, opts: BenchOptions) -> Sample:
    """Run one subject on one workload in a fresh server/client pair of processes."""
    if workload in broadcast_bench.WORKLOADS:
        return _measure_bcast(workload, round_no, opts)
    sample = Sample(subject=subject, workload=workload, round=round_no)
    params = params_for(subject, workload, opts)
    try:
        server, ready = _start_server(subject, workload, params, opts)
    except WorkerError as exc:
        sample.error, sample.na = str(exc), exc.na or ""
        return sample
    sample.loop = str(ready.get("loop", ""))
    addr = str(ready["addr"])
    try:
        if workload == "first-ping":
            times = []
            for _ in range(params["count"]):
                client = _client(subject, workload, params, opts, addr)
                try:
                    got = client.expect("result", RUN_TIMEOUT)
                finally:
                    client.finish()
                times.append((got["_at"] - client.spawned_at) * 1000)
            sample.values["first_ping_ms"] = round(statistics.median(times), 2)
            sample.client = {"spawns_ms": [round(t, 2) for t in times]}
        elif workload == "idle-conn-mem":
            client = _client(subject, workload, params, opts, addr)
            try:
                client.expect("warm", RUN_TIMEOUT)
                before = _stable_rss(server.pid)
                client.send("go")
                opened = client.expect("opened", RUN_TIMEOUT)
                after = _stable_rss(server.pid)
            finally:
                client.finish()
            conns = int(opened["count"])
            sample.values["kib_per_conn"] = round((after - before) / max(conns, 1), 1)
            sample.server = {"rss_before_kib": before, "rss_after_kib": after, "conns": conns}
        else:
            client = _client(subject, workload, params, opts, addr)
            try:
                sample.client = client.expect("result", RUN_TIMEOUT)
                if workload in _wire.ONEWAY:
                    sample.server = server.expect("result", RUN_TIMEOUT)
            finally:
                client.finish()
            for metric in METRICS:
                if metric.workload == workload:
                    src = sample.server if metric.source == "server" else sample.client
                    sample.values[metric.key] = float(src[metric.key])
        for part in (sample.client, sample.server):
            part.pop("_at", None)
            part.pop("event", None)
    except WorkerError as exc:
        sample.error, sample.na = str(exc), exc.na or ""
    finally:
        server.finish()
    return sample


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return float(f"{a / b:.4g}") if a is not None and b else None


def summarize(samples: list[Sample], opts: BenchOptions) -> list[dict[str, Any]]:
    """One row per metric x subject: medians, spread, CPU% and same-run ratios."""
    rows: list[dict[str, Any]] = []
    medians: dict[tuple[str, str], float | None] = {}
    for metric in METRICS:
        if metric.workload not in opts.workloads:
            continue
        for subject in opts.subjects:
            if not applies(subject, metric.workload):
                continue
            mine = [s for s in samples if s.subject == subject and s.workload == metric.workload]
            values = [s.values[metric.key] for s in mine if metric.key in s.values]
            medians[(metric.label, subject)] = _median(values)
            cpu_srv = [float(s.server["cpu_pct"]) for s in mine if "cpu_pct" in s.server]
            cpu_cli = [float(s.client["cpu_pct"]) for s in mine if "cpu_pct" in s.client]
            problems = sorted({s.na or s.error for s in mine if s.na or s.error})
            rows.append({
                "workload": metric.workload, "metric": metric.label, "key": metric.key,
                "unit": metric.unit, "higher_is_better": metric.higher_is_better,
                "subject": subject, "median": medians[(metric.label, subject)],
                "samples": values, "min": min(values, default=None),
                "max": max(values, default=None),
                "cpu_pct_server": _median(cpu_srv), "cpu_pct_client": _median(cpu_cli),
                "loops": sorted({s.loop for s in mine if s.loop}),
                "na": any(s.na for s in mine) and not values, "problems": problems,
            })  # fmt: skip
    for row in rows:
        value = row["median"]
        row["vs_raw_tcp"] = _ratio(value, medians.get((row["metric"], "raw-tcp")))
        row["vs_raw_aead"] = _ratio(value, medians.get((row["metric"], "raw-aead")))
        row["vs_py_libp2p"] = (
            _ratio(value, medians.get((row["metric"], "py-libp2p")))
            if row["subject"] in ("peerwire", "peerwire-stream")
            else None
        )
    return rows


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else [],
    }


def pylibp2p_missing(python: str | None) -> str:
    """Why ``python`` cannot run the py-libp2p worker, or '' if it can."""
    if not python:
        return "no --pylibp2p-python given"
    try:
        proc = subprocess.run(
            [python, "-c", "import libp2p, trio, multiaddr"],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python}: {exc}"
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["import failed"]
        return f"{python} has no usable libp2p: {lines[-1]}"
    return ""


Progress = Callable[[Sample], None]


def run_bench(opts: BenchOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Run everything ``opts`` asks for; return the report (what ``--json`` prints)."""
    from .. import __version__

    subjects = [s for s in opts.subjects if s != "py-libp2p" or opts.pylibp2p_python]
    opts.subjects = tuple(subjects)
    started = time.perf_counter()
    machine = machine_info()
    no_libp2p = pylibp2p_missing(opts.pylibp2p_python) if "py-libp2p" in subjects else ""
    samples: list[Sample] = []
    for round_no in range(1, opts.runs + 1):
        for workload in opts.workloads:
            for subject in subjects:
                if not applies(subject, workload):
                    continue
                if subject == "py-libp2p" and no_libp2p:
                    sample = Sample(subject=subject, workload=workload, round=round_no)
                    sample.error = sample.na = no_libp2p
                else:
                    sample = measure(subject, workload, round_no, opts)
                samples.append(sample)
                if progress is not None:
                    progress(sample)
    if hasattr(os, "getloadavg"):
        machine["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "peerwire_version": __version__,
        "machine": machine,
        "options": asdict(opts),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "rows": summarize(samples, opts),
        "samples": [asdict(s) for s in samples],
    }
