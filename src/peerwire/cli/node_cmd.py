"""The long-running ``peerwire node`` and the one-shot ``peerwire ping``."""

from __future__ import annotations

import statistics

import click

from ..identity.identity import Identity
from ..mux.session import MuxedConnection
from ..mux.stream import Stream
from ..node import Node
from .main import emit, wait_for_signal

ECHO_PROTOCOL = "/echo/1.0.0"


async def serve_echo(stream: Stream) -> None:
    """Echo everything back until the remote half-closes, then close."""
    total = 0
    while data := await stream.read(65536):
        total += len(data)
        await stream.write(data)
    await stream.close_write()


def _conn_fields(conn: MuxedConnection) -> dict[str, object]:
    return {
        "peer_id": str(conn.remote_peer),
        "addr": str(conn.raw.remote_addr),
        "direction": conn.direction,
        "security": conn.security_protocol,
        "muxer": conn.muxer_protocol,
    }


async def run_node(
    ident: Identity,
    listen: list[str],
    bootstrap: list[str],
    overlay: str | None,
    echo: bool,
    as_json: bool,
) -> None:
    node = Node(ident, listen, overlay=overlay)  # bootstrap below, reported as events
    if echo:
        node.set_stream_handler(ECHO_PROTOCOL, serve_echo)
    if as_json:
        node.host.connection_callbacks.append(lambda c: emit("connected", **_conn_fields(c)))
        node.host.disconnection_callbacks.append(
            lambda c: emit("disconnected", peer_id=str(c.remote_peer))
        )
    await node.start()
    try:
        if as_json:
            emit("listening", peer_id=str(node.peer_id), addrs=[str(a) for a in node.addrs])
        else:
            click.echo(f"peer id: {node.peer_id}")
            for addr in node.addrs:
                click.echo(f"listening on {addr}")
        reached = []
        for boot in bootstrap:
            try:
                peer = await node.connect(boot)
            except Exception as exc:
                if as_json:
                    emit("error", what="bootstrap", addr=boot, error=str(exc))
                else:
                    click.echo(f"bootstrap {boot} failed: {exc}", err=True)
            else:
                reached.append(peer)
                if not as_json:
                    click.echo(f"connected to {peer}")
        if node.overlay is not None and reached:
            # Node.start ran without bootstrap peers (so each dial is reported
            # above); join the overlay through the ones that answered now.
            await node.overlay.join(reached)
            if as_json:
                emit("joined", overlay=overlay, neighbours=len(node.overlay.neighbours()))
            else:
                click.echo(f"joined the {overlay} overlay through {len(reached)} peer(s)")
        await wait_for_signal()
    finally:
        await node.stop()
        if as_json:
            emit("stopped")


async def run_ping(addr: str, count: int, as_json: bool) -> int:
    async with Node() as node:
        try:
            peer = await node.connect(addr)
            from ..protocols.ping import ping

            rtts = await ping(node.host, peer, count=count)
        except Exception as exc:
            if as_json:
                emit("result", ok=False, error=f"{type(exc).__name__}: {exc}")
            else:
                click.echo(f"ping failed: {type(exc).__name__}: {exc}", err=True)
            return 1
        if as_json:
            emit("result", ok=True, peer_id=str(peer), rtts_ms=[r * 1000 for r in rtts])
        else:
            for i, rtt in enumerate(rtts, 1):
                click.echo(f"ping {i}: {rtt * 1000:.3f} ms from {peer}")
            click.echo(f"median {statistics.median(rtts) * 1000:.3f} ms over {len(rtts)} pings")
        return 0
