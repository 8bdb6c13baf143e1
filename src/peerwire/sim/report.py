"""Scenario results as a rich table, JSON, or a plot (matplotlib, optional).

Every output says which security the nodes ran (``noise`` or ``plaintext``
with ``--fast-crypto``), since handshake cost changes wall time and memory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import UsageError
from .scenarios import ScenarioResult

__all__ = ["check_plotting", "plot", "render", "to_json"]

_MISSING_MATPLOTLIB = (
    "--plot needs matplotlib, an optional extra: pip install 'peerwire[plot]' "
    "(or pip install matplotlib)"
)


def _num(value: Any, fmt: str = "{:.0f}", unit: str = "") -> str:
    if value is None:
        return "-"
    return fmt.format(value) + unit


def _pct(value: float | None) -> str:
    return _num(value, "{:.1f}", "%")


def _secs(value: float | None) -> str:
    return _num(value, "{:.2f}", " s")


def _mem(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.0f} KiB"


def _per_message(value: float | None) -> str:
    return _num(value, "{:.1f}")


def _flow_rows(result: ScenarioResult) -> list[tuple[str, str]]:
    """Rows of the relay and broadcast flows (none when they did not run)."""
    s = result.summary()
    rows: list[tuple[str, str]] = []
    relay = result.relay
    if relay.attempted or relay.skipped:
        rows += [
            ("routes (skipped)", f"{s['routes']} ({s['routes_skipped']})"),
            (
                "route delivered at owner (anywhere)",
                f"{_pct(s['route_pct'])} ({_pct(s['route_delivered_pct'])})",
            ),
            ("route misdelivered / refused", f"{s['route_misdelivered']} / {s['route_refused']}"),
            (
                "route hops med / p95 / max (log2 N)",
                f"{_num(s['route_hops_median'])} / {_num(s['route_hops_p95'])} / "
                f"{_num(s['route_hops_max'])} ({_num(s['route_log2_nodes'], '{:.2f}')})",
            ),
            (
                "route time median / p95",
                f"{_secs(s['route_time_median'])} / {_secs(s['route_time_p95'])}",
            ),
        ]
    for mode, out in result.broadcast.items():
        p = f"broadcast_{mode}_"
        name = f"{mode} x{out.copies}" if out.copies > 1 else mode
        rows += [
            (
                f"{name}: coverage mean / min (full)",
                f"{_pct(s[p + 'coverage_pct'])} / {_pct(s[p + 'coverage_min_pct'])} "
                f"({s[p + 'full']}/{s[p + 'count']})",
            ),
            (
                f"{name}: deliveries per msg / N-1",
                f"{_per_message(s[p + 'deliveries_per_message'])} / {s[p + 'receivers']}",
            ),
            (
                f"{name}: duplicates / frames per msg",
                f"{_per_message(s[p + 'duplicates_per_message'])} / "
                f"{_per_message(s[p + 'frames_per_message'])}",
            ),
        ]
        if mode == "pull":
            rows.append((f"{name}: bodies per msg", _per_message(s[p + "bodies_per_message"])))
        rows.append(
            (
                f"{name}: hops max, time to all (median)",
                f"{_num(s[p + 'hops_max'])}, {_secs(s[p + 'time_median'])}",
            )
        )
    return rows


def _detail(result: ScenarioResult) -> Table:
    s = result.summary()
    sc = result.scenario
    link = sc.link
    table = Table(title=f"peerwire sim: {sc.nodes} nodes, {sc.overlay}, seed {sc.seed}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("boot nodes", str(sc.boot)),
        ("bucket size / count", f"{_num(sc.bucket_size)} / {_num(sc.bucket_count)}"),
        ("security", result.crypto),
        ("memory allocator", s["allocator"]),
        (
            "link",
            f"{link.latency * 1000:g} ms +{link.jitter * 1000:g} ms jitter, "
            f"loss {link.loss:g}, "
            + ("unlimited" if link.bandwidth is None else f"{link.bandwidth:g} B/s"),
        ),
        ("faults", s["faults"]),
        (
            "max connections / idle timeout",
            f"{sc.connection_limit} / "
            + ("default" if sc.idle_timeout is None else f"{sc.idle_timeout:g} s"),
        ),
        ("live nodes", f"{s['live_nodes']} ({result.crashed} crashed)"),
        ("bootstrapped (live)", _pct(s["bootstrap_pct"])),
        ("bootstrap time median", _secs(s["bootstrap_time_median"])),
        ("lookups (skipped: no unknown target)", f"{s['lookups']} ({s['lookups_skipped']})"),
        ("lookup success", _pct(s["lookup_pct"])),
        (
            # Kademlia: iterative FIND_NODE rounds; Chord: nodes the recursive request visited.
            "hops median / p95 / max" if sc.overlay == "chord" else "rounds median / p95 / max",
            f"{_num(s['rounds_median'])} / {_num(s['rounds_p95'])} / {_num(s['rounds_max'])}",
        ),
        ("messages per lookup median", _num(s["messages_per_lookup_median"])),
        (
            "lookup time median / p95",
            f"{_secs(s['lookup_time_median'])} / {_secs(s['lookup_time_p95'])}",
        ),
        ("sends: lookup, dial, deliver (skipped)", f"{s['sends']} ({s['sends_skipped']})"),
        ("send success", _pct(s["send_pct"])),
        ("send time median", _secs(s["send_time_median"])),
        *_flow_rows(result),
        ("messages per node", _num(s["messages_per_node"], "{:.1f}")),
        ("packets per node", _num(s["packets_per_node"], "{:.0f}")),
        ("simulated time", _secs(s["sim_time"])),
        (
            "wall time (CPU time)" + (f", {sc.shards} processes" if sc.shards > 1 else ""),
            f"{_secs(s['wall_time'])} ({_secs(s['cpu_time'])})",
        ),
        ("memory per node (peak)", _mem(s["memory_per_node"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _coverages(result: ScenarioResult) -> str:
    return "/".join(f"{out.coverage_pct:.0f}" for out in result.broadcast.values() if out.coverage)


def _matrix(results: Sequence[ScenarioResult]) -> Table:
    table = Table(title=f"peerwire sim matrix ({len(results)} scenarios)")
    relay = any(r.relay.attempted for r in results)
    modes = next((list(r.broadcast) for r in results if r.broadcast), [])
    flow_columns = (["route %", "hops med/max"] if relay else []) + (
        [f"cov % {'/'.join(modes)}"] if modes else []
    )
    for name in (
        "N",
        "boot",
        "k/b",
        "faults",
        "sec",
        "boot %",
        "lookup %",
        "rounds med/max",
        "msgs/lookup",
        "lookup s med/p95",
        "send %",
        "msgs/node",
        *flow_columns,
        "wall (cpu)",
        "mem/node",
    ):
        table.add_column(name, justify="left" if name == "faults" else "right")
    for result in results:
        s = result.summary()
        sc = result.scenario
        flows = (
            [_pct(s["route_pct"]), f"{_num(s['route_hops_median'])}/{_num(s['route_hops_max'])}"]
            if relay
            else []
        ) + ([_coverages(result) or "-"] if modes else [])
        table.add_row(
            str(sc.nodes),
            str(sc.boot),
            f"{_num(sc.bucket_size)}/{_num(sc.bucket_count)}",
            s["faults"],
            result.crypto,
            _pct(s["bootstrap_pct"]),
            _pct(s["lookup_pct"]),
            f"{_num(s['rounds_median'])}/{_num(s['rounds_max'])}",
            _num(s["messages_per_lookup_median"]),
            f"{_num(s['lookup_time_median'], '{:.2f}')}/{_num(s['lookup_time_p95'], '{:.2f}')}",
            _pct(s["send_pct"]),
            _num(s["messages_per_node"], "{:.1f}"),
            *flows,
            f"{s['wall_time']:.0f} ({s['cpu_time']:.0f}) s",
            _mem(s["memory_per_node"]),
        )
    return table


def render(results: Sequence[ScenarioResult], console: Console | None = None) -> None:
    """Print one scenario as a detailed table, several as one row each."""
    console = console or Console()
    if len(results) == 1:
        console.print(_detail(results[0]))
    else:
        console.print(_matrix(results))


def to_json(results: Sequence[ScenarioResult]) -> str:
    """One JSON document: ``{"results": [{"scenario", "summary", "metrics", "phases"}...]}``."""
    return json.dumps({"results": [r.to_dict() for r in results]}, indent=2)


def check_plotting() -> None:
    """UsageError now (before a long run) if :func:`plot` would fail for want of matplotlib."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(_MISSING_MATPLOTLIB)


def plot(results: Sequence[ScenarioResult], path: str | Path) -> Path:
    """Save the FIND_NODE round distribution and the lookup-time CDF to ``path`` (PNG),
    and, when the route flow ran, the distribution of relay hops (with log2 N marked)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError(_MISSING_MATPLOTLIB) from exc
    out = Path(path)
    relayed = any(r.relay.hops for r in results)
    fig, axes = plt.subplots(1, 3 if relayed else 2, figsize=(16, 4.2) if relayed else (11, 4.2))
    hops, cdf = axes[0], axes[1]
    width = 0.8 / max(1, len(results))
    for i, result in enumerate(results):
        label = _label(result)
        _bars(hops, result.lookup_rounds, i, width, label)
        times = sorted(result.lookup_times)
        if times:
            fractions = [(i + 1) / len(times) for i in range(len(times))]
            cdf.step(times, fractions, where="post", label=label)
    if all(r.scenario.overlay == "chord" for r in results):
        hops.set_title("nodes visited per lookup (recursive)")
        hops.set_xlabel("hops")
    else:
        hops.set_title("FIND_NODE rounds per lookup")
        hops.set_xlabel("rounds")
    hops.set_ylabel("fraction of lookups")
    cdf.set_title("lookup time CDF (successful lookups)")
    cdf.set_xlabel("simulated seconds")
    cdf.set_ylabel("fraction of lookups")
    if relayed:
        relay = axes[2]
        for i, result in enumerate(results):
            color = _bars(relay, result.relay.hops, i, width, _label(result))
            log2 = result.summary()["route_log2_nodes"]
            if log2 is not None and color is not None:
                relay.axvline(log2, color=color, linestyle="--", linewidth=1)
        relay.set_title("relay hops per routed message (dashed: log2 N)")
        relay.set_xlabel("hops")
        relay.set_ylabel("fraction of delivered messages")
    for ax in axes:
        ax.grid(alpha=0.3)
        if len(results) <= 8 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _label(result: ScenarioResult) -> str:
    sc = result.scenario
    return f"N={sc.nodes} boot={sc.boot} {sc.fault_label} ({result.crypto})"


def _bars(ax: Any, values: Sequence[int], i: int, width: float, label: str) -> Any:
    """Draw the distribution of ``values`` as bars (series ``i``); returns their colour."""
    if not values:
        return None
    top = max(values)
    counts = [values.count(v) / len(values) for v in range(top + 1)]
    offsets = [v - 0.4 + width * (i + 0.5) for v in range(top + 1)]
    bars = ax.bar(offsets, counts, width=width, label=label)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return bars.patches[0].get_facecolor() if bars.patches else None
