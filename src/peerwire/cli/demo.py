"""``peerwire demo``: a small local network, shown as tables.

Starts N nodes on loopback TCP, connects every pair (Noise + yamux/mplex
negotiated per connection), runs identify and ping over each connection, and
prints what was negotiated and measured.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

from ..config import MPLEX, YAMUX, Config
from ..node import Node


async def run_demo(count: int, console: Console | None = None, ring_nodes: int = 16) -> None:
    # Full peer ids and addresses need ~110 columns; don't squeeze them into 80 in a pipe.
    console = console or (Console() if sys.stdout.isatty() else Console(width=120))
    # Alternate the muxer preference so the table shows both being negotiated.
    nodes = [
        Node(
            listen=["/ip4/127.0.0.1/tcp/0"],
            config=Config(muxers=(YAMUX, MPLEX) if i % 3 else (MPLEX, YAMUX)),
        )
        for i in range(count)
    ]
    started = time.perf_counter()
    await asyncio.gather(*(n.start() for n in nodes))
    try:
        console.print(
            f"[bold]Started {count} nodes[/] in {(time.perf_counter() - started) * 1000:.1f} ms"
        )
        pairs = [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1 :]]
        connect_times: list[float] = []

        async def connect(a: Node, b: Node) -> None:
            t0 = time.perf_counter()
            await a.connect(b.addrs[0])
            connect_times.append(time.perf_counter() - t0)

        await asyncio.gather(*(connect(a, b) for a, b in pairs))

        nodes_table = Table(title="Nodes")
        nodes_table.add_column("#", justify="right")
        nodes_table.add_column("peer id", no_wrap=True)
        nodes_table.add_column("listen address", no_wrap=True)
        nodes_table.add_column("peers", justify="right")
        for i, n in enumerate(nodes):
            nodes_table.add_row(
                str(i), str(n.peer_id), str(n.host.listen_addrs[0]), str(len(n.peers()))
            )
        console.print(nodes_table)

        conn_table = Table(title="Connections (dialer → listener)")
        for col in ("dialer", "listener", "security", "muxer", "remote agent", "RTT ms"):
            conn_table.add_column(col, justify="right" if "RTT" in col else "left", no_wrap=True)
        index = {n.peer_id: i for i, n in enumerate(nodes)}
        rtts: list[float] = []
        for a, b in pairs:
            conn = a.connection(b.peer_id)
            assert conn is not None
            info = await a.identify(b.peer_id)
            samples = [await a.ping(b.peer_id) for _ in range(3)]
            rtts.extend(samples)
            dialer, listener = (a, b) if conn.raw.is_initiator else (b, a)
            conn_table.add_row(
                f"#{index[dialer.peer_id]}",
                f"#{index[listener.peer_id]}",
                conn.security_protocol,
                conn.muxer_protocol,
                info.agent_version.split(" ")[0],
                f"{statistics.median(samples) * 1000:.3f}",
            )
        console.print(conn_table)
        console.print(
            f"{len(pairs)} connections; full handshake (TCP + Noise XX + muxer) median "
            f"{statistics.median(connect_times) * 1000:.2f} ms; ping RTT median "
            f"{statistics.median(rtts) * 1000:.3f} ms"
        )
    finally:
        await asyncio.gather(*(n.stop() for n in nodes))
    if ring_nodes:
        from .demo_overlay import run_overlay_demo

        await run_overlay_demo(ring_nodes, console)
