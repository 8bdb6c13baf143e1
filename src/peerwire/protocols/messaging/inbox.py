"""Bounded queues that tell producers when room frees up.

``asyncio.Queue`` makes a full producer *wait*; our producers are receive
callbacks that must never wait, so instead ``offer`` refuses and the producer
registers ``on_space``: it is called back once a consumer took an item. That
is how a slow inbox slows the remote sender down instead of dropping messages.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from ...errors import ClosedError

if TYPE_CHECKING:
    from .message import Message
    from .service import MessagingService

T = TypeVar("T")


class _BoundedQueue(Generic[T]):
    __slots__ = ("_closed", "_getters", "_items", "_space_waiters", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._space_waiters: list[Callable[[], None]] = []
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        """Append ``item`` unless full; never waits."""
        if self._closed:
            raise ClosedError("queue closed")
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(item)
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                break
        return True

    def on_space(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once) after the next item is taken."""
        if callback not in self._space_waiters:
            self._space_waiters.append(callback)

    async def get(self) -> T:
        while not self._items:
            if self._closed:
                raise ClosedError("queue closed")
            fut = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            await fut
        item = self._items.popleft()
        if self._space_waiters:
            waiters, self._space_waiters = self._space_waiters, []
            loop = asyncio.get_running_loop()
            for callback in waiters:
                loop.call_soon(callback)
        return item

    def close(self) -> None:
        self._closed = True
        for getter in self._getters:
            if not getter.done():
                getter.set_result(None)
        self._getters.clear()


class Inbox:
    """``async for msg in node.inbox(protocol)``: messages for one protocol, in order.

    Bounded (``maxsize``): while it is full, the peers sending to it are slowed
    down by flow control; nothing is dropped. Reply to requests with
    ``await node.reply(msg, data)``. ``close()`` unregisters the inbox.
    """

    def __init__(self, protocol: str, maxsize: int, service: MessagingService) -> None:
        self.protocol = protocol
        self._queue: _BoundedQueue[Message] = _BoundedQueue(maxsize)
        self._service = service

    def __len__(self) -> int:
        return len(self._queue)

    def _offer(self, msg: Message) -> bool:
        return self._queue.offer(msg)

    async def get(self) -> Message:
        """The next message; ClosedError once the inbox is closed and empty."""
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self._queue.get()
            except ClosedError:
                return

    def close(self) -> None:
        """Stop receiving: unregister the protocol; iteration ends after queued messages."""
        self._service.off(self.protocol)

    def _closed_by_service(self) -> None:
        self._queue.close()
