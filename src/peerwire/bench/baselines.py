"""The ceilings peerwire is measured against: raw asyncio TCP, with and without AEAD.

Run as a script (``python .../peerwire/bench/baselines.py --subject raw-tcp ...``)
so that it never imports peerwire: its process start-up is the floor for
``first-ping``. It is built the way PERF_NOTES found fastest in pure Python:

* ``raw-tcp``: an :class:`asyncio.BufferedProtocol` that reads into one
  receive buffer shared by every connection of the process (callbacks run one
  at a time, and anything that must outlive a callback is copied out), the
  same 4-byte big-endian length prefix per message as the other subjects, and
  writes batched up to one 64 KiB frame's worth of messages per syscall.
* ``raw-aead``: the same, plus ChaCha20-Poly1305 over Noise-sized frames
  (2-byte length, at most 65535 bytes of ciphertext), many messages per AEAD
  call; keys come from one X25519 exchange per connection (one round trip).
  That exchange is *not* an authenticated handshake: it prices the crypto a
  secure channel cannot avoid, nothing more.

Neither does any allocation per message on the receive path except where a
message straddles reads (it is then reassembled in a reused buffer).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import sys
import time
from collections.abc import Callable
from typing import Any, Final, cast

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

try:
    from . import _wire
except ImportError:  # run as a script: this directory is sys.path[0]
    import _wire  # type: ignore[import-not-found, no-redef]

HDR: Final = _wire.HDR
NOISE_LEN: Final = struct.Struct(">H")
NONCE: Final = struct.Struct("<4xQ")
TAGLEN: Final = 16
MAX_PLAINTEXT: Final = 65535 - TAGLEN
"""Plaintext bytes per AEAD frame, as in Noise: a batch is flushed before it would exceed it."""
RECV_BUFFER_SIZE: Final = 256 * 1024
LARGE_WRITE: Final = 256 * 1024
"""Batches at least this big are written piece by piece rather than joined (no 1 MiB copy)."""
CONNECT_CONCURRENCY: Final = 16
POOL_SIZE: Final = 8
"""Output buffers kept for reuse (more are allocated while all are in flight)."""

_RECV = memoryview(bytearray(RECV_BUFFER_SIZE))
"""The receive buffer every connection in this process reads into."""
_OPENED = memoryview(bytearray(MAX_PLAINTEXT))
"""Where every connection decrypts a frame (its messages are consumed or copied at once)."""
_SEALED: list[bytearray] = []
"""Ciphertext buffers shared by every sender in the process (see ``Sender._buffer``)."""
_PLAIN: list[bytearray] = []
"""Buffers to join a large batch's plaintext in, shared likewise."""

OnMessage = Callable[[memoryview], None]


class AeadReceiver:
    """Opens 2-byte-length-prefixed ChaCha20-Poly1305 frames into one reused buffer."""

    __slots__ = ("_aead", "_deliver", "_n", "_partial")

    def __init__(self, key: bytes, deliver: Callable[[memoryview], None]) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._deliver = deliver
        self._n = 0
        self._partial = bytearray()

    def feed(self, data: memoryview) -> None:
        pos = 0
        end = len(data)
        partial = self._partial
        if partial:
            if len(partial) < 2:
                take = min(2 - len(partial), end)
                partial += data[:take]
                pos = take
                if len(partial) < 2:
                    return
            need = 2 + NOISE_LEN.unpack_from(partial)[0] - len(partial)
            take = min(need, end - pos)
            partial += data[pos : pos + take]
            pos += take
            if take < need:
                return
            with memoryview(partial) as view:
                self._open(view[2:])
            partial.clear()
        while end - pos >= 2:
            stop = pos + 2 + NOISE_LEN.unpack_from(data, pos)[0]
            if stop > end:
                break
            self._open(data[pos + 2 : stop])
            pos = stop
        if pos < end:
            partial += data[pos:]

    def _open(self, ciphertext: memoryview) -> None:
        size = len(ciphertext) - TAGLEN
        out = _OPENED[:size]
        self._aead.decrypt_into(NONCE.pack(self._n), ciphertext, None, out)
        self._n += 1
        self._deliver(out)


class Sender:
    """Frames messages and batches them into as few writes (and AEAD calls) as possible."""

    __slots__ = ("_aead", "_n", "_parts", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, key: bytes | None) -> None:
        self._transport = transport
        self._aead = ChaCha20Poly1305(key) if key is not None else None
        self._n = 0
        self._parts: list[bytes | memoryview] = []
        self._size = 0

    def add(self, payload: bytes | memoryview) -> None:
        """Queue one message; a full batch is flushed first."""
        size = 4 + len(payload)
        if self._size + size > MAX_PLAINTEXT and self._parts:
            self.flush()
        self._parts.append(HDR.pack(len(payload)))
        self._parts.append(payload)
        self._size += size

    def flush(self) -> None:
        """Write everything queued (the end of a burst)."""
        parts = self._parts
        if not parts:
            return
        self._parts = []
        size = self._size
        self._size = 0
        if self._aead is not None:
            self._transport.write(self._seal(parts, size))
        elif size >= LARGE_WRITE:
            for part in parts:
                self._transport.write(part)
        else:
            self._transport.writelines(parts)

    def _buffer(self, pool: list[bytearray], size: int) -> bytearray:
        """A pooled buffer of at least ``size`` bytes that nothing else references.

        The pools are per process, like the receive buffer, so an idle
        connection holds no buffer of its own.

        uvloop keeps a reference to data it could not send yet (the stdlib
        transport copies it), so a buffer is reused only once its reference
        count shows the transport has let go. Fresh 1 MiB buffers cost page
        faults on every message (PERF_NOTES: 0.55 vs 1.7 GB/s).
        """
        for buf in pool:
            # References: the pool, ``buf`` and getrefcount's argument.
            if len(buf) >= size and sys.getrefcount(buf) <= 3:
                return buf
        buf = bytearray(max(size, 2 * MAX_PLAINTEXT))
        if len(pool) < POOL_SIZE:
            pool.append(buf)
        return buf

    def _seal(self, parts: list[bytes | memoryview], total: int) -> memoryview:
        """All frames laid out in one pooled buffer: one write, no per-frame objects."""
        assert self._aead is not None
        if len(parts) == 1:
            plaintext: bytes | bytearray | memoryview = parts[0]
        elif total < LARGE_WRITE:  # many small messages: one C-level join is cheapest
            plaintext = b"".join(parts)
        else:  # a few large ones: copy into a reused buffer rather than a fresh 1 MiB
            plaintext = self._buffer(_PLAIN, total)
            pos = 0
            for part in parts:
                plaintext[pos : pos + len(part)] = part
                pos += len(part)
        frames = -(-total // MAX_PLAINTEXT)
        size = total + frames * (2 + TAGLEN)
        out = self._buffer(_SEALED, size)
        encrypt_into = self._aead.encrypt_into
        with memoryview(plaintext) as src, memoryview(out) as dst:
            pos = 0
            for start in range(0, total, MAX_PLAINTEXT):
                chunk = src[start : min(start + MAX_PLAINTEXT, total)]
                sealed = len(chunk) + TAGLEN
                NOISE_LEN.pack_into(dst, pos, sealed)
                encrypt_into(NONCE.pack(self._n), chunk, None, dst[pos + 2 : pos + 2 + sealed])
                self._n += 1
                pos += 2 + sealed
        return memoryview(out)[:size]


def _derive(shared: bytes, initiator: bool) -> tuple[bytes, bytes]:
    """(send key, receive key) from an X25519 secret; each direction gets its own key."""
    c2s = hashlib.sha256(b"peerwire-bench c2s" + shared).digest()
    s2c = hashlib.sha256(b"peerwire-bench s2c" + shared).digest()
    return (c2s, s2c) if initiator else (s2c, c2s)


class Conn(asyncio.BufferedProtocol):
    """One baseline connection; ``on_message`` is the application (set before data flows)."""

    def __init__(self, *, encrypted: bool, initiator: bool, on_message: OnMessage) -> None:
        self.on_message = on_message
        self._encrypted = encrypted
        self._initiator = initiator
        self._secret = X25519PrivateKey.generate() if encrypted else None
        self._hs = bytearray()
        self._feed: Callable[[memoryview], None] = _wire.Deframer(self._deliver).feed
        self.transport: asyncio.Transport | None = None
        self.sender: Sender | None = None
        self.ready: asyncio.Future[Conn] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._resumed: asyncio.Future[None] | None = None
        self.paused = False

    def _deliver(self, view: memoryview) -> None:
        self.on_message(view)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport = self.transport
        if self._secret is None:
            self._keyed(None, None)
        elif self._initiator:
            transport.write(self._secret.public_key().public_bytes_raw())

    def _keyed(self, send_key: bytes | None, recv_key: bytes | None) -> None:
        assert self.transport is not None
        self.sender = Sender(self.transport, send_key)
        if recv_key is not None:
            self._feed = AeadReceiver(recv_key, _wire.Deframer(self._deliver).feed).feed
        if not self.ready.done():
            self.ready.set_result(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECV

    def buffer_updated(self, nbytes: int) -> None:
        data = _RECV[:nbytes]
        if self.sender is None:
            data = self._handshake(data)
            if self.sender is None:
                return
        if data:
            self._feed(data)
        self.sender.flush()  # end of burst: replies queued while processing go out in one write

    def _handshake(self, data: memoryview) -> memoryview:
        assert self._secret is not None
        assert self.transport is not None
        take = min(32 - len(self._hs), len(data))
        self._hs += data[:take]
        if len(self._hs) < 32:
            return data[len(data) :]
        shared = self._secret.exchange(X25519PublicKey.from_public_bytes(bytes(self._hs)))
        if not self._initiator:
            self.transport.write(self._secret.public_key().public_bytes_raw())
        self._keyed(*_derive(shared, self._initiator))
        return data[take:]

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        waiter, self._resumed = self._resumed, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_writable(self) -> None:
        """Wait until the transport's buffer is below its low-water mark again."""
        while self.paused and not self.closed.done():
            self._resumed = asyncio.get_running_loop().create_future()
            await asyncio.wait([self._resumed, self.closed], return_when=asyncio.FIRST_COMPLETED)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost in handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.resume_writing()


def _ignore(view: memoryview) -> None:
    pass


# ----------------------------------------------------------------- server side
class CountingServer:
    """Counts one-way messages; reports the rate once ``count`` have arrived."""

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
            _wire.emit(
                "result",
                ok=True,
                role="server",
                **_wire.oneway_fields(self.count, self.size, self.meter),
            )


async def serve(args: Any, stop: asyncio.Event) -> int:
    loop = asyncio.get_running_loop()
    encrypted = args.subject == "raw-aead"
    counter = CountingServer(args.count, args.size) if args.workload in _wire.ONEWAY else None

    def factory() -> Conn:
        conn = Conn(encrypted=encrypted, initiator=False, on_message=_ignore)
        if counter is not None:
            conn.on_message = counter.on_message
        else:

            def echo(view: memoryview) -> None:
                assert conn.sender is not None
                conn.sender.add(bytes(view))

            conn.on_message = echo
        return conn

    server = await loop.create_server(factory, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    _wire.emit("ready", addr=f"127.0.0.1:{port}", pid=os.getpid(), loop=_loop_name(loop))
    await stop.wait()
    server.close()
    return 0


# ----------------------------------------------------------------- client side
async def _connect(addr: str, encrypted: bool) -> Conn:
    host, _, port = addr.rpartition(":")
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: Conn(encrypted=encrypted, initiator=True, on_message=_ignore), host, int(port)
    )
    return await asyncio.wait_for(conn.ready, 10.0)


async def _ping(conn: Conn, payload: bytes) -> float:
    """One request/reply on an otherwise idle connection; the round trip in seconds."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def got(view: memoryview) -> None:
        if not fut.done():
            fut.set_result(None)

    conn.on_message = got
    assert conn.sender is not None
    t0 = time.perf_counter()
    conn.sender.add(payload)
    conn.sender.flush()
    await asyncio.wait_for(fut, 10.0)
    return time.perf_counter() - t0


async def _oneway(conn: Conn, count: int, payload: bytes) -> dict[str, Any]:
    assert conn.sender is not None
    meter = _wire.Meter()
    meter.start()
    add = conn.sender.add
    for _ in range(count):
        add(payload)
        if conn.paused:
            conn.sender.flush()
            await conn.wait_writable()
    conn.sender.flush()
    meter.stop()
    return meter.fields()


async def _rtt(conn: Conn, count: int, warmup: int, payload: bytes) -> dict[str, Any]:
    rtts = [await _ping(conn, payload) for _ in range(warmup)]
    meter = _wire.Meter()
    meter.start()
    rtts = [await _ping(conn, payload) for _ in range(count)]
    meter.stop()
    return {**meter.fields(), **_wire.rtt_fields(rtts)}


async def _inflight(conn: Conn, count: int, inflight: int, payload: bytes) -> dict[str, Any]:
    assert conn.sender is not None
    sender = conn.sender
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    state = {"sent": 0, "got": 0}

    def got(view: memoryview) -> None:
        state["got"] += 1
        if state["sent"] < count:
            state["sent"] += 1
            sender.add(payload)  # flushed at the end of this burst of replies
        elif state["got"] == count and not done.done():
            done.set_result(None)

    conn.on_message = got
    meter = _wire.Meter()
    meter.start()
    for _ in range(min(inflight, count)):
        state["sent"] += 1
        sender.add(payload)
    sender.flush()
    await asyncio.wait_for(done, 60.0)
    meter.stop()
    return {**meter.fields(), "req_per_s": round(count / meter.seconds, 1)}


async def _connect_rate(addr: str, encrypted: bool, count: int) -> dict[str, Any]:
    ping = os.urandom(_wire.PING_SIZE)
    meter = _wire.Meter()
    meter.start()
    for _ in range(count):
        conn = await _connect(addr, encrypted)
        if not encrypted:  # raw-aead's key exchange is already a server-processed round trip
            await _ping(conn, ping)
        assert conn.transport is not None
        conn.transport.close()
    meter.stop()
    return {**meter.fields(), "conns_per_s": round(count / meter.seconds, 1)}


async def _idle_conns(addr: str, encrypted: bool, count: int, go: asyncio.Event) -> list[Conn]:
    ping = os.urandom(_wire.PING_SIZE)
    warm = await _connect(addr, encrypted)
    await _ping(warm, ping)
    _wire.emit("warm")
    await go.wait()
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Conn:
        async with sem:
            conn = await _connect(addr, encrypted)
            await _ping(conn, ping)
            return conn

    conns = list(await asyncio.gather(*(one() for _ in range(count))))
    _wire.emit("opened", count=len(conns))
    return [warm, *conns]


async def client(args: Any, stop: asyncio.Event, go: asyncio.Event) -> int:
    encrypted = args.subject == "raw-aead"
    workload = args.workload
    payload = os.urandom(args.size)
    fields: dict[str, Any]
    keep: list[Conn] = []
    if workload == "first-ping":
        conn = await _connect(args.connect, encrypted)
        rtt = await _ping(conn, os.urandom(_wire.PING_SIZE))
        _wire.emit("result", ok=True, role="client", rtt_us=round(rtt * 1e6, 1))
        return 0
    if workload == "connect-rate":
        fields = await _connect_rate(args.connect, encrypted, args.count)
    elif workload == "idle-conn-mem":
        keep = await _idle_conns(args.connect, encrypted, args.count, go)
        fields = {"conns": len(keep) - 1}
    else:
        conn = await _connect(args.connect, encrypted)
        keep.append(conn)
        if workload in _wire.ONEWAY:
            fields = await _oneway(conn, args.count, payload)
        elif workload == "rtt-1k":
            fields = await _rtt(conn, args.count, args.warmup, payload)
        else:
            fields = await _inflight(conn, args.count, args.inflight, payload)
    _wire.emit("result", ok=True, role="client", **fields)
    await stop.wait()  # keep connections open until the runner has what it needs
    return 0


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


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
    args = _wire.parse_args(argv, prog="baselines")
    _wire.arm_guard(args.deadline)
    _wire.pin(args.pin_cpu)
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            code = runner.run(amain(args))
    except BaseException as exc:
        _wire.emit("result", ok=False, role=args.role, error=f"{type(exc).__name__}: {exc}")
        code = _wire.EXIT_FAILED
    _wire.hard_exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
