"""The ``peerwire`` and ``peerwire-stream`` benchmark workers: two Nodes, public API only.

Run as ``python -m peerwire.bench.peerwire_workloads --role server|client ...``
(the runner builds the command line; see :mod:`peerwire.bench._wire`). Each
process is a real :class:`peerwire.Node` over TCP + Noise + yamux with the
default :class:`peerwire.Config`, on uvloop when it is installed (as the CLI
does) unless ``--no-uvloop``.

``peerwire`` uses the messaging API a user would: ``@node.on`` handlers,
``node.send`` one-way, ``node.request`` for request/reply. ``peerwire-stream``
writes the payloads on one raw libp2p stream (``node.open_stream`` +
``stream.write``, no per-message envelope): the floor under the messaging
layer, measured for the one-way workloads only.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from .. import Identity, Message, Node
from .._runtime import run
from ..identity.peer_id import PeerId
from ..mux.stream import Stream
from . import _wire

LISTEN = "/ip4/127.0.0.1/tcp/0"
CONNECT_CONCURRENCY = 16
"""Connections opened at once by ``idle-conn-mem`` (under ``max_pending_handshakes``)."""
REQUEST_TIMEOUT = 30.0
READ_CHUNK = 1 << 20


def _loop_name() -> str:
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


# ----------------------------------------------------------------- server side
class Counter:
    """Counts one-way messages (or, on a raw stream, payload-sized chunks of bytes)."""

    def __init__(self, count: int, size: int) -> None:
        self.count = count
        self.size = size
        self.seen = 0
        self.meter = _wire.Meter()

    def arrived(self, seen: int) -> None:
        if self.seen == 0 and seen > 0:
            self.meter.start()
        done = self.seen < self.count <= seen
        self.seen = seen
        if done:
            self.meter.stop()
            _wire.emit(
                "result",
                ok=True,
                role="server",
                **_wire.oneway_fields(self.count, self.size, self.meter),
            )

    def on_message(self, msg: Message) -> None:
        self.arrived(self.seen + 1)

    async def on_stream(self, stream: Stream) -> None:
        total = 0
        while data := await stream.read(READ_CHUNK):
            total += len(data)
            self.arrived(total // self.size)


def _echo(msg: Message) -> bytes:
    return msg.data


async def serve(args: Any, stop: asyncio.Event) -> int:
    node = Node(listen=[LISTEN])
    if args.workload in _wire.ONEWAY:
        counter = Counter(args.count, args.size)
        if args.subject == "peerwire-stream":
            node.set_stream_handler(_wire.STREAM_PROTOCOL, counter.on_stream)
        else:
            node.on(_wire.BENCH_PROTOCOL)(counter.on_message)
    else:
        node.on(_wire.BENCH_PROTOCOL)(_echo)
    await node.start()
    try:
        _wire.emit("ready", addr=str(node.addrs[0]), pid=os.getpid(), loop=_loop_name())
        await stop.wait()
    finally:
        await node.stop()
    return 0


# ----------------------------------------------------------------- client side
async def _oneway(node: Node, peer: PeerId, args: Any) -> dict[str, Any]:
    payload = os.urandom(args.size)
    meter = _wire.Meter()
    if args.subject == "peerwire-stream":
        stream = await node.open_stream(peer, _wire.STREAM_PROTOCOL)
        write = stream.write
        meter.start()
        for _ in range(args.count):
            await write(payload)
    else:
        send = node.send
        protocol = _wire.BENCH_PROTOCOL
        meter.start()
        for _ in range(args.count):
            await send(peer, protocol, payload)
    meter.stop()
    return meter.fields()


async def _rtt(node: Node, peer: PeerId, args: Any) -> dict[str, Any]:
    payload = os.urandom(args.size)
    request = node.request
    protocol = _wire.BENCH_PROTOCOL
    perf = time.perf_counter
    for _ in range(args.warmup):
        await request(peer, protocol, payload, timeout=REQUEST_TIMEOUT)
    rtts: list[float] = []
    meter = _wire.Meter()
    meter.start()
    for _ in range(args.count):
        t0 = perf()
        await request(peer, protocol, payload, timeout=REQUEST_TIMEOUT)
        rtts.append(perf() - t0)
    meter.stop()
    return {**meter.fields(), **_wire.rtt_fields(rtts)}


async def _inflight(node: Node, peer: PeerId, args: Any) -> dict[str, Any]:
    payload = os.urandom(args.size)
    request = node.request
    protocol = _wire.BENCH_PROTOCOL
    left = [args.count]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await request(peer, protocol, payload, timeout=REQUEST_TIMEOUT)

    meter = _wire.Meter()
    meter.start()
    await asyncio.gather(*(worker() for _ in range(min(args.inflight, args.count))))
    meter.stop()
    return {**meter.fields(), "req_per_s": round(args.count / meter.seconds, 1)}


async def _connect_rate(node: Node, addr: str, count: int) -> dict[str, Any]:
    meter = _wire.Meter()
    meter.start()
    for _ in range(count):
        peer = await node.connect(addr)
        await node.disconnect(peer)
    meter.stop()
    return {**meter.fields(), "conns_per_s": round(count / meter.seconds, 1)}


async def _idle_conns(addr: str, count: int, go: asyncio.Event) -> list[Node]:
    """One warm-up connection, then ``count`` more from as many Nodes (distinct peers)."""
    warm = Node()
    await warm.start()
    await warm.ping(await warm.connect(addr))
    _wire.emit("warm")
    await go.wait()
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Node:
        async with sem:
            node = Node(Identity.generate())
            await node.start()
            await node.ping(await node.connect(addr))
            return node

    nodes = list(await asyncio.gather(*(one() for _ in range(count))))
    _wire.emit("opened", count=len(nodes))
    return [warm, *nodes]


async def client(args: Any, stop: asyncio.Event, go: asyncio.Event) -> int:
    workload = args.workload
    if workload == "idle-conn-mem":
        nodes = await _idle_conns(args.connect, args.count, go)
        _wire.emit("result", ok=True, role="client", conns=len(nodes) - 1)
        await stop.wait()
        return 0
    node = Node()
    await node.start()
    fields: dict[str, Any]
    if workload == "first-ping":
        rtt = await node.ping(await node.connect(args.connect))
        _wire.emit("result", ok=True, role="client", rtt_us=round(rtt * 1e6, 1))
        return 0  # exit at once: the runner timed us from spawn to this line
    if workload == "connect-rate":
        fields = await _connect_rate(node, args.connect, args.count)
    else:
        peer = await node.connect(args.connect)
        if workload in _wire.ONEWAY:
            fields = await _oneway(node, peer, args)
        elif workload == "rtt-1k":
            fields = await _rtt(node, peer, args)
        else:
            fields = await _inflight(node, peer, args)
    _wire.emit("result", ok=True, role="client", **fields)
    await stop.wait()  # keep the connection until the server has counted everything
    return 0


async def amain(args: Any) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    go = asyncio.Event()

    def on_line(line: str) -> None:
        if line == "go":
            loop.call_soon_threadsafe(go.set)

    _wire.watch_stdin(on_line, lambda: loop.call_soon_threadsafe(stop.set))
    if args.role == "server":
        return await serve(args, stop)
    return await client(args, stop, go)


def main(argv: list[str] | None = None) -> None:
    args = _wire.parse_args(argv, prog="peerwire_workloads")
    _wire.arm_guard(args.deadline)
    _wire.pin(args.pin_cpu)
    try:
        code = run(amain(args), use_uvloop=not args.no_uvloop)
    except BaseException as exc:
        _wire.emit("result", ok=False, role=args.role, error=f"{type(exc).__name__}: {exc}")
        code = _wire.EXIT_FAILED
    _wire.hard_exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
