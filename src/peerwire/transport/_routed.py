"""Connection plumbing shared by the TCP and memory transports (private).

:class:`RoutedConnection` routes incoming events to a receiver that may be set
late or swapped, implements read pausing and the write-pause waiters behind
``drain()``; both transports build on it so that, seen from a receiver, they
behave identically.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Final

from ..errors import ClosedError, ConnectionLost
from .base import ConnectionReceiver, OnConnection, RawConnection

log = logging.getLogger("peerwire.transport")


class _EofMarker:
    __slots__ = ()


class _Lost:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc


_EOF: Final = _EofMarker()
_Pending = bytes | _EofMarker | _Lost


def as_connection_lost(exc: BaseException) -> ConnectionLost:
    """The error a receiver sees for a broken connection: ConnectionLost, cause chained."""
    if isinstance(exc, ConnectionLost):
        return exc
    err = ConnectionLost(f"connection lost: {exc!r}")
    err.__cause__ = exc
    return err


class RoutedConnection(RawConnection):
    """Receiver routing, read pausing and write-pause waiters, shared by tcp and memory.

    Incoming events reach the receiver directly when one is set, reading is not
    paused and nothing is queued (``_direct`` caches that condition so the hot
    path is one attribute test). Otherwise they are copied into ``_pending`` and
    replayed in order by :meth:`set_receiver` or after :meth:`resume_reading`.
    A loss waits behind queued data unless the subclass says to discard it
    (abort, reset, local close: the bytes will never be read).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._receiver: ConnectionReceiver | None = None
        self._direct: ConnectionReceiver | None = None
        # A list, not a deque: it is empty for almost every connection's whole
        # life (it only fills while reading is paused or no receiver is set),
        # and an empty deque costs ~600 bytes against a list's 56.
        self._pending: list[_Pending] = []
        self._reading_paused = False
        self._replay_scheduled = False
        self._eof_delivered = False
        self._loss_delivered = False
        self._write_paused = False
        # Created only when someone waits (most connections never do): an
        # asyncio.Event costs ~0.9 KB, and simulations hold 100k+ connections.
        self._writable: asyncio.Event | None = None
        self._closed_event: asyncio.Event | None = None
        self._lost = False
        self._lost_exc: BaseException | None = None
        self._closed_by_us = False
        self._eof_sent = False

    # -- hooks for subclasses
    def _pause_source(self) -> None:
        """Stop the underlying source of bytes (TCP: stop reading the socket)."""

    def _resume_source(self) -> None:
        """Restart the underlying source of bytes."""

    def _data_delivered(self, nbytes: int) -> None:
        """Called just before ``nbytes`` are handed to the receiver (memory flow credit)."""

    # -- receive side
    def set_receiver(self, receiver: ConnectionReceiver) -> None:
        previous = self._receiver
        eof_before, loss_before = self._eof_delivered, self._loss_delivered
        self._receiver = receiver
        self._direct = None
        if receiver is not previous:
            if self._write_paused:
                receiver.pause_writing()
            if eof_before:
                receiver.eof_received()
        self._deliver_pending()
        if receiver is not previous and loss_before and self._receiver is receiver:
            receiver.connection_lost(self._lost_exc)

    def _update_direct(self) -> None:
        receiver = self._receiver
        if receiver is not None and not self._reading_paused and not self._pending:
            self._direct = receiver
        else:
            self._direct = None

    def _deliver_pending(self) -> None:
        receiver = self._receiver
        pending = self._pending
        # A receiver may swap itself out (set_receiver) or pause while we replay;
        # re-check both before every item.
        while pending and receiver is not None and self._receiver is receiver:
            item = pending[0]
            if isinstance(item, _Lost):
                del pending[0]
                self._loss_delivered = True
                # The receiver is done with us: let go of it, so a closed
                # connection and the stack above it (which points back at us)
                # are freed by reference counting, not left to the cyclic GC.
                self._receiver = None
                receiver.connection_lost(item.exc)
            elif self._reading_paused:
                break
            elif isinstance(item, bytes):
                del pending[0]
                self._data_delivered(len(item))
                receiver.data_received(memoryview(item))
            else:
                del pending[0]
                self._eof_delivered = True
                receiver.eof_received()
        self._update_direct()

    def _replay(self) -> None:
        self._replay_scheduled = False
        self._deliver_pending()

    def _route_data(self, data: bytes) -> None:
        direct = self._direct
        if direct is not None:
            self._data_delivered(len(data))
            direct.data_received(memoryview(data))
        else:
            self._pending.append(data)

    def _route_eof(self) -> None:
        direct = self._direct
        if direct is not None:
            self._eof_delivered = True
            direct.eof_received()
        else:
            self._pending.append(_EOF)

    def _route_lost(self, exc: BaseException | None, *, discard: bool) -> None:
        if self._lost:
            return
        self._lost = True
        self._lost_exc = exc
        if self._writable is not None:
            self._writable.set()
        if self._closed_event is not None:
            self._closed_event.set()
        if discard:
            self._pending.clear()
        self._pending.append(_Lost(exc))
        self._direct = None
        self._deliver_pending()

    def pause_reading(self) -> None:
        if self._reading_paused:
            return
        self._reading_paused = True
        self._direct = None
        if not self._lost:
            self._pause_source()

    def resume_reading(self) -> None:
        if not self._reading_paused or self._closed_by_us:
            return
        self._reading_paused = False
        if not self._lost:
            self._resume_source()
        if not self._pending:
            self._update_direct()
        elif not self._replay_scheduled:
            # Replay on the next loop pass, not inside the caller's resume_reading().
            self._replay_scheduled = True
            self._loop.call_soon(self._replay)

    def _mark_closed_by_us(self) -> None:
        """close()/abort() was called: no more writes, and (as asyncio does) no more reads."""
        self._closed_by_us = True
        if self._writable is not None:
            self._writable.set()
        self._reading_paused = True
        self._direct = None

    # -- write side
    def _pause_writing(self) -> None:
        if self._write_paused:
            return
        self._write_paused = True
        if not (self._closed_by_us or self._lost) and self._writable is not None:
            self._writable.clear()
        if self._receiver is not None:
            self._receiver.pause_writing()

    def _resume_writing(self) -> None:
        if not self._write_paused:
            return
        self._write_paused = False
        if self._writable is not None:
            self._writable.set()
        if self._receiver is not None:
            self._receiver.resume_writing()

    def _lost_error(self) -> ConnectionLost:
        err = ConnectionLost("connection lost")
        err.__cause__ = self._lost_exc
        return err

    def _check_writable(self) -> None:
        if self._closed_by_us:
            raise ClosedError("connection was closed")
        if self._lost:
            raise self._lost_error()
        if self._eof_sent:
            raise ClosedError("cannot write after write_eof()")

    @property
    def write_paused(self) -> bool:
        return self._write_paused

    async def drain(self) -> None:
        """Wait while writes are paused; ClosedError after close/abort, ConnectionLost if broken.

        Any number of tasks may wait at once; cancelling one does not disturb the others.
        """
        while True:
            if self._closed_by_us:
                raise ClosedError("connection was closed")
            if self._lost:
                if self._lost_exc is None:
                    return  # ended cleanly (both sides sent EOF): nothing left to wait for
                raise self._lost_error()
            if not self._write_paused:
                return
            if self._writable is None:
                self._writable = asyncio.Event()  # clear: writes are paused right now
            await self._writable.wait()

    @property
    def is_closing(self) -> bool:
        return self._closed_by_us or self._lost

    async def wait_closed(self) -> None:
        if self._lost:
            return
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        await self._closed_event.wait()


def run_on_connection(
    on_connection: OnConnection, conn: RawConnection, tasks: set[asyncio.Future[None]]
) -> None:
    """Call a listener's callback; run an awaitable result as a tracked task.

    A callback that fails leaves a connection nobody owns, so it is aborted.
    """
    try:
        result = on_connection(conn)
    except Exception:
        log.exception("on_connection callback failed for %s", conn.remote_addr)
        conn.abort()
        return
    if result is None or not inspect.isawaitable(result):
        return
    task = asyncio.ensure_future(result)
    tasks.add(task)

    def done(task: asyncio.Future[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "on_connection handler failed for %s",
                conn.remote_addr,
                exc_info=task.exception(),
            )
            conn.abort()

    task.add_done_callback(done)
