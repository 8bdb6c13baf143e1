"""Printing a benchmark report: the rich table, progress lines, ``--json``, and a CLI.

``peerwire bench`` (click, in :mod:`peerwire.cli.main`) and
``benchmarks/run.py`` (argparse, :func:`main`) both end in :func:`run_and_print`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from . import _wire, broadcast_bench
from .runner import ALL_WORKLOADS, SUBJECTS, BenchOptions, Sample, run_bench


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "frames":
        return f"{value:,.0f}"
    if unit in ("msg/s", "req/s", "conn/s") and value >= 100:
        return f"{value:,.0f}"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def fmt_cpu(row: dict[str, Any]) -> str:
    srv, cli = row["cpu_pct_server"], row["cpu_pct_client"]
    if srv is None and cli is None:
        return ""
    return f"{'-' if srv is None else f'{srv:.0f}'}/{'-' if cli is None else f'{cli:.0f}'}"


def render_table(report: dict[str, Any], console: Console) -> None:
    opts = report["options"]
    rows = report["rows"]
    table = Table(
        title=f"peerwire bench: median of {opts['runs']} round(s)"
        + (" (--quick)" if opts["quick"] else ""),
        caption="ratios are value ÷ the other subject's median in this run; "
        "↑ higher is better, ↓ lower is better; CPU% = server/client, of one core",
    )
    for name, justify in (
        ("workload", "left"), ("subject", "left"), ("value", "right"), ("unit", "left"),
        ("÷ raw-tcp", "right"), ("÷ raw-aead", "right"), ("÷ py-libp2p", "right"),
        ("CPU%", "right"), ("spread", "right"), ("note", "left"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous = None
    for row in rows:
        if previous is not None and row["metric"] != previous:
            table.add_section()
        previous = row["metric"]
        unit = f"{row['unit']} {'↑' if row['higher_is_better'] else '↓'}"
        spread = ""
        if row["min"] is not None and len(row["samples"]) > 1:
            spread = f"{fmt_value(row['min'], row['unit'])}..{fmt_value(row['max'], row['unit'])}"
        note = "; ".join(p.splitlines()[0][:120] for p in row["problems"])
        if row["median"] is None and not note:
            note = "no result"
        table.add_row(
            row["metric"], row["subject"], fmt_value(row["median"], row["unit"]), unit,
            "" if row["subject"] == "raw-tcp" else fmt_ratio(row["vs_raw_tcp"]),
            "" if row["subject"] == "raw-aead" else fmt_ratio(row["vs_raw_aead"]),
            fmt_ratio(row["vs_py_libp2p"]) if row["subject"].startswith("peerwire") else "",
            fmt_cpu(row), spread, note,
        )  # fmt: skip
    console.print(table)
    loops = {r["subject"]: ",".join(r["loops"]) for r in rows if r["loops"]}
    m = report["machine"]
    console.print(
        f"event loops: {', '.join(f'{k}={v}' for k, v in loops.items())}; "
        f"rtt pinned to CPU 0: {opts['pin_rtt']}; "
        f"{m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, "
        f"load avg at start {m['load_avg']}, at end {m.get('load_avg_end', '?')}; "
        f"took {report['elapsed_s']} s"
    )
    for line in broadcast_bench.describe(report):
        console.print(line, highlight=False)
    if busy_warning(report):
        console.print(f"[bold yellow]warning:[/] {busy_warning(report)}")


BUSY_LOAD = 1.0
"""1-minute load average above which other work was running when the bench started
(the bench itself keeps at most two processes busy, and none at the start)."""


def busy_warning(report: dict[str, Any]) -> str:
    """A warning when other processes competed for the CPUs, else ''."""
    load = report["machine"].get("load_avg") or [0.0]
    if load[0] < BUSY_LOAD:
        return ""
    return (
        f"load average was {load[0]} when the run started: other processes competed for "
        "the CPUs (see the CPU% column); figures and ratios are unreliable, rerun when idle"
    )


def markdown_table(report: dict[str, Any]) -> str:
    """The same table as GitHub markdown (for BENCHMARKS.md)."""
    lines = [
        "| workload | subject | median | unit | ÷ raw-tcp | ÷ raw-aead | ÷ py-libp2p "
        "| CPU% srv/cli | min..max |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|",
    ]
    for row in report["rows"]:
        unit = f"{row['unit']} {'↑' if row['higher_is_better'] else '↓'}"
        spread = ""
        if row["min"] is not None and len(row["samples"]) > 1:
            spread = f"{fmt_value(row['min'], row['unit'])}..{fmt_value(row['max'], row['unit'])}"
        value = fmt_value(row["median"], row["unit"])
        if row["problems"]:
            value += " (" + "; ".join(p.splitlines()[0][:60] for p in row["problems"]) + ")"
        cells = [
            row["metric"], row["subject"], value, unit,
            "" if row["subject"] == "raw-tcp" else fmt_ratio(row["vs_raw_tcp"]),
            "" if row["subject"] == "raw-aead" else fmt_ratio(row["vs_raw_aead"]),
            fmt_ratio(row["vs_py_libp2p"]) if row["subject"].startswith("peerwire") else "",
            fmt_cpu(row), spread,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def progress_line(sample: Sample) -> str:
    if sample.error:
        what = "n/a: " + sample.na if sample.na else "FAILED: " + sample.error.splitlines()[0]
    else:
        what = ", ".join(f"{k}={v:g}" for k, v in sample.values.items())
    return f"round {sample.round} {sample.workload:<14} {sample.subject:<16} {what}"


def run_and_print(opts: BenchOptions, *, as_json: bool, markdown: bool = False) -> int:
    """Run the benchmark, print the table (or JSON, or markdown); 1 if a measurement failed."""
    err = Console(stderr=True)
    report = run_bench(opts, progress=lambda s: err.print(progress_line(s), highlight=False))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    elif markdown:
        sys.stdout.write(markdown_table(report))
    else:
        console = Console()
        if not console.is_terminal:  # a file or pipe: do not squeeze the table into 80 columns
            console = Console(width=150)
        render_table(report, console)
    failed = any(s["error"] and not s["na"] for s in report["samples"])
    return 1 if failed else 0


def _csv(value: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what}: {bad}; choose from {allowed}")
    return items


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/run.py", description="peerwire vs raw asyncio vs py-libp2p"
    )
    p.add_argument("--runs", type=int, default=3, help="rounds (default 3; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="1 round, small counts (< ~40 s)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.add_argument("--pylibp2p-python", default=None, help="a Python with libp2p installed")
    p.add_argument("--no-uvloop", action="store_true", help="default asyncio loop everywhere")
    p.add_argument("--no-pin-rtt", action="store_true", help="do not pin rtt-1k to CPU 0")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every count (tests)")
    p.add_argument(
        "--workloads",
        type=lambda v: _csv(v, ALL_WORKLOADS, "workloads"),
        default=_wire.WORKLOADS,
        help="comma-separated subset of: " + ",".join(ALL_WORKLOADS) + " (default: all but bcast)",
    )
    p.add_argument(
        "--bcast-nodes",
        type=int,
        default=broadcast_bench.DEFAULT_NODES,
        help="bcast: nodes in the ring, one process each (default 16)",
    )
    p.add_argument(
        "--bcast-size",
        type=int,
        default=broadcast_bench.DEFAULT_SIZE,
        help="bcast: payload bytes per broadcast (default 1024, as nnet)",
    )
    p.add_argument(
        "--bcast-seconds",
        type=float,
        default=None,
        help="bcast: sending window per mode (default 10; --quick: 3)",
    )
    p.add_argument(
        "--bcast-senders",
        type=int,
        default=0,
        help="bcast: nodes that send (default 0 = all; 1 = nnet's layout)",
    )
    p.add_argument(
        "--subjects",
        type=lambda v: _csv(v, SUBJECTS, "subjects"),
        default=SUBJECTS,
        help="comma-separated subset of: " + ",".join(SUBJECTS),
    )
    return p


def options(
    *,
    runs: int,
    quick: bool,
    pylibp2p_python: str | None,
    no_uvloop: bool,
    no_pin_rtt: bool,
    scale: float,
    workloads: tuple[str, ...],
    subjects: tuple[str, ...],
    bcast_nodes: int = broadcast_bench.DEFAULT_NODES,
    bcast_size: int = broadcast_bench.DEFAULT_SIZE,
    bcast_seconds: float | None = None,
    bcast_senders: int = 0,
) -> BenchOptions:
    """Options from command-line values (``--quick`` means one round unless --runs is given)."""
    return BenchOptions(
        runs=max(1, runs),
        quick=quick,
        scale=scale,
        uvloop=not no_uvloop,
        pin_rtt=not no_pin_rtt,
        pylibp2p_python=pylibp2p_python,
        workloads=workloads,
        subjects=subjects,
        bcast_nodes=bcast_nodes,
        bcast_size=bcast_size,
        bcast_seconds=bcast_seconds,
        bcast_senders=bcast_senders,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        broadcast_bench.BcastParams(
            nodes=args.bcast_nodes, size=args.bcast_size, seconds=args.bcast_seconds or 1.0,
            senders=args.bcast_senders,
        )  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))
    runs = args.runs
    given = argv if argv is not None else sys.argv[1:]
    if args.quick and not any(a == "--runs" or a.startswith("--runs=") for a in given):
        runs = 1
    opts = options(
        runs=runs,
        quick=args.quick,
        pylibp2p_python=args.pylibp2p_python,
        no_uvloop=args.no_uvloop,
        no_pin_rtt=args.no_pin_rtt,
        scale=args.scale,
        workloads=args.workloads,
        subjects=args.subjects,
        bcast_nodes=args.bcast_nodes,
        bcast_size=args.bcast_size,
        bcast_seconds=args.bcast_seconds,
        bcast_senders=args.bcast_senders,
    )
    return run_and_print(opts, as_json=args.json, markdown=args.markdown)
