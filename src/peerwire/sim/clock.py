"""A virtual-time asyncio event loop: simulated minutes run in wall-clock seconds.

:class:`VirtualClockLoop` is an ordinary :class:`asyncio.SelectorEventLoop`
whose ``time()`` is a number the loop owns. Whenever no callback is ready, the
loop would normally block in ``selector.select(timeout)`` until the next timer
is due; here the (fake) selector instead *advances the virtual clock* by
``timeout`` and returns at once. So ``await asyncio.sleep(60)`` costs a few
microseconds, ``asyncio.timeout`` and ``loop.call_at`` keep their meaning, and
a run is a pure function of its inputs: no wall-clock reading ever reaches the
code under test through the loop.

What asyncio itself still needs works:

* the self-pipe (a socketpair registered while the loop is built) stays real,
  so ``call_soon_threadsafe`` from another thread and signal wake-ups
  (Ctrl-C under :class:`asyncio.Runner`) interrupt an idle loop;
* the default executor works, but **virtual time does not wait for threads**:
  a thread's work takes zero virtual time only if nothing else is scheduled;
  with timers pending, the clock jumps past them while the thread runs.

What is refused: every real socket, pipe or subprocess (``create_connection``,
``create_server``, ``sock_*``, ``getaddrinfo``, ``add_reader`` on anything but
the self-pipe ...) raises :class:`~peerwire.errors.UsageError` at once, because
I/O that completes in wall time on a loop whose time is virtual would make
runs unrepeatable. Use the memory transport (``peerwire.sim.SimNetwork``).

A loop with nothing ready, no timer pending and no thread wake-up can never
make progress again: a plain asyncio loop would hang forever. This one waits
``stall_timeout`` real seconds for a thread to wake it and then raises
:class:`SimulationStalled`, so a deadlocked simulation fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import math
import random
import selectors
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, TypeVarTuple, cast

from ..errors import PeerwireError, UsageError

if TYPE_CHECKING:
    from .shard import ShardWindow

__all__ = [
    "DEFAULT_STALL_TIMEOUT",
    "SimulationStalled",
    "VirtualClockLoop",
    "current_rng",
    "run_virtual",
]

T = TypeVar("T")
_Ts = TypeVarTuple("_Ts")

DEFAULT_STALL_TIMEOUT: Final = 60.0
"""Real seconds an idle virtual loop (no ready callback, no timer) waits for a
thread to wake it before raising :class:`SimulationStalled`."""

_MIN_CANCELLED_TIMERS: Final = 100
"""Rebuild the timer heap once more than this many (and half of all) timers
are cancelled ones (``asyncio.timeout`` cancels most of what it schedules)."""


class SimulationStalled(PeerwireError):
    """The virtual loop is idle with no timer pending: nothing can ever happen again.

    Usually a deadlock (every task awaits a future nobody will resolve).
    """


_REFUSED = (
    "{what} would use real I/O, which the virtual clock loop refuses: its time is "
    "virtual, so wall-clock I/O would make runs unrepeatable. Use the memory "
    "transport (peerwire.sim.SimNetwork / MemoryTransport) instead."
)


class _VirtualSelector(selectors.BaseSelector):
    """Advances the loop's clock instead of waiting; only the self-pipe is real."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self._sealed = False
        self._loop: VirtualClockLoop | None = None
        self.woken = False
        """Set by the loop when another thread wrote to the self-pipe."""

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if self._sealed:
            raise UsageError(_REFUSED.format(what=f"watching file descriptor {fileobj!r}"))
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        if self._sealed:
            raise UsageError(_REFUSED.format(what=f"watching file descriptor {fileobj!r}"))
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Poll the self-pipe; ``timeout=None`` waits for another thread (see the loop)."""
        loop = self._loop
        assert loop is not None
        self.woken = False
        if timeout is None:
            # Idle with no timer: only another thread (or a signal) can wake us.
            events = self._real.select(loop.stall_timeout)
            if not events:
                raise SimulationStalled(
                    "virtual clock loop is idle with no timer pending and nothing woke it "
                    f"for {loop.stall_timeout} real seconds: every task is waiting for "
                    "something that can no longer happen (deadlock?)"
                )
            return events
        return self._real.select(0)

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time (see the module docstring).

    ``start`` is the initial value of ``loop.time()``. ``seed`` seeds
    :attr:`rng`, the one :class:`random.Random` a simulation should draw every
    decision from (:func:`current_rng` finds it from inside the loop).
    """

    def __init__(
        self,
        *,
        start: float = 0.0,
        seed: int | None = 0,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
    ) -> None:
        selector = _VirtualSelector()
        self._now = float(start)
        self.stall_timeout = stall_timeout
        self.rng = random.Random(seed)
        """The simulation's random number generator (seeded)."""
        # Timers as (when, sequence, handle): compared in C, and FIFO among equal times.
        self._timers: list[tuple[float, int, Any]] = []
        self._timer_seq = 0
        self._instant_end: list[asyncio.Handle] = []
        super().__init__(selector)
        selector._loop = self
        selector._sealed = True  # the self-pipe is registered; nothing else may be
        self._vselector = selector
        self.window: ShardWindow | None = None
        """Set while this loop runs one shard of a simulation (:mod:`peerwire.sim.shard`):
        the clock then never passes ``window.end`` without a ``window.sync``."""

    # ------------------------------------------------------------------ time
    def time(self) -> float:
        """The virtual clock, in seconds."""
        return self._now

    @property
    def has_ready(self) -> bool:
        """True if callbacks are ready to run now."""
        return bool(cast(Any, self)._ready)

    def move_to(self, when: float) -> None:
        """Set the clock to ``when`` if that is later (a shard's window end; see ``window``)."""
        if when > self._now:
            self._now = when

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` at once (timers due by then fire next pass).

        Only for tests that want to skip time explicitly; the loop advances by
        itself whenever it is idle.
        """
        if seconds < 0:
            raise UsageError("the virtual clock cannot go backwards")
        self._now += seconds

    # ------------------------------------------------------------ scheduling
    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """As :meth:`asyncio.AbstractEventLoop.call_at`, on the virtual clock."""
        if when is None:
            raise TypeError("when cannot be None")
        base: Any = self  # BaseEventLoop internals are not in the type stubs
        base._check_closed()
        if base._debug:
            base._check_thread()
        timer: Any = asyncio.TimerHandle(when, callback, args, self, context)
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, timer))
        timer._scheduled = True
        return cast(asyncio.TimerHandle, timer)

    def call_at_instant_end(
        self, callback: Callable[[*_Ts], object], *args: *_Ts
    ) -> asyncio.Handle:
        """Run ``callback`` once nothing else is left to do at the current virtual time.

        The memory transport flushes its writes here in a simulation: every byte
        a connection end writes during one instant, across however many loop
        passes the layers above take to produce it (a negotiation echo, then the
        muxer's first frame, then a stream's answer), leaves as one packet.
        Nothing waits for it in virtual time: the clock does not move until
        these callbacks have run. They run in the order they were scheduled.
        """
        handle = asyncio.Handle(callback, args, self, None)
        self._instant_end.append(handle)
        return handle

    def _run_once(self) -> None:
        """One loop pass: what BaseEventLoop._run_once does, minus the waiting.

        Nothing ready: jump the clock to the earliest timer (no selector call
        at all unless another thread wrote to the self-pipe, or no timer is
        left, when only a thread can still wake us).
        """
        base: Any = self  # BaseEventLoop internals are not in the type stubs
        timers: list[tuple[float, int, Any]] = self._timers
        ready: collections.deque[Any] = base._ready
        cancelled = base._timer_cancelled_count
        if cancelled > _MIN_CANCELLED_TIMERS and cancelled * 2 > len(timers):
            kept = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            timers[:] = kept
            base._timer_cancelled_count = 0
        while timers and timers[0][2]._cancelled:
            base._timer_cancelled_count -= 1
            heapq.heappop(timers)[2]._scheduled = False
        instant_end = self._instant_end
        if instant_end and not ready and not (timers and timers[0][0] <= self._now):
            ready.extend(instant_end)  # this instant is over but for these
            instant_end.clear()
        selector = self._vselector
        if ready or base._stopping:
            if selector.woken:
                base._process_events(selector.select(0))
        elif timers:
            if selector.woken:
                base._process_events(selector.select(0))
            if not ready and timers[0][0] > self._now:
                window = self.window
                if window is not None and timers[0][0] >= window.end:
                    window.sync(timers[0][0])
                    return
                self._now = timers[0][0]
        elif self.window is not None:
            self.window.sync(math.inf)
            return
        else:
            base._process_events(selector.select(None))
        now = self._now
        # Pass after pass at this instant, as run_forever would call us, minus
        # the bookkeeping above: most passes run one or two callbacks.
        while True:
            while timers and timers[0][0] <= now:
                handle = heapq.heappop(timers)[2]
                handle._scheduled = False
                ready.append(handle)
            for _ in range(len(ready)):
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
            if not ready or base._stopping or selector.woken:
                return

    def close(self) -> None:
        timers: list[tuple[float, int, Any]] = self._timers
        for entry in timers:
            entry[2]._scheduled = False
        timers.clear()
        self._instant_end.clear()  # as the base class drops its ready callbacks
        super().close()

    def _write_to_self(self) -> None:
        self._vselector.woken = True
        super()._write_to_self()  # type: ignore[misc]

    # -------------------------------------------------------- refused real I/O
    def _refuse(self, what: str) -> NoReturn:
        raise UsageError(_REFUSED.format(what=what))

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("create_connection()")

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("create_server()")

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("create_datagram_endpoint()")

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("create_unix_connection()")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("create_unix_server()")

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("connect_accepted_socket()")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("getaddrinfo()")

    async def getnameinfo(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("getnameinfo()")

    async def sock_connect(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("sock_connect()")

    async def sock_accept(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("sock_accept()")

    async def sock_recv(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("sock_recv()")

    async def sock_sendall(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("sock_sendall()")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("subprocess_exec()")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("subprocess_shell()")

    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("connect_read_pipe()")

    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse("connect_write_pipe()")


def current_rng() -> random.Random:
    """The running virtual loop's seeded RNG (UsageError on any other loop)."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualClockLoop):
        raise UsageError("current_rng() needs a running VirtualClockLoop")
    return loop.rng


def run_virtual(
    main: Coroutine[Any, Any, T],
    *,
    seed: int | None = 0,
    start: float = 0.0,
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
    debug: bool | None = None,
) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualClockLoop`, like ``asyncio.run``."""
    factory: Callable[[], asyncio.AbstractEventLoop] = lambda: VirtualClockLoop(  # noqa: E731
        start=start, seed=seed, stall_timeout=stall_timeout
    )
    with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
        return runner.run(main)
