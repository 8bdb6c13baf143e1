"""``peerwire sim``: run a scenario (or the matrix) and print the table, JSON or a plot.

Only :mod:`click` is imported at module level: ``peerwire`` registers this
command at start-up, and the simulator loads only when the command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["sim_command"]


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from exc
    if not values:
        raise click.BadParameter("expected at least one integer")
    return values


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modes:
        raise click.BadParameter(
            "expected at least one broadcast mode", param_hint="--broadcast-modes"
        )
    return modes


_FRACTION = click.FloatRange(0.0, 1.0)


def _started_as_peerwire() -> bool:
    """True in a process started as the ``peerwire`` command (not, say, a test
    runner invoking the command in its own process): only that one may restart."""
    program = Path(sys.argv[0])
    return program.name == "peerwire" or program.parts[-3:] == ("peerwire", "cli", "__main__.py")


@click.command("sim")
@click.option("--nodes", "-n", default=100, show_default=True, type=click.IntRange(2, None))
@click.option("--boot", default=5, show_default=True, type=click.IntRange(1, None))
@click.option(
    "--overlay", default="kademlia", show_default=True, help="kademlia | chord | mesh | ..."
)
@click.option(
    "--bucket-size", type=click.IntRange(1, None), help="Kademlia k; Chord: nodes per finger list."
)
@click.option("--bucket-count", type=click.IntRange(1, 256), help="Kademlia bucket count.")
@click.option("--lookups", default=100, show_default=True, type=click.IntRange(0, None))
@click.option(
    "--sends",
    default=100,
    show_default=True,
    type=click.IntRange(0, None),
    help="Messages to nodes the sender does not know (lookup, dial, deliver).",
)
@click.option(
    "--routes",
    default=0,
    show_default=True,
    type=click.IntRange(0, None),
    help="Relayed messages (node.route) to random keys/nodes (chord, kademlia).",
)
@click.option(
    "--route-to",
    type=click.Choice(["keys", "nodes", "mixed"]),
    default="mixed",
    show_default=True,
    help="Route to random keys, to random live nodes' ids, or alternate.",
)
@click.option(
    "--broadcasts",
    default=0,
    show_default=True,
    type=click.IntRange(0, None),
    help="Broadcasts per mode (coverage, deliveries, duplicates, frames).",
)
@click.option(
    "--broadcast-modes",
    default="push,pull,tree",
    show_default=True,
    help="Comma-separated broadcast modes to run (tree needs --overlay chord).",
)
@click.option(
    "--tree-copies",
    default=1,
    show_default=True,
    type=click.IntRange(1, 255),
    help="Spanning trees per tree broadcast (copies=K).",
)
@click.option(
    "--flow-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, None, min_open=True),
    help="Simulated seconds a routed message or a broadcast is waited for.",
)
@click.option(
    "--loss",
    default=0.0,
    type=_FRACTION,
    help="Fraction of received requests/messages (relay, broadcast frames too) every node drops.",
)
@click.option("--delay", default=0.0, type=_FRACTION, help="Fraction of requests answered late.")
@click.option("--delay-by", default=2.0, show_default=True, type=click.FloatRange(0, None))
@click.option(
    "--disconnect", default=0.0, type=_FRACTION, help="Fraction of nodes crashed after start."
)
@click.option(
    "--disconnect-mode",
    type=click.Choice(["silent", "reset"]),
    default="silent",
    show_default=True,
    help="silent: the machine vanishes; reset: the process dies, peers see resets.",
)
@click.option("--latency", default=0.05, show_default=True, type=click.FloatRange(0, None))
@click.option("--jitter", default=0.01, show_default=True, type=click.FloatRange(0, None))
@click.option("--bandwidth", type=click.FloatRange(1, None), help="Bytes/s per connection.")
@click.option(
    "--link-loss",
    default=0.0,
    type=click.FloatRange(0.0, 0.99),
    help="Packet loss, modelled as TCP retransmission delay (no bytes are lost).",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(0, None),
    help="Close connections idle this long (s); bounds memory of large networks.",
)
@click.option(
    "--max-connections", type=click.IntRange(1, None), help="Per node; default: max(512, N+16)."
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--fast-crypto", is_flag=True, help="Plaintext instead of Noise (simulator only).")
@click.option(
    "--memory",
    type=click.Choice(["rss", "tracemalloc", "off"]),
    default="rss",
    show_default=True,
    help="How to measure memory per node (tracemalloc is exact but ~2-3x slower).",
)
@click.option("--matrix", is_flag=True, help="Run the Spacemesh matrix (nodes x boot x faults).")
@click.option("--matrix-nodes", default="10,100,1000", show_default=True)
@click.option("--matrix-boots", default="3,5,10", show_default=True)
@click.option("--fault-rate", default=0.1, show_default=True, type=_FRACTION)
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Scenarios run at once, each in its own process (a matrix on several cores).",
)
@click.option(
    "--shards",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes one simulation is spread over (up to one per core; needs --latency > 0).",
)
@click.option(
    "--huge-pages/--no-huge-pages",
    default=True,
    show_default=True,
    help="Restart once with glibc malloc on transparent huge pages (Linux, glibc 2.35+): "
    "faster large runs, a little more memory.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Save a PNG plot.")
def sim_command(
    nodes: int,
    boot: int,
    overlay: str,
    bucket_size: int | None,
    bucket_count: int | None,
    lookups: int,
    sends: int,
    routes: int,
    route_to: str,
    broadcasts: int,
    broadcast_modes: str,
    tree_copies: int,
    flow_timeout: float,
    loss: float,
    delay: float,
    delay_by: float,
    disconnect: float,
    disconnect_mode: str,
    latency: float,
    jitter: float,
    bandwidth: float | None,
    link_loss: float,
    idle_timeout: float | None,
    max_connections: int | None,
    seed: int,
    fast_crypto: bool,
    memory: str,
    matrix: bool,
    matrix_nodes: str,
    matrix_boots: str,
    fault_rate: float,
    jobs: int,
    shards: int,
    huge_pages: bool,
    as_json: bool,
    plot_path: str | None,
) -> None:
    """Simulate a network of real nodes on virtual time (deterministic per --seed)."""
    if huge_pages and _started_as_peerwire():
        from ._huge_pages import restart_with_huge_pages

        restart_with_huge_pages()
    from rich.console import Console

    from ..errors import PeerwireError
    from . import report
    from .network import LinkSpec
    from .scenarios import Scenario, ScenarioResult, simulate_all
    from .scenarios import matrix as make_matrix

    try:
        if plot_path:
            report.check_plotting()
        base = Scenario(
            nodes=nodes,
            boot=min(boot, nodes),
            overlay=overlay,
            bucket_size=bucket_size,
            bucket_count=bucket_count,
            lookups=lookups,
            sends=sends,
            routes=routes,
            route_to="keys" if route_to == "keys" else "nodes" if route_to == "nodes" else "mixed",
            broadcasts=broadcasts,
            broadcast_modes=_modes(broadcast_modes),
            tree_copies=tree_copies,
            flow_timeout=flow_timeout,
            drop=loss,
            delay=delay,
            delay_by=delay_by,
            disconnect=disconnect,
            disconnect_mode="reset" if disconnect_mode == "reset" else "silent",
            link=LinkSpec(latency=latency, jitter=jitter, bandwidth=bandwidth, loss=link_loss),
            idle_timeout=idle_timeout,
            max_connections=max_connections,
            seed=seed,
            fast_crypto=fast_crypto,
            shards=shards,
            memory="tracemalloc"
            if memory == "tracemalloc"
            else "off"
            if memory == "off"
            else "rss",
        )
        if matrix:
            scenarios = list(
                make_matrix(
                    base,
                    nodes=_int_list(matrix_nodes),
                    boots=_int_list(matrix_boots),
                    rate=fault_rate,
                )
            )
        else:
            scenarios = [base]
        progress = None if as_json or len(scenarios) == 1 else Console(stderr=True)
        results: list[ScenarioResult] = []
        if progress is not None and jobs > 1:
            progress.print(f"{len(scenarios)} scenarios, {jobs} at a time", highlight=False)
        for i, result in enumerate(simulate_all(scenarios, jobs=jobs, then_exit=True), start=1):
            results.append(result)
            if progress is not None:
                scenario = result.scenario
                progress.print(
                    f"[{i}/{len(scenarios)}] N={scenario.nodes} boot={scenario.boot} "
                    f"faults={scenario.fault_label}: {result.wall_time:.1f} s",
                    highlight=False,
                )
        if as_json:
            sys.stdout.write(report.to_json(results) + "\n")
        else:
            report.render(results)
        if plot_path:
            path = report.plot(results, plot_path)
            if not as_json:
                click.echo(f"plot saved to {path}")
    except PeerwireError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
