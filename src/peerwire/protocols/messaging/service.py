"""Direct messages: ``send`` / ``request`` / handlers / inboxes over ``/peerwire/msg/1.0.0``.

Concurrency model: sync handlers run inline in the receive callback (no task
per message); async handlers run on a fixed pool of ``Config.message_workers``
tasks fed by a bounded queue; inboxes are bounded queues. When a queue is
full, the channel that wanted to deliver stalls and its sender is slowed down
through the muxer's flow control, so a slow consumer never loses messages and
never makes us buffer without bound.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..._cache import remember
from ...errors import (
    ClosedError,
    InvalidKeyError,
    LimitExceeded,
    PeerwireError,
    ProtocolNotSupported,
    RemoteError,
    Timeout,
    UsageError,
)
from ...host.middleware import Hook
from ...identity.keys import PublicKey, public_key_from_protobuf
from ...identity.peer_id import PeerId
from . import codec
from .channel import Channel
from .inbox import Inbox, _BoundedQueue
from .message import Message

if TYPE_CHECKING:
    from ...host.host import Host
    from ...mux.stream import Stream

log = logging.getLogger("peerwire.messaging")

MSG_PROTOCOL = "/peerwire/msg/1.0.0"
MAX_KEY_CACHE = 4096

Handler = Callable[[Message], "bytes | Awaitable[bytes | None] | None"]


class _Route:
    """Where messages for one protocol go: a sync or async handler, or an inbox."""

    __slots__ = ("handler", "inbox", "is_async")

    def __init__(self, handler: Handler | None, is_async: bool, inbox: Inbox | None) -> None:
        self.handler = handler
        self.is_async = is_async
        self.inbox = inbox


class _Job:
    """A message waiting for a worker (an async handler, or an awaitable to finish)."""

    __slots__ = ("channel", "message", "pending", "route")

    def __init__(
        self,
        route: _Route,
        message: Message,
        channel: Channel,
        pending: Awaitable[Any] | None = None,
    ) -> None:
        self.route = route
        self.message = message
        self.channel = channel
        self.pending = pending


class MessagingService:
    """The node's messaging endpoint (``node.send``, ``node.request``, ``node.on`` ...)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        cfg = host.config
        self.config = cfg
        self._routes: dict[str, _Route] = {}
        self._reserved: set[str] = set()
        self._out: dict[PeerId, Channel] = {}
        self._opening: dict[PeerId, asyncio.Future[Channel]] = {}
        self._inbound: set[Channel] = set()
        self._next_id = int.from_bytes(os.urandom(8), "big") >> 2
        self._pending_count = 0
        self._queue: _BoundedQueue[_Job] = _BoundedQueue(cfg.message_queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._keys: dict[bytes, tuple[PublicKey, PeerId]] = {}
        self._hello = cfg.agent_version.encode()
        self._proto_bytes: dict[str, bytes] = {}
        self._sign_key = host.identity.public_key.to_protobuf() if cfg.sign_messages else b""
        self._skew_ms = int(cfg.message_max_clock_skew * 1000)
        self._max = cfg.max_message_size
        host.set_stream_handler(MSG_PROTOCOL, self._handle_stream)

    # ------------------------------------------------------------- routes
    def on(self, protocol: str, handler: Handler) -> None:
        """Register ``handler`` for ``protocol`` (replaces a previous handler)."""
        self._check_protocol(protocol)
        if protocol in self._reserved:
            raise UsageError(f"{protocol} is used by peerwire itself")
        route = self._routes.get(protocol)
        if route is not None and route.inbox is not None:
            raise UsageError(f"{protocol} already has an inbox; close it first")
        is_async = inspect.iscoroutinefunction(handler)
        self._routes[protocol] = _Route(handler, is_async, None)

    def reserve(self, protocol: str, handler: Handler) -> None:
        """Register an internal handler (relay, broadcast) that applications cannot replace."""
        self._check_protocol(protocol)
        self._routes[protocol] = _Route(handler, inspect.iscoroutinefunction(handler), None)
        self._reserved.add(protocol)

    def off(self, protocol: str) -> None:
        if protocol in self._reserved:
            raise UsageError(f"{protocol} is used by peerwire itself")
        route = self._routes.pop(protocol, None)
        if route is not None and route.inbox is not None:
            route.inbox._closed_by_service()

    def inbox(self, protocol: str, maxsize: int | None = None) -> Inbox:
        """A bounded async iterator of the messages for ``protocol``."""
        self._check_protocol(protocol)
        if protocol in self._routes:
            raise UsageError(f"{protocol} already has a handler or an inbox")
        if protocol in self._reserved:  # pragma: no cover - reserved ones are in _routes
            raise UsageError(f"{protocol} is used by peerwire itself")
        box = Inbox(protocol, maxsize or self.config.inbox_size, self)
        self._routes[protocol] = _Route(None, False, box)
        return box

    @staticmethod
    def _check_protocol(protocol: str) -> None:
        if not protocol or len(protocol.encode()) > codec.MAX_PROTOCOL_LENGTH:
            raise UsageError(f"protocol id must be 1..255 bytes: {protocol!r}")

    # ------------------------------------------------------------ sending
    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFFFFFFFFFF
        return self._next_id

    def _frame(self, kind: int, msg_id: int, protocol: str, data: bytes) -> bytes:
        now = int(time.time() * 1000)
        proto = self._proto_bytes.get(protocol)
        if proto is None:
            proto = protocol.encode()
            if len(self._proto_bytes) < 1024:
                self._proto_bytes[protocol] = proto
        if self._sign_key:
            sig = self.host.identity.sign(codec.signed_bytes(kind, msg_id, now, proto, data))
            return codec.encode(
                kind,
                msg_id,
                now,
                proto,
                data,
                max_size=self._max,
                key=self._sign_key,
                signature=sig,
            )
        return codec.encode(kind, msg_id, now, proto, data, self._max)

    def _outgoing(self, peer: PeerId, protocol: str, data: bytes, msg_id: int, req: bool) -> bytes:
        mw = self.host.middleware
        if mw.has(Hook.MESSAGE_WILL_SEND):
            msg = Message(
                data=bytes(data),
                sender=self.host.peer_id,
                protocol=protocol,
                id=msg_id,
                expects_reply=req,
            )
            out = mw.run_message(Hook.MESSAGE_WILL_SEND, msg)
            if out is None:
                raise ClosedError(f"message to {peer} on {protocol} dropped by middleware")
            protocol, data = out.protocol, out.data
        return self._frame(codec.REQUEST if req else codec.MESSAGE, msg_id, protocol, data)

    async def channel(self, peer: PeerId) -> Channel:
        """Our outbound message stream to ``peer`` (opened, and dialled, if needed)."""
        ch = self._out.get(peer)
        if ch is not None and not ch.ended:
            return ch
        opening = self._opening.get(peer)
        if opening is None:
            opening = asyncio.ensure_future(self._open(peer))
            self._opening[peer] = opening
            opening.add_done_callback(lambda f: self._opening.pop(peer, None))
            opening.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(opening)

    async def _open(self, peer: PeerId) -> Channel:
        if peer == self.host.peer_id:
            raise UsageError("cannot send messages to ourselves")
        stream = await self.host.new_stream(peer, MSG_PROTOCOL)
        ch = self._make_channel(stream, outbound=True)
        ch.send_nowait(self._frame(codec.HELLO, 0, "", self._hello))
        self._out[peer] = ch
        return ch

    def _make_channel(self, stream: Stream, *, outbound: bool) -> Channel:
        return Channel(
            stream,
            outbound=outbound,
            max_message_size=self._max,
            deliver=self._deliver,
            on_end=self._channel_ended,
        )

    def _channel_ended(self, ch: Channel, exc: BaseException | None) -> None:
        if ch.outbound:
            if self._out.get(ch.peer) is ch:
                del self._out[ch.peer]
        else:
            self._inbound.discard(ch)
        if exc is not None:
            log.debug("message stream with %s ended: %s", ch.peer, exc)

    async def send(self, peer: PeerId, protocol: str, data: bytes) -> None:
        """Fire and forget: returns once the message is handed to the connection."""
        ch = self._out.get(peer)
        if ch is None or ch.ended:
            ch = await self.channel(peer)
        ch.send_nowait(self._outgoing(peer, protocol, data, self._new_id(), False))
        if ch.backlogged:
            await ch.wait_writable()

    async def request(
        self, peer: PeerId, protocol: str, data: bytes, timeout: float | None = None
    ) -> bytes:
        """Send a request and wait for its reply (``Timeout`` after ``timeout`` seconds)."""
        if self._pending_count >= self.config.max_pending_requests:
            raise LimitExceeded(
                f"max_pending_requests ({self.config.max_pending_requests}) reached",
                limit_name="max_pending_requests",
                limit=self.config.max_pending_requests,
            )
        limit = self.config.request_timeout if timeout is None else timeout
        msg_id = self._new_id()
        self._pending_count += 1
        try:
            # asyncio.timeout directly (not the generator-based ``deadline``): this is
            # the request/reply hot path.
            async with asyncio.timeout(limit):
                ch = self._out.get(peer)
                if ch is None or ch.ended:
                    ch = await self.channel(peer)
                fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                ch.pending[msg_id] = fut
                try:
                    ch.send_nowait(self._outgoing(peer, protocol, data, msg_id, True))
                    if ch.backlogged:
                        await ch.wait_writable()
                    return await fut
                finally:
                    # A late reply finds no entry and is dropped (logged at debug).
                    ch.pending.pop(msg_id, None)
        except TimeoutError as exc:
            if isinstance(exc, Timeout):
                raise
            raise Timeout(f"request {protocol} to {peer} timed out after {limit} s") from exc
        finally:
            self._pending_count -= 1

    def reply(self, msg: Message, data: bytes) -> None:
        """Answer a request received through an inbox (handlers just return bytes)."""
        ch = msg.reply_channel
        if not msg.expects_reply or not isinstance(ch, Channel):
            raise UsageError("this message is not a request")
        ch.send_nowait(self._frame(codec.REPLY, msg.id, "", data))

    def _reply_error(self, ch: Channel, msg_id: int, code: int, text: str) -> None:
        try:
            ch.send_nowait(
                codec.encode_error(msg_id, int(time.time() * 1000), code, text, max_size=self._max)
            )
        except PeerwireError as exc:
            log.debug("could not send error reply to %s: %s", ch.peer, exc)

    # ---------------------------------------------------------- receiving
    async def _handle_stream(self, stream: Stream) -> None:
        ch = self._make_channel(stream, outbound=False)
        self._inbound.add(ch)
        ch.send_nowait(self._frame(codec.HELLO, 0, "", self._hello))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        previous = ch._ended

        def ended(c: Channel, exc: BaseException | None) -> None:
            previous(c, exc)
            if not done.done():
                done.set_result(None)

        ch._ended = ended
        await done

    def _deliver(self, ch: Channel, env: codec.Envelope) -> bool:
        """Route one envelope. False means "stall this channel, try again later"."""
        kind = env.kind
        if kind == codec.REPLY or kind == codec.ERROR:
            fut = ch.pending.get(env.id)
            if fut is None or fut.done():
                log.debug("dropping late or unknown reply %d from %s", env.id, ch.peer)
            elif kind == codec.REPLY:
                fut.set_result(env.data)
            else:
                code, text = codec.decode_error(env.data)
                cls = ProtocolNotSupported if code == codec.ERR_UNKNOWN_PROTOCOL else RemoteError
                fut.set_exception(cls(f"{ch.peer}: {text}", code=code, remote_message=text))
            if not ch.pending and ch.stream._read_eof:
                ch._finish(None)
            return True
        if kind == codec.HELLO:
            ch.remote_version = env.data.decode("utf-8", "replace")[:256]
            return True
        route = self._routes.get(env.protocol)
        request = kind == codec.REQUEST
        if route is None:
            if request:
                self._reply_error(
                    ch, env.id, codec.ERR_UNKNOWN_PROTOCOL, f"no handler for {env.protocol}"
                )
            else:
                log.warning("dropping message from %s: no handler for %s", ch.peer, env.protocol)
            return True
        msg = self._message(ch, env, request)
        if msg is None:
            return True
        if route.handler is not None and not route.is_async:
            self._run_sync(route, msg, ch)
            return True
        if route.inbox is not None:
            if route.inbox._offer(msg):
                return True
            route.inbox._queue.on_space(ch.unstall)
            return False
        if not self._workers:
            self._start_workers()
        if self._queue.offer(_Job(route, msg, ch)):
            return True
        self._queue.on_space(ch.unstall)
        return False

    def _message(self, ch: Channel, env: codec.Envelope, request: bool) -> Message | None:
        """Build the Message, checking signature and clock; None if it must be dropped."""
        author: PeerId | None = None
        signature: bytes | None = None
        if env.flags & codec.FLAG_SIGNED:
            checked = self._verify(env)
            if checked is None:
                log.warning(
                    "dropping message %d from %s on %s: bad signature",
                    env.id,
                    ch.peer,
                    env.protocol,
                )
                if request:
                    self._reply_error(ch, env.id, codec.ERR_REJECTED, "bad signature")
                return None
            author, signature = checked, env.signature
        elif self.config.require_signed_messages:
            log.warning("dropping unsigned message %d from %s", env.id, ch.peer)
            if request:
                self._reply_error(ch, env.id, codec.ERR_REJECTED, "messages must be signed")
            return None
        if self._skew_ms:
            skew = abs(ch.now_ms - env.timestamp_ms)
            if skew > self._skew_ms:
                log.warning(
                    "dropping message %d from %s: timestamp off by %.1f s",
                    env.id,
                    ch.peer,
                    skew / 1000,
                )
                if request:
                    self._reply_error(ch, env.id, codec.ERR_REJECTED, "timestamp out of window")
                return None
        msg = Message(
            data=env.data,
            sender=ch.peer,
            protocol=env.protocol,
            id=env.id,
            timestamp_ms=env.timestamp_ms,
            client_version=ch.remote_version,
            author=author,
            signature=signature,
            expects_reply=request,
            reply_channel=ch,
        )
        mw = self.host.middleware
        if mw.has(Hook.MESSAGE_RECEIVED):
            out = mw.run_message(Hook.MESSAGE_RECEIVED, msg)
            if out is None:
                if request:
                    self._reply_error(ch, env.id, codec.ERR_REJECTED, "dropped by middleware")
                return None
            msg = out
        return msg

    def _verify(self, env: codec.Envelope) -> PeerId | None:
        cached = self._keys.get(env.key)
        if cached is None:
            try:
                key = public_key_from_protobuf(env.key)
            except InvalidKeyError:
                return None
            cached = remember(
                self._keys, env.key, (key, PeerId.from_public_key(key)), MAX_KEY_CACHE
            )
        key, author = cached
        signed = codec.signed_bytes(
            env.kind, env.id, env.timestamp_ms, env.protocol.encode(), env.data
        )
        return author if key.verify(signed, env.signature) else None

    def _run_sync(self, route: _Route, msg: Message, ch: Channel) -> None:
        assert route.handler is not None
        try:
            result = route.handler(msg)
        except Exception as exc:
            self._handler_failed(msg, ch, exc)
            return
        if result is None:
            return
        if type(result) is not bytes and inspect.isawaitable(result):
            # A plain function that returned an awaitable: finish it on a worker.
            if not self._workers:
                self._start_workers()
            job = _Job(route, msg, ch, result)
            if not self._queue.offer(job):
                self.host.spawn(self._finish_job(job), name="message handler overflow")
            return
        self._answer(msg, ch, result)

    def _answer(self, msg: Message, ch: Channel, result: object) -> None:
        if result is None:
            return
        if not msg.expects_reply:
            log.debug("handler for %s returned a value for a one-way message", msg.protocol)
            return
        if not isinstance(result, bytes | bytearray | memoryview):
            self._handler_failed(
                msg,
                ch,
                UsageError(
                    f"handler for {msg.protocol} returned {type(result).__name__}, not bytes"
                ),
            )
            return
        try:
            ch.send_nowait(self._frame(codec.REPLY, msg.id, "", bytes(result)))
        except PeerwireError as exc:
            if isinstance(exc, LimitExceeded):
                self._reply_error(ch, msg.id, codec.ERR_LIMIT, str(exc))
            else:
                log.info("could not reply to %s: %s", ch.peer, exc)

    def _handler_failed(self, msg: Message, ch: Channel, exc: BaseException) -> None:
        if msg.expects_reply:
            log.info("handler for %s failed on a request from %s: %r", msg.protocol, ch.peer, exc)
            self._reply_error(ch, msg.id, codec.ERR_HANDLER, f"{type(exc).__name__}: {exc}")
        else:
            log.error(
                "handler for %s failed on a message from %s", msg.protocol, ch.peer, exc_info=exc
            )

    # ------------------------------------------------------------- workers
    def _start_workers(self) -> None:
        for i in range(self.config.message_workers):
            task = self.host.spawn(self._worker(), name=f"message worker {i}")
            self._workers.append(task)  # type: ignore[arg-type]

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            await self._finish_job(job)

    async def _finish_job(self, job: _Job) -> None:
        try:
            if job.pending is not None:
                result = await job.pending
            else:
                assert job.route.handler is not None
                result = await job.route.handler(job.message)  # type: ignore[misc]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._handler_failed(job.message, job.channel, exc)
            return
        self._answer(job.message, job.channel, result)

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        self._workers.clear()
        for route in self._routes.values():
            if route.inbox is not None:
                route.inbox._closed_by_service()
