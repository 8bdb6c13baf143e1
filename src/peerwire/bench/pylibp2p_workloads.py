# mypy: disable-error-code="import-not-found"
"""The ``py-libp2p`` benchmark worker: a script run by *another* Python (trio-based).

The runner starts it as ``<python that has libp2p> .../peerwire/bench/pylibp2p_workloads.py``
when ``--pylibp2p-python`` is given. It never imports peerwire (that interpreter
does not have it); it shares only :mod:`_wire` (standard library) with the
other workers, so its command line and JSON events are the same.

Each host offers exactly Noise and yamux, like the interop peer. The workloads
are what a py-libp2p user would realistically write:

* one-way: one stream, one ``stream.write`` per length-prefixed message;
* request/reply: one stream, a request and its reply framed the same way; the
  server answers every request found in one read with one write;
* 64 in flight: the same stream pipelined from one task (write 64, then one
  new request per reply). Not a reader task plus a writer task: py-libp2p
  streams hold a lock across reads, which can stall a concurrent writer;
* connections: ``host.connect`` + ``host.disconnect``; ping: libp2p ping.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import deque
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair as new_ed25519_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.ping import ID as PING_ID
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

try:
    from . import _wire
except ImportError:  # run as a script (the normal case): this directory is sys.path[0]
    import _wire  # type: ignore[no-redef]

BENCH = TProtocol(_wire.BENCH_PROTOCOL)
READ_CHUNK = 1 << 20
CONNECT_CONCURRENCY = 16
HDR = _wire.HDR


def make_host(listen: bool) -> Any:
    key_pair = new_ed25519_key_pair()
    noise = NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
    return new_host(
        key_pair=key_pair,
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        sec_opt={NOISE_PROTOCOL_ID: noise},
        listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")] if listen else None,
    )


async def read_some(stream: Any) -> bytes:
    """Up to READ_CHUNK bytes; ``b""`` once the remote closed its side."""
    try:
        data: bytes = await stream.read(READ_CHUNK)
    except StreamEOF:
        return b""
    return data


class Replies:
    """Reads length-prefixed replies from a stream, one at a time."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.queue: deque[int] = deque()
        self.deframer = _wire.Deframer(lambda view: self.queue.append(len(view)))

    async def next(self) -> int:
        while not self.queue:
            data = await read_some(self.stream)
            if not data:
                raise ConnectionError("stream ended before the reply")
            self.deframer.feed(memoryview(data))
        return self.queue.popleft()


# ----------------------------------------------------------------- server side
class Counter:
    def __init__(self, count: int, size: int) -> None:
        self.count = count
        self.size = size
        self.seen = 0
        self.meter = _wire.Meter()

    def on_message(self, view: memoryview) -> None:
        self.seen += 1
        if self.seen == 1:
            self.meter.start()
        if self.seen == self.count:
            self.meter.stop()
            fields = _wire.oneway_fields(self.count, self.size, self.meter)
            _wire.emit("result", ok=True, role="server", **fields)

    async def handle(self, stream: Any) -> None:
        deframer = _wire.Deframer(self.on_message)
        while data := await read_some(stream):
            deframer.feed(memoryview(data))


async def echo(stream: Any) -> None:
    out: list[bytes] = []

    def reply(view: memoryview) -> None:
        out.append(HDR.pack(len(view)))
        out.append(bytes(view))

    deframer = _wire.Deframer(reply)
    while data := await read_some(stream):
        deframer.feed(memoryview(data))
        if out:
            batch = b"".join(out)
            out.clear()
            await stream.write(batch)


async def serve(args: Any, stop: trio.Event) -> int:
    host = make_host(listen=True)
    if args.workload in _wire.ONEWAY:
        host.set_stream_handler(BENCH, Counter(args.count, args.size).handle)
    else:
        host.set_stream_handler(BENCH, echo)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        addr = f"{host.get_transport_addrs()[0]}/p2p/{host.get_id()}"
        _wire.emit("ready", addr=addr, pid=os.getpid(), loop="trio")
        await stop.wait()
    return 0


# ----------------------------------------------------------------- client side
async def ping(host: Any, peer_id: Any) -> float:
    stream = await host.new_stream(peer_id, [PING_ID])
    t0 = time.perf_counter()
    await perform_ping_roundtrip(stream)
    rtt = time.perf_counter() - t0
    await stream.close()
    return rtt


async def oneway(host: Any, peer_id: Any, args: Any) -> dict[str, Any]:
    frame = HDR.pack(args.size) + os.urandom(args.size)
    stream = await host.new_stream(peer_id, [BENCH])
    meter = _wire.Meter()
    meter.start()
    for _ in range(args.count):
        await stream.write(frame)
    meter.stop()
    return meter.fields()


async def rtt(host: Any, peer_id: Any, args: Any) -> dict[str, Any]:
    frame = HDR.pack(args.size) + os.urandom(args.size)
    stream = await host.new_stream(peer_id, [BENCH])
    replies = Replies(stream)
    for _ in range(args.warmup):
        await stream.write(frame)
        await replies.next()
    rtts: list[float] = []
    meter = _wire.Meter()
    meter.start()
    for _ in range(args.count):
        t0 = time.perf_counter()
        await stream.write(frame)
        await replies.next()
        rtts.append(time.perf_counter() - t0)
    meter.stop()
    return {**meter.fields(), **_wire.rtt_fields(rtts)}


async def inflight(host: Any, peer_id: Any, args: Any) -> dict[str, Any]:
    frame = HDR.pack(args.size) + os.urandom(args.size)
    stream = await host.new_stream(peer_id, [BENCH])
    replies = Replies(stream)
    meter = _wire.Meter()
    meter.start()
    sent = 0
    for _ in range(min(args.inflight, args.count)):
        await stream.write(frame)
        sent += 1
    for _ in range(args.count):
        await replies.next()
        if sent < args.count:
            await stream.write(frame)
            sent += 1
    meter.stop()
    return {**meter.fields(), "req_per_s": round(args.count / meter.seconds, 1)}


async def connect_rate(host: Any, info: Any, count: int) -> dict[str, Any]:
    meter = _wire.Meter()
    meter.start()
    for _ in range(count):
        await host.connect(info)
        await host.disconnect(info.peer_id)
    meter.stop()
    return {**meter.fields(), "conns_per_s": round(count / meter.seconds, 1)}


async def idle_conns(info: Any, count: int, go: trio.Event, stop: trio.Event) -> None:
    """One warm-up connection, then ``count`` more from as many hosts (distinct peers)."""
    async with contextlib.AsyncExitStack() as stack:
        warm = make_host(listen=False)
        await stack.enter_async_context(warm.run(listen_addrs=[]))
        await warm.connect(info)
        await ping(warm, info.peer_id)
        _wire.emit("warm")
        await go.wait()
        limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
        hosts = [make_host(listen=False) for _ in range(count)]
        for host in hosts:
            await stack.enter_async_context(host.run(listen_addrs=[]))

        async def one(host: Any) -> None:
            async with limiter:
                await host.connect(info)
                await ping(host, info.peer_id)

        async with trio.open_nursery() as nursery:
            for host in hosts:
                nursery.start_soon(one, host)
        _wire.emit("opened", count=count)
        _wire.emit("result", ok=True, role="client", conns=count)
        await stop.wait()


async def client(args: Any, stop: trio.Event, go: trio.Event) -> int:
    info = info_from_p2p_addr(multiaddr.Multiaddr(args.connect))
    if args.workload == "idle-conn-mem":
        await idle_conns(info, args.count, go, stop)
        return 0
    host = make_host(listen=False)
    async with host.run(listen_addrs=[]):
        if args.workload == "first-ping":
            await host.connect(info)
            took = await ping(host, info.peer_id)
            _wire.emit("result", ok=True, role="client", rtt_us=round(took * 1e6, 1))
            return 0
        if args.workload == "connect-rate":
            fields = await connect_rate(host, info, args.count)
        else:
            await host.connect(info)
            if args.workload in _wire.ONEWAY:
                fields = await oneway(host, info.peer_id, args)
            elif args.workload == "rtt-1k":
                fields = await rtt(host, info.peer_id, args)
            else:
                fields = await inflight(host, info.peer_id, args)
        _wire.emit("result", ok=True, role="client", **fields)
        await stop.wait()
    return 0


async def amain(args: Any) -> int:
    token = trio.lowlevel.current_trio_token()
    stop = trio.Event()
    go = trio.Event()

    def call(fn: Any) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(fn)

    def on_line(line: str) -> None:
        if line == "go":
            call(go.set)

    _wire.watch_stdin(on_line, lambda: call(stop.set))
    if args.role == "server":
        return await serve(args, stop)
    return await client(args, stop, go)


def main(argv: list[str] | None = None) -> None:
    args = _wire.parse_args(argv, prog="pylibp2p_workloads")
    _wire.arm_guard(args.deadline)
    _wire.pin(args.pin_cpu)
    try:
        code = trio.run(amain, args)
    except BaseException as exc:
        _wire.emit("result", ok=False, role=args.role, error=f"{type(exc).__name__}: {exc}")
        code = _wire.EXIT_FAILED
    _wire.hard_exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
