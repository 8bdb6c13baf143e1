"""One ``/peerwire/msg/1.0.0`` stream and the bookkeeping around it.

Each node sends its messages and requests on its own outbound stream to a peer;
the answers to those requests come back on the same stream. So a connection
carries at most two message streams, one per direction, and neither side ever
races the other to create "the" stream.

Incoming bytes are parsed inside the muxer's receive callback (push mode): no
task is woken per message. When a message cannot be handed on (its inbox or
the worker queue is full) the channel *stalls*: it keeps the undelivered
envelopes, stops acknowledging bytes, and the remote's yamux window runs dry,
so the remote's ``send`` waits. Nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...errors import ConnectionLost, PeerwireError, ProtocolError
from .codec import Envelope, FrameDecoder

if TYPE_CHECKING:
    from ...identity.peer_id import PeerId
    from ...mux.stream import Stream

log = logging.getLogger("peerwire.messaging")

OUT_BACKLOG_LIMIT = 1 << 20
"""Bytes of replies waiting for window before the channel stops reading requests."""


class Channel:
    """A message stream to/from one peer."""

    __slots__ = (
        "_backlog",
        "_deliver",
        "_ended",
        "_out",
        "_out_bytes",
        "_out_task",
        "_out_waiters",
        "decoder",
        "ended",
        "now_ms",
        "outbound",
        "peer",
        "pending",
        "remote_version",
        "stream",
    )

    def __init__(
        self,
        stream: Stream,
        *,
        outbound: bool,
        max_message_size: int,
        deliver: Callable[[Channel, Envelope], bool],
        on_end: Callable[[Channel, BaseException | None], None],
    ) -> None:
        self.stream = stream
        self.peer: PeerId = stream.remote_peer
        self.outbound = outbound
        self.decoder = FrameDecoder(max_message_size)
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.remote_version = ""
        self.ended = False
        self.now_ms = 0
        """Wall clock (ms) read once per received chunk, for timestamp checks."""
        self._deliver = deliver
        self._ended = on_end
        self._backlog: deque[Envelope] = deque()
        self._out: deque[bytes] = deque()
        self._out_bytes = 0
        self._out_task: asyncio.Task[None] | None = None
        self._out_waiters: list[asyncio.Future[None]] = []
        stream.set_push_receiver(self._on_data, self._on_end)

    # ------------------------------------------------------------ receiving
    def _on_data(self, chunk: bytes) -> None:
        self.now_ms = int(time.time() * 1000)
        try:
            envelopes = self.decoder.feed(chunk)
        except ProtocolError as exc:
            log.warning("bad message frame from %s: %s; resetting the stream", self.peer, exc)
            self.abort(exc)
            return
        if self._backlog:  # pragma: no cover - paused channels get no data
            self._backlog.extend(envelopes)
            return
        deliver = self._deliver
        for i, env in enumerate(envelopes):
            if not deliver(self, env):
                self._backlog.extend(envelopes[i:])
                self.stream.pause_push()
                return

    def unstall(self) -> None:
        """Called when the inbox/queue that stalled us has room again."""
        self.now_ms = int(time.time() * 1000)
        backlog = self._backlog
        deliver = self._deliver
        while backlog:
            if self.ended:
                backlog.clear()
                return
            if not deliver(self, backlog[0]):
                return  # still full: ``deliver`` registered us again
            backlog.popleft()
        if not self._out_bytes or self._out_bytes < OUT_BACKLOG_LIMIT:
            self.stream.resume_push()

    def _on_end(self, exc: BaseException | None) -> None:
        if exc is None:
            # Remote half-closed: no more messages come; our direction may still send.
            if not self.pending:
                self._finish(None)
            return
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        lost = ConnectionLost(f"message stream to {self.peer} ended: {exc or 'closed'}")
        if exc is not None:
            lost.__cause__ = exc
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(lost)
        self.pending.clear()
        self._backlog.clear()
        self._out.clear()
        self._out_bytes = 0
        for waiter in self._out_waiters:
            if not waiter.done():
                waiter.set_exception(lost)
        self._out_waiters.clear()
        self._ended(self, exc)

    def abort(self, exc: BaseException) -> None:
        self.stream.reset_nowait()
        self._finish(exc)

    # -------------------------------------------------------------- sending
    def send_nowait(self, frame: bytes) -> None:
        """Queue a frame; never waits. Frames keep their order."""
        if self.ended:
            raise ConnectionLost(f"message stream to {self.peer} has ended")
        if not self._out:
            taken = self.stream.write_nowait(frame)
            if taken == len(frame):
                return
            frame = frame[taken:]
        self._out.append(frame)
        self._out_bytes += len(frame)
        if self._out_task is None:
            self._out_task = asyncio.ensure_future(self._flush_out())
        if self._out_bytes >= OUT_BACKLOG_LIMIT:
            self.stream.pause_push()  # stop taking requests whose replies we cannot send

    @property
    def backlogged(self) -> bool:
        return bool(self._out) or self.stream.write_backlogged

    async def wait_writable(self) -> None:
        """Wait until queued frames went out (backpressure for async senders)."""
        if self._out:
            fut = asyncio.get_running_loop().create_future()
            self._out_waiters.append(fut)
            await fut
        if self.stream.write_backlogged:
            await self.stream.drain()

    async def _flush_out(self) -> None:
        try:
            while self._out:
                frame = self._out[0]
                await self.stream.write(frame)
                if self._out and self._out[0] is frame:
                    self._out.popleft()
                    self._out_bytes -= len(frame)
        except PeerwireError as exc:
            self._finish(exc)
            return
        finally:
            self._out_task = None
        waiters, self._out_waiters = self._out_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if not self._backlog:
            self.stream.resume_push()
