"""Glue between the routed protocols (relay, broadcast) and the messaging layer.

Relay and broadcast frames ride as ``/peerwire/msg/1.0.0`` MESSAGEs between
neighbours, so they reuse its one-stream-per-peer batching and flow control.
Two things the messaging service has no public API for are done here, in one
place, so that a change there breaks one small file:

* :class:`Link` forwards frames from *synchronous* receive handlers. A
  forwarding node must not wait (it runs inside the muxer's receive
  callback), so a frame goes straight onto the open message stream when that
  stream has room, and otherwise into a bounded per-peer queue drained by one
  task per congested peer (never one task per frame). A full queue refuses
  the frame: the caller reports it (logs and counts), nothing vanishes
  silently. A failed dial or a broken stream hands every queued frame back
  to its ``on_fail`` callback, which is how relay retries another next hop.
* :class:`LocalDelivery` hands a routed or broadcast message to the handler
  or inbox the application registered with ``node.on`` / ``node.inbox``,
  with the same rules as direct messages: sync handlers inline, async
  handlers on tasks (bounded), inbox overflow held in a bounded queue.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ...errors import ClosedError, ConnectionLost, PeerwireError
from ..messaging.service import MessagingService

if TYPE_CHECKING:
    from ...host.host import Host
    from ...identity.peer_id import PeerId
    from ..messaging.channel import Channel
    from ..messaging.message import Message

log = logging.getLogger("peerwire.relay")

OnFail = Callable[[BaseException], None]


@dataclass(slots=True)
class _PeerQueue:
    frames: deque[tuple[str, bytes, OnFail | None]] = field(default_factory=deque)


class Link:
    """Non-blocking sends of internal frames to neighbours (see the module docstring)."""

    def __init__(self, host: Host, messaging: MessagingService, *, max_queued: int) -> None:
        self._host = host
        self._ms = messaging
        self._max_queued = max_queued
        self._channels: dict[PeerId, Channel] = {}
        self._queues: dict[PeerId, _PeerQueue] = {}
        self.frames_sent = 0
        self.bytes_sent = 0

    def _open_channel(self, peer: PeerId) -> Channel | None:
        ch = self._channels.get(peer)
        if ch is None:
            return None
        if ch.ended:
            del self._channels[peer]
            return None
        return ch

    def _frame(self, peer: PeerId, protocol: str, data: bytes) -> bytes:
        # Private messaging API: builds the msg envelope, runs MESSAGE_WILL_SEND
        # middleware and signs when Config.sign_messages is set.
        return self._ms._outgoing(peer, protocol, data, self._ms._new_id(), False)

    def send_nowait(
        self, peer: PeerId, protocol: str, data: bytes, on_fail: OnFail | None = None
    ) -> bool:
        """Send or queue ``data`` for ``peer``; False if its queue is full (frame refused).

        ``on_fail(exc)`` runs later if the frame cannot be handed to the
        connection (dial failed, stream broke while it was queued); not when
        the node stops with frames still queued (they are dropped, logged).
        A stopped node refuses every frame.
        """
        if not self._host.is_running:
            return False
        if peer not in self._queues:
            ch = self._open_channel(peer)
            if ch is not None and not ch.backlogged:
                try:
                    ch.send_nowait(self._frame(peer, protocol, data))
                except ConnectionLost:
                    self._channels.pop(peer, None)
                except ClosedError as exc:  # dropped by MESSAGE_WILL_SEND middleware
                    if on_fail is not None:
                        on_fail(exc)
                    return True
                else:
                    self.frames_sent += 1
                    self.bytes_sent += len(data)
                    return True
        queue = self._queues.get(peer)
        if queue is None:
            queue = self._queues[peer] = _PeerQueue()
            self._host.spawn(self._drain(peer, queue), name=f"link to {peer}")
        elif len(queue.frames) >= self._max_queued:
            return False
        queue.frames.append((protocol, data, on_fail))
        return True

    async def send(self, peer: PeerId, protocol: str, data: bytes) -> None:
        """Send and wait for room (backpressure); raises what ``messaging.send`` raises."""
        await self._ms.send(peer, protocol, data)
        self.frames_sent += 1
        self.bytes_sent += len(data)

    async def _drain(self, peer: PeerId, queue: _PeerQueue) -> None:
        frames = queue.frames
        try:
            ch = await self._ms.channel(peer)
            self._channels[peer] = ch
            while frames:
                protocol, data, on_fail = frames[0]
                try:
                    ch.send_nowait(self._frame(peer, protocol, data))
                except ClosedError as exc:
                    frames.popleft()
                    if on_fail is not None:
                        on_fail(exc)
                    continue
                frames.popleft()
                self.frames_sent += 1
                self.bytes_sent += len(data)
                if ch.backlogged:
                    await ch.wait_writable()
        except PeerwireError as exc:
            self._fail(peer, queue, exc)
        except asyncio.CancelledError:
            if frames:
                log.info("node stopping: %d frames for %s dropped", len(frames), peer)
                frames.clear()
            raise
        finally:
            if self._queues.get(peer) is queue:
                del self._queues[peer]

    def _fail(self, peer: PeerId, queue: _PeerQueue, exc: BaseException) -> None:
        if self._queues.get(peer) is queue:
            del self._queues[peer]
        failed = list(queue.frames)
        queue.frames.clear()
        log.debug("link to %s failed with %d frames queued: %s", peer, len(failed), exc)
        for _protocol, _data, on_fail in failed:
            if on_fail is not None:
                try:
                    on_fail(exc)
                except Exception:
                    log.exception("on_fail callback raised")

    def queued(self, peer: PeerId) -> int:
        queue = self._queues.get(peer)
        return 0 if queue is None else len(queue.frames)


class Responder(Protocol):
    """Where the answer to a routed request goes (relay implements it)."""

    def reply(self, data: bytes) -> None: ...

    def fail(self, code: str, text: str) -> None:
        """``code``: "handler" (raised), "limit" (dropped), "no_handler"."""


class LocalDelivery:
    """Hands messages to the application's handlers and inboxes (see the module docstring)."""

    def __init__(self, host: Host, messaging: MessagingService, *, max_pending: int) -> None:
        self._host = host
        self._ms = messaging
        self._max_pending = max_pending
        self._running = 0
        self._overflow: dict[str, deque[Message]] = {}
        self.dropped = 0
        """Messages refused because ``max_pending`` was reached (each one logged)."""

    def has_handler(self, protocol: str) -> bool:
        return protocol in self._ms._routes

    def deliver(self, msg: Message, respond: Responder | None = None) -> bool:
        """Deliver ``msg`` locally; False if no handler or inbox is registered for it.

        With ``respond``, the message is a request: a handler's returned bytes
        (or ``node.reply``) go to ``respond.reply``, failures to ``respond.fail``.
        """
        route = self._ms._routes.get(msg.protocol)  # private: no public lookup exists
        if route is None:
            return False
        msg.expects_reply = respond is not None
        msg.reply_channel = respond
        if route.inbox is not None:
            box = route.inbox
            waiting = self._overflow.get(msg.protocol)
            if not waiting and box._offer(msg):
                return True
            if waiting is None:
                waiting = self._overflow[msg.protocol] = deque()
            if self._pending_overflow() >= self._max_pending:
                self._drop(msg, respond, "inbox full")
                return True
            waiting.append(msg)
            box._queue.on_space(lambda: self._flush(msg.protocol))
            return True
        handler = route.handler
        assert handler is not None
        if route.is_async:
            self._start(msg, respond, handler)
            return True
        try:
            result = handler(msg)
        except Exception as exc:
            self._failed(msg, respond, exc)
            return True
        if result is not None and type(result) is not bytes and inspect.isawaitable(result):
            self._start(msg, respond, result)
            return True
        self._answer(msg, respond, result)
        return True

    def _pending_overflow(self) -> int:
        return sum(len(q) for q in self._overflow.values())

    def _flush(self, protocol: str) -> None:
        waiting = self._overflow.get(protocol)
        route = self._ms._routes.get(protocol)
        if not waiting:
            return
        if route is None or route.inbox is None:
            for msg in waiting:
                self._drop(msg, msg.reply_channel, "inbox closed")
            del self._overflow[protocol]
            return
        box = route.inbox
        while waiting and box._offer(waiting[0]):
            waiting.popleft()
        if waiting:
            box._queue.on_space(lambda: self._flush(protocol))
        else:
            del self._overflow[protocol]

    def _start(self, msg: Message, respond: Responder | None, work: Any) -> None:
        if self._running >= self._max_pending:
            if inspect.iscoroutine(work):
                work.close()
            self._drop(msg, respond, "too many handlers running")
            return
        self._running += 1
        self._host.spawn(self._run(msg, respond, work), name=f"{msg.kind} handler")

    async def _run(self, msg: Message, respond: Responder | None, work: Any) -> None:
        try:
            if inspect.isawaitable(work):
                result = await work
            else:
                result = await work(msg)
        except Exception as exc:
            self._failed(msg, respond, exc)
            return
        finally:
            self._running -= 1
        self._answer(msg, respond, result)

    def _answer(self, msg: Message, respond: Responder | None, result: object) -> None:
        if result is None:
            return
        if respond is None:
            log.debug("handler for %s returned a value for a one-way message", msg.protocol)
            return
        if not isinstance(result, bytes | bytearray | memoryview):
            respond.fail(
                "handler", f"handler for {msg.protocol} returned {type(result).__name__}, not bytes"
            )
            return
        respond.reply(bytes(result))

    def _failed(self, msg: Message, respond: Responder | None, exc: BaseException) -> None:
        if respond is not None:
            log.info("handler for %s failed on a %s request: %r", msg.protocol, msg.kind, exc)
            respond.fail("handler", f"{type(exc).__name__}: {exc}")
        else:
            log.error("handler for %s failed on a %s message", msg.protocol, msg.kind, exc_info=exc)

    def _drop(self, msg: Message, respond: Responder | None, why: str) -> None:
        self.dropped += 1
        log.warning(
            "dropping %s message %d for %s from %s: %s (limit %d)",
            msg.kind,
            msg.id,
            msg.protocol,
            msg.sender,
            why,
            self._max_pending,
        )
        if respond is not None:
            respond.fail("limit", why)
