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
            "rounds median / p95 / max",
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
        ("messages per node", _num(s["messages_per_node"], "{:.1f}")),
        ("packets per node", _num(s["packets_per_node"], "{:.0f}")),
        ("simulated time", _secs(s["sim_time"])),
        ("wall time (CPU time)", f"{_secs(s['wall_time'])} ({_secs(s['cpu_time'])})"),
        ("memory per node (peak)", _mem(s["memory_per_node"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _matrix(results: Sequence[ScenarioResult]) -> Table:
    table = Table(title=f"peerwire sim matrix ({len(results)} scenarios)")
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
        "wall (cpu)",
        "mem/node",
    ):
        table.add_column(name, justify="left" if name == "faults" else "right")
    for result in results:
        s = result.summary()
        sc = result.scenario
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
    """Save the FIND_NODE round distribution and the lookup-time CDF to ``path`` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError(_MISSING_MATPLOTLIB) from exc
    out = Path(path)
    fig, (hops, cdf) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(1, len(results))
    for i, result in enumerate(results):
        sc = result.scenario
        label = f"N={sc.nodes} boot={sc.boot} {sc.fault_label} ({result.crypto})"
        rounds = result.lookup_rounds
        if rounds:
            top = max(rounds)
            counts = [rounds.count(r) / len(rounds) for r in range(top + 1)]
            offsets = [r - 0.4 + width * (i + 0.5) for r in range(top + 1)]
            hops.bar(offsets, counts, width=width, label=label)
        times = sorted(result.lookup_times)
        if times:
            fractions = [(i + 1) / len(times) for i in range(len(times))]
            cdf.step(times, fractions, where="post", label=label)
    hops.set_title("FIND_NODE rounds per lookup")
    hops.xaxis.get_major_locator().set_params(integer=True)
    hops.set_xlabel("rounds")
    hops.set_ylabel("fraction of lookups")
    cdf.set_title("lookup time CDF (successful lookups)")
    cdf.set_xlabel("simulated seconds")
    cdf.set_ylabel("fraction of lookups")
    for ax in (hops, cdf):
        ax.grid(alpha=0.3)
        if len(results) <= 8:
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
