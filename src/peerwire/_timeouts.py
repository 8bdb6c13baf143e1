"""Deadlines that raise peerwire's own :class:`~peerwire.errors.Timeout`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import Timeout


@asynccontextmanager
async def deadline(seconds: float | None, what: str) -> AsyncIterator[None]:
    """Bound the body by ``seconds`` (None: unbounded); on expiry raise Timeout naming ``what``."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except Timeout:
        raise
    except TimeoutError as exc:
        raise Timeout(f"{what} timed out after {seconds} s") from exc
