"""``peerwire``: run nodes, inspect identities, ping peers, show the demo."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

import click
from rich.console import Console

from .._runtime import run
from ..errors import PeerwireError
from ..identity.identity import Identity

DEFAULT_KEY_FILE = Path(os.environ.get("PEERWIRE_KEY", "~/.peerwire/identity.key")).expanduser()


def _setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level.upper(),
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=_stderr_console(), show_path=False)],
    )


def _stderr_console() -> Console:
    return Console(stderr=True)


def _identity(key: str | None, seed: str | None) -> Identity:
    if key and seed:
        raise click.UsageError("give --key or --seed, not both")
    if seed:
        try:
            raw = bytes.fromhex(seed)
        except ValueError as exc:
            raise click.BadParameter("--seed must be 64 hex characters") from exc
        if len(raw) != 32:
            raise click.BadParameter("--seed must be 64 hex characters (32 bytes)")
        return Identity.from_seed(raw)
    if key:
        return Identity.load_or_create(key)
    return Identity.generate()


@click.group()
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.version_option(package_name="peerwire")
def main(log_level: str) -> None:
    """peerwire: a fast, secure peer-to-peer network stack that speaks libp2p."""
    _setup_logging(log_level)


@main.command("id")
@click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=str(DEFAULT_KEY_FILE),
    show_default=True,
    help="Key file (libp2p PrivateKey protobuf); created if missing.",
)
def id_command(key: str) -> None:
    """Print the peer id of a key file (creating the key if it is missing)."""
    Path(key).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        ident = Identity.load_or_create(key)
    except PeerwireError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(ident.peer_id))


@main.command("node")
@click.option("--listen", "listen", multiple=True, help="Multiaddr to listen on (repeatable).")
@click.option("--key", type=click.Path(dir_okay=False), help="Key file; created if missing.")
@click.option("--seed", help="32-byte Ed25519 seed as hex (deterministic peer id).")
@click.option("--bootstrap", multiple=True, help="Peer to connect to at start (repeatable).")
@click.option("--overlay", type=click.Choice(["chord", "kademlia"]), default=None)
@click.option("--echo", is_flag=True, help="Serve /echo/1.0.0.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON event per line.")
def node_command(
    listen: tuple[str, ...],
    key: str | None,
    seed: str | None,
    bootstrap: tuple[str, ...],
    overlay: str | None,
    echo: bool,
    as_json: bool,
) -> None:
    """Run a node until interrupted."""
    from .node_cmd import run_node

    ident = _identity(key, seed)
    try:
        run(
            run_node(
                ident,
                list(listen) or ["/ip4/127.0.0.1/tcp/0"],
                list(bootstrap),
                overlay,
                echo,
                as_json,
            )
        )
    except PeerwireError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


@main.command("ping")
@click.argument("multiaddr")
@click.option("--count", "-c", default=3, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def ping_command(multiaddr: str, count: int, as_json: bool) -> None:
    """Connect to MULTIADDR and ping it COUNT times (libp2p ping)."""
    from .node_cmd import run_ping

    try:
        code = run(run_ping(multiaddr, count, as_json))
    except PeerwireError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    sys.exit(code)


@main.command("bench")
@click.option("--runs", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option("--quick", is_flag=True, help="One round with small counts (< ~40 s).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--markdown", is_flag=True, help="Print the table as markdown.")
@click.option(
    "--pylibp2p-python",
    type=click.Path(exists=True, dir_okay=False),
    help="A Python with libp2p installed: adds py-libp2p to the comparison.",
)
@click.option("--no-uvloop", is_flag=True, help="Use the default asyncio loop everywhere.")
@click.option("--no-pin-rtt", is_flag=True, help="Do not pin rtt-1k's processes to CPU 0.")
@click.option(
    "--scale", default=1.0, show_default=True, type=click.FloatRange(0, None, min_open=True)
)
@click.option(
    "--workloads",
    default="",
    help="Comma-separated subset of the workloads (bcast, the 16-process broadcast "
    "benchmark, runs only when named).",
)
@click.option("--subjects", default="", help="Comma-separated subset of the subjects.")
@click.option("--bcast-nodes", default=16, show_default=True, type=click.IntRange(2, 64),
              help="bcast: nodes in the Chord ring, one OS process each.")  # fmt: skip
@click.option("--bcast-size", default=1024, show_default=True, type=click.IntRange(1, None),
              help="bcast: payload bytes per broadcast (nnet's default).")  # fmt: skip
@click.option("--bcast-seconds", type=click.FloatRange(0, None, min_open=True),
              help="bcast: sending window per mode [default: 10; 3 with --quick].")  # fmt: skip
@click.option("--bcast-senders", default=0, show_default=True, type=click.IntRange(0, 64),
              help="bcast: nodes that broadcast (0: all; 1: nnet's layout).")  # fmt: skip
def bench_command(**opts: object) -> None:
    """Measure peerwire against raw asyncio baselines (and py-libp2p) side by side."""
    from ..bench import report

    ctx = click.get_current_context()
    argv = [f"--{k.replace('_', '-')}={v}" for k, v in opts.items() if type(v) is not bool and v]
    argv += [f"--{k.replace('_', '-')}" for k, v in opts.items() if v is True]
    if opts["quick"] and ctx.get_parameter_source("runs") is click.core.ParameterSource.DEFAULT:
        argv = [a for a in argv if not a.startswith("--runs=")] + ["--runs=1"]
    argv = [a.replace("--as-json", "--json") for a in argv]
    sys.exit(report.main(argv))


from ..sim.cli import sim_command  # noqa: E402 (click only; the simulator loads when run)

main.add_command(sim_command)


@main.command("demo")
@click.option("--nodes", "-n", default=5, show_default=True, type=click.IntRange(2, 64))
@click.option(
    "--ring-nodes",
    default=16,
    show_default=True,
    type=click.IntRange(0, 128),
    help="Size of the Chord ring for the overlay part (0 skips it).",
)
def demo_command(nodes: int, ring_nodes: int) -> None:
    """A local network over TCP: what it negotiated, its Chord ring, relay and broadcast."""
    from .demo import run_demo

    try:
        run(run_demo(nodes, ring_nodes=ring_nodes))
    except PeerwireError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


def emit(event: str, **fields: object) -> None:
    """Print one JSON event line and flush (machine-readable CLI output)."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def wait_for_signal() -> None:
    """Return when SIGINT or SIGTERM arrives (or stdin is closed under --json)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
