"""Application-level faults and per-node message accounting.

The link model (:mod:`peerwire.sim.network`) delays bytes; this module makes a
node *misbehave*: it drops or delays the requests and messages it receives,
the way an overloaded or faulty peer does. Two entry points reach everything
a node receives:

* **protocol streams** (``/ipfs/kad/1.0.0``, ``/peerwire/chord/...``, any
  handler set with ``set_stream_handler``): each inbound stream is one
  request. A dropped one is read and never answered (the requester waits for
  its own timeout, exactly as for a lost message); a delayed one is answered
  ``delay_by`` seconds late. This wraps the host's handler table, so handlers
  registered later are covered too;
* **direct messages** (``/peerwire/msg/1.0.0``): a ``MESSAGE_RECEIVED``
  middleware hook drops them (that hook is synchronous, so a message cannot
  be delayed there; delay direct messages with
  :meth:`SimNetwork.set_egress_delay` at the link level).

Identify and ping are infrastructure and never faulted. Every decision is
drawn from the ``rng`` passed in. The same wrapper counts what each node
handled (:class:`NodeCounters`), which gives the "messages per node" metric.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ..errors import PeerwireError, UsageError
from ..host.middleware import Hook
from ..protocols.identify.identify import IDENTIFY_PROTOCOL, IDENTIFY_PUSH_PROTOCOL
from ..protocols.messaging.service import MSG_PROTOCOL
from ..protocols.ping.ping import PING_PROTOCOL

if TYPE_CHECKING:
    from ..host.host import StreamHandler
    from ..mux.stream import Stream
    from ..node import Node
    from ..protocols.messaging.message import Message

__all__ = [
    "INFRASTRUCTURE_PROTOCOLS",
    "MessageFaults",
    "NodeCounters",
    "install_message_faults",
]

INFRASTRUCTURE_PROTOCOLS: Final = frozenset(
    {IDENTIFY_PROTOCOL, IDENTIFY_PUSH_PROTOCOL, PING_PROTOCOL, MSG_PROTOCOL}
)
"""Streams never faulted nor counted as requests (direct messages are counted per message)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFaults:
    """How a node treats what it receives. Probabilities are per request/message."""

    drop: float = 0.0
    """Probability that a request or direct message is silently dropped."""
    delay: float = 0.0
    """Probability that a request is answered ``delay_by`` seconds late."""
    delay_by: float = 2.0
    """Seconds a delayed request waits before its handler runs."""
    hold: float = 120.0
    """Longest time a dropped request's stream is kept open, unanswered, before
    it is reset (normally the requester gives up first and resets it)."""
    protocols: frozenset[str] | None = None
    """Protocols to fault; None: every protocol except identify and ping."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.drop <= 1.0 and 0.0 <= self.delay <= 1.0):
            raise UsageError("drop and delay are probabilities in [0, 1]")
        if self.drop + self.delay > 1.0:
            raise UsageError("drop + delay must be <= 1")
        if self.delay_by < 0 or self.hold <= 0:
            raise UsageError("delay_by must be >= 0 and hold > 0")

    @property
    def active(self) -> bool:
        return bool(self.drop or self.delay)

    def applies_to(self, protocol: str) -> bool:
        if self.protocols is not None:
            return protocol in self.protocols
        return protocol not in INFRASTRUCTURE_PROTOCOLS


@dataclass(slots=True)
class NodeCounters:
    """What one node received at the application level."""

    requests: int = 0
    """Inbound protocol streams (requests) other than identify/ping/messaging."""
    messages: int = 0
    """Direct messages (``/peerwire/msg``) received, including dropped ones."""
    dropped: int = 0
    delayed: int = 0

    @property
    def total(self) -> int:
        return self.requests + self.messages


class _Faulty:
    """Per-node fault state shared by the handler table and the message hook."""

    def __init__(self, faults: MessageFaults, rng: random.Random) -> None:
        self.faults = faults
        self.rng = rng
        self.counters = NodeCounters()

    def decide(self) -> int:
        """0 deliver, 1 drop, 2 delay (one RNG draw only when a fault is configured)."""
        faults = self.faults
        if not faults.active:
            return 0
        r = self.rng.random()
        if r < faults.drop:
            return 1
        if r < faults.drop + faults.delay:
            return 2
        return 0

    def on_message(self, msg: Message) -> Message | None:
        self.counters.messages += 1
        if self.faults.applies_to(msg.protocol) and self.decide() == 1:
            self.counters.dropped += 1
            return None
        return msg

    def wrap(self, protocol: str, handler: StreamHandler) -> StreamHandler:
        counters, faults = self.counters, self.faults
        faulted = faults.applies_to(protocol)

        async def handle(stream: Stream) -> None:
            counters.requests += 1
            verdict = self.decide() if faulted else 0
            if verdict == 1:
                counters.dropped += 1
                await _swallow(stream, faults.hold)
                return
            if verdict == 2:
                counters.delayed += 1
                await asyncio.sleep(faults.delay_by)
            await handler(stream)

        return handle


async def _swallow(stream: Stream, hold: float) -> None:
    """Read and ignore until the requester gives up (or ``hold`` passes), then reset.

    A requester that half-closed still gets no answer: we keep the stream
    open, unanswered, until ``hold`` runs out.
    """
    try:
        async with asyncio.timeout(hold):
            while await stream.read():
                pass
            await asyncio.sleep(hold)
    except (TimeoutError, PeerwireError):
        pass
    await stream.reset()


class _FaultyHandlers(dict[str, "StreamHandler"]):
    """The host's handler table, returning wrapped handlers from ``get``.

    The host looks a handler up with ``get`` when it serves a stream and
    checks support with ``in``; storing stays untouched, so ``protocols()``
    and ``set_stream_handler`` behave as before.
    """

    def __init__(self, base: dict[str, StreamHandler], faulty: _Faulty) -> None:
        super().__init__(base)
        self._faulty = faulty
        self._wrapped: dict[str, tuple[StreamHandler, StreamHandler]] = {}

    def get(self, key: str, default: StreamHandler | None = None) -> StreamHandler | None:  # type: ignore[override]
        handler = super().get(key)
        if handler is None:
            return default
        if key in INFRASTRUCTURE_PROTOCOLS:
            return handler
        cached = self._wrapped.get(key)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._faulty.wrap(key, handler))
            self._wrapped[key] = cached
        return cached[1]


def install_message_faults(
    node: Node, faults: MessageFaults | None = None, *, rng: random.Random
) -> NodeCounters:
    """Make ``node`` fault (and count) what it receives; returns its live counters.

    Call before or after start, once per node. With ``faults=None`` (or a
    :class:`MessageFaults` with zero rates) the node only counts.
    """
    host = node.host
    if isinstance(host._handlers, _FaultyHandlers):
        raise UsageError("message faults are already installed on this node")
    faulty = _Faulty(faults or MessageFaults(), rng)
    host._handlers = _FaultyHandlers(host._handlers, faulty)
    node.use(Hook.MESSAGE_RECEIVED, faulty.on_message, priority=1 << 30)
    return faulty.counters
