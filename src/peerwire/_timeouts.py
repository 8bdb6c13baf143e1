"""Deadlines that raise peerwire's own :class:`~peerwire.errors.Timeout`."""

from __future__ import annotations

import asyncio
from types import TracebackType

from .errors import Timeout


class deadline:  # used like the function it replaced: ``async with deadline(...)``
    """Bound the body by ``seconds`` (None: unbounded); on expiry raise Timeout naming ``what``.

    A plain class rather than an ``@asynccontextmanager`` generator: it runs
    around every handshake, negotiation and request, and the generator
    machinery cost more than the timer itself.
    """

    __slots__ = ("_seconds", "_timeout", "_what")

    def __init__(self, seconds: float | None, what: str) -> None:
        self._seconds = seconds
        self._what = what
        self._timeout = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._timeout.__aexit__(exc_type, exc, tb)
        except Timeout:
            raise
        except TimeoutError as timeout:
            raise Timeout(f"{self._what} timed out after {self._seconds} s") from timeout
