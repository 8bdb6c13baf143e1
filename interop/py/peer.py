"""py-libp2p interop peer for peerwire's tests.

Runs inside its own venv (``.interop/pylibp2p-venv``, made by ``interop/setup.sh``) because
py-libp2p is trio-based and drags in a large dependency tree that must never leak into the
project venv. The command-line contract is shared with ``interop/js/peer.mjs`` and documented
in ``interop/README.md``; peerwire's tests parse the JSON lines this prints on stdout, so the
event names and fields here are an interface, not log text.

Only Noise is offered for security and only the muxer named by ``--muxer`` is offered, so a
successful run proves that exact combination interoperates (py-libp2p would otherwise also
offer TLS/secio/plaintext and fall back between yamux and mplex).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair as new_ed25519_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host import basic_host
from libp2p.host.ping import ID as PING_ID
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.identity.identify.identify import ID as IDENTIFY_ID
from libp2p.identity.identify.identify import parse_identify_response
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

ECHO_PROTOCOL = TProtocol("/echo/1.0.0")
#: Chunk size for echo writes/reads: small enough to exercise muxer framing and flow control.
CHUNK = 64 * 1024
#: An identify message is a few KiB; anything far larger means the remote is misbehaving.
MAX_IDENTIFY_BYTES = 1 << 20
#: Grace period for an orderly shutdown before the process is forcibly ended.
SHUTDOWN_GRACE_S = 5.0

log = logging.getLogger("interop.py-peer")


def emit(**event: Any) -> None:
    """Write one JSON event line to stdout and flush it so a reading test sees it at once."""
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def hard_exit(code: int) -> None:
    """Leave without waiting for library threads or trio system tasks that may linger."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="py-libp2p interop peer (see interop/README.md)")
    p.add_argument("--listen", help="multiaddr to listen on, e.g. /ip4/127.0.0.1/tcp/0")
    p.add_argument("--dial", help="/ip4/.../tcp/N/p2p/<peer id> to dial")
    p.add_argument("--muxer", choices=("yamux", "mplex"), default="yamux")
    p.add_argument("--seed", help="64 hex chars: Ed25519 private key seed")
    p.add_argument("--echo-bytes", type=int, default=1048576)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    if not args.listen and not args.dial:
        p.error("give --listen and/or --dial")
    if args.seed is not None:
        try:
            seed = bytes.fromhex(args.seed)
        except ValueError:
            p.error("--seed must be hex")
        if len(seed) != 32:
            p.error("--seed must be 64 hex chars (32 bytes)")
        args.seed = seed
    if args.echo_bytes < 0:
        p.error("--echo-bytes must be >= 0")
    if args.timeout <= 0:
        p.error("--timeout must be > 0")
    return args


def stdin_is_watchable() -> bool:
    """Watch stdin only if it is a pipe, socket or terminal.

    A test harness that spawns us with stdin=/dev/null (or a regular file) would otherwise make
    the peer exit at once; in that case only --timeout bounds our life.
    """
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def start_stdin_watch(on_eof: Callable[[], None]) -> None:
    """Call ``on_eof`` (from a daemon thread) when stdin reaches end of file."""

    def run() -> None:
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        on_eof()

    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


class ConnectionNotifee(INotifee):
    """Reports every new connection as a ``connected`` event."""

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peer_id = getattr(conn.muxed_conn, "peer_id", None)
        emit(event="connected", peer_id=str(peer_id))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        pass

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        pass


def hook_automatic_identify() -> None:
    """Emit an ``identify`` event whenever py-libp2p's automatic identify completes.

    py-libp2p has no public identify event and does not keep the agent version in its
    peerstore, so we wrap the function BasicHost calls with each parsed identify message.
    """
    original: Callable[..., Awaitable[None]] = basic_host.update_peerstore_from_identify

    async def wrapped(peerstore: Any, peer_id: ID, identify_msg: Any) -> None:
        await original(peerstore, peer_id, identify_msg)
        emit(
            event="identify",
            peer_id=str(peer_id),
            agent_version=identify_msg.agent_version,
            protocols=list(identify_msg.protocols),
        )

    basic_host.update_peerstore_from_identify = wrapped  # type: ignore[assignment]


async def read_some(stream: INetStream, n: int) -> bytes:
    """Read up to ``n`` bytes; ``b""`` means the remote closed its write side."""
    try:
        return await stream.read(n)
    except StreamEOF:
        return b""


async def handle_echo(stream: INetStream) -> None:
    """Serve /echo/1.0.0: copy bytes back until the remote half-closes, then close."""
    total = 0
    try:
        while data := await read_some(stream, CHUNK):
            await stream.write(data)
            total += len(data)
        await stream.close()
    except Exception as exc:
        log.warning("echo handler failed after %d bytes: %r", total, exc)
        await stream.reset()
        return
    emit(event="echo", bytes=total)


async def do_ping(host: Any, peer_id: ID) -> float:
    stream = await host.new_stream(peer_id, [PING_ID])
    try:
        start = time.perf_counter()
        await perform_ping_roundtrip(stream)
        rtt_ms = (time.perf_counter() - start) * 1000.0
    finally:
        await stream.close()
    return round(rtt_ms, 3)


async def do_identify(host: Any, peer_id: ID) -> tuple[str, list[str]]:
    """Open /ipfs/id/1.0.0 ourselves: the responder writes one message, then closes."""
    stream = await host.new_stream(peer_id, [IDENTIFY_ID])
    buf = bytearray()
    try:
        while chunk := await read_some(stream, CHUNK):
            buf += chunk
            if len(buf) > MAX_IDENTIFY_BYTES:
                raise RuntimeError("identify response too large")
    finally:
        await stream.close()
    msg = parse_identify_response(bytes(buf))
    return msg.agent_version, list(msg.protocols)


async def do_echo(host: Any, peer_id: ID, nbytes: int) -> int:
    """Echo round trip in lock-step: write one chunk, read its echo back, repeat.

    Not a writer task plus a reader task: py-libp2p 0.8.1's mplex stream holds its
    read/write lock while a read waits for data, so a concurrent write on the same stream
    blocks until data arrives, which it never does (it deadlocks whenever trio happens to
    schedule the reader first). Lock-step keeps one operation in flight at a time.
    """
    payload = os.urandom(nbytes)
    received = bytearray()
    stream = await host.new_stream(peer_id, [ECHO_PROTOCOL])
    for off in range(0, nbytes, CHUNK):
        chunk = payload[off : off + CHUNK]
        await stream.write(chunk)
        want = off + len(chunk)
        while len(received) < want:
            data = await read_some(stream, CHUNK)
            if not data:
                raise RuntimeError(f"echo stream ended after {len(received)} of {nbytes} bytes")
            received.extend(data)
        if len(received) > want:
            raise RuntimeError(f"echo returned {len(received)} bytes, only {want} sent so far")
    await stream.close_write()
    while data := await read_some(stream, CHUNK):
        received.extend(data)
        if len(received) > nbytes:
            raise RuntimeError(f"echo returned more than {nbytes} bytes")
    await stream.close()
    if bytes(received) != payload:
        raise RuntimeError(f"echo mismatch: sent {nbytes} bytes, got {len(received)} back")
    return len(received)


async def dial_sequence(host: Any, target: str, echo_bytes: int) -> dict[str, Any]:
    info = info_from_p2p_addr(multiaddr.Multiaddr(target))
    await host.connect(info)
    peer_id = info.peer_id
    rtt_ms = await do_ping(host, peer_id)
    agent_version, protocols = await do_identify(host, peer_id)
    echoed = await do_echo(host, peer_id, echo_bytes)
    conns = host.get_network().get_connections(peer_id)
    muxer = conns[0].get_negotiated_muxer_protocol() if conns else None
    return {
        "event": "result",
        "ok": True,
        "peer_id": str(peer_id),
        "rtt_ms": rtt_ms,
        "agent_version": agent_version,
        "protocols": protocols,
        "echo_bytes": echoed,
        "muxer": muxer,
    }


async def amain(args: argparse.Namespace) -> int:
    key_pair = new_ed25519_key_pair(args.seed) if args.seed else new_ed25519_key_pair()
    if args.muxer == "yamux":
        muxer_opt: Any = {TProtocol(YAMUX_PROTOCOL_ID): Yamux}
    else:
        muxer_opt = {TProtocol(MPLEX_PROTOCOL_ID): Mplex}
    sec_opt: Any = {
        NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
    }
    listen_addrs = [multiaddr.Multiaddr(args.listen)] if args.listen else []
    hook_automatic_identify()
    host = new_host(
        key_pair=key_pair,
        muxer_opt=muxer_opt,
        sec_opt=sec_opt,
        listen_addrs=listen_addrs or None,
    )
    host.set_stream_handler(ECHO_PROTOCOL, handle_echo)
    host.get_network().register_notifee(ConnectionNotifee())

    exit_code = 0
    result_printed = False
    stop_reason = "timeout"
    trio_token = trio.lowlevel.current_trio_token()

    with trio.move_on_after(args.timeout) as deadline:
        if stdin_is_watchable():

            def on_eof() -> None:
                nonlocal stop_reason
                stop_reason = "stdin closed"
                try:
                    trio_token.run_sync_soon(deadline.cancel)
                except trio.RunFinishedError:
                    pass

            start_stdin_watch(on_eof)
        else:
            log.info("stdin is not a pipe/tty: only --timeout bounds this peer")

        async with host.run(listen_addrs=listen_addrs):
            if args.listen:
                p2p = f"/p2p/{host.get_id()!s}"
                addrs = [str(a) + p2p for a in host.get_transport_addrs()]
                emit(event="listening", peer_id=str(host.get_id()), addrs=addrs)
            if args.dial:
                try:
                    result = await dial_sequence(host, args.dial, args.echo_bytes)
                except Exception as exc:
                    log.exception("dial sequence failed")
                    emit(event="result", ok=False, error=f"{type(exc).__name__}: {exc}")
                    exit_code = 1
                else:
                    emit(**result)
                result_printed = True
                if not args.listen:
                    deadline.cancel()
            await trio.sleep_forever()

    if args.dial and not result_printed:
        emit(event="result", ok=False, error=stop_reason)
        exit_code = 1
    log.info("exiting (%s), code %d", "done" if result_printed else stop_reason, exit_code)
    return exit_code


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("INTEROP_LOG", "WARNING").upper(),
        stream=sys.stderr,
        format="py-peer %(levelname)s %(name)s: %(message)s",
    )
    args = parse_args()
    # Last-resort guard: whatever hangs during shutdown, the process is gone shortly after
    # --timeout, so a crashed test can never leak peers.
    guard = threading.Timer(args.timeout + SHUTDOWN_GRACE_S, hard_exit, args=(1,))
    guard.daemon = True
    guard.start()
    try:
        code = trio.run(amain, args)
    except BaseException as exc:
        log.exception("peer crashed")
        if args.dial:
            emit(event="result", ok=False, error=f"{type(exc).__name__}: {exc}")
        code = 1
    hard_exit(code)


if __name__ == "__main__":
    main()
