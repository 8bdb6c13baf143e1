"""The middleware bus: prioritised hook chains at fixed points of a node's life.

A program hooks into a node with ``node.use(Hook.X, fn, priority=0)``. Each
:class:`Hook` has one chain of functions; the chain runs in order of
descending priority, ties in the order the functions were added, and a
function stops the chain by returning ``False`` (or, for the message hooks, by
dropping the message). This is nnet's middleware model, mapped onto libp2p's
connection life cycle; see ``docs/middleware.md`` for the table of hooks.

Four kinds of hook:

* **veto** hooks (``NODE_WILL_START``, ``WILL_DIAL``, ``CONNECTION_ACCEPTED``,
  ``PEER_CONNECTED``): ``False`` refuses the operation. A function that
  *raises* also refuses it (fail closed: a broken filter must not let
  everything through) and the exception is logged.
* **notify** hooks (the others except the message hooks and
  ``RELAY_PRIORITY``; this includes the overlay hooks ``SUCCESSOR_ADDED`` ...
  ``NEIGHBOUR_REMOVED``): ``False`` only stops the chain; a function that
  raises is logged and the chain goes on.
* **message** hooks (``MESSAGE_RECEIVED``, ``MESSAGE_WILL_SEND``): a
  transform chain, see :meth:`Middleware.run_message`. A function that raises
  drops the message (and is logged).
* **value** hook ``RELAY_PRIORITY``: each function gets ``(peer, priority)``
  and returns the new priority; the overlay runs this chain itself (see
  :meth:`peerwire.overlay.chord.ChordOverlay.priority`).

``CONNECTION_ACCEPTED``, the message hooks and ``RELAY_PRIORITY`` run on
synchronous hot paths (a transport callback; every message; every routing
decision), so only plain functions may be registered for them; the other
hooks accept ``async def`` functions too.

Why the data layout: the message path calls :meth:`Middleware.has` and
:meth:`Middleware.run_message` for every message, so each hook keeps a
ready-made tuple of its functions, rebuilt (sorted) only when a function is
added or removed. Running a chain iterates over that tuple as it was when the
chain started, so adding or removing functions from inside a hook is safe and
takes effect from the next run.
"""

from __future__ import annotations

import enum
import inspect
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..protocols.messaging.message import Message

__all__ = ["SYNC_ONLY_HOOKS", "VETO_HOOKS", "Hook", "Middleware"]

log = logging.getLogger("peerwire.middleware")


class Hook(enum.Enum):
    """The points where middleware runs. See ``docs/middleware.md`` for each one."""

    NODE_WILL_START = 0
    """``fn(node)``, before the node listens; ``False`` aborts start with Vetoed."""
    NODE_STARTED = 1
    """``fn(node)``, after listening and the bootstrap dials."""
    NODE_WILL_STOP = 2
    """``fn(node)``, before the node stops (notify only: stop cannot be vetoed)."""
    NODE_STOPPED = 3
    """``fn(node)``, after every connection and listener is closed."""
    WILL_DIAL = 4
    """``fn(addr, peer_or_None)``, before every dial attempt; ``False`` vetoes it."""
    CONNECTION_ACCEPTED = 5
    """``fn(raw)`` (sync only), an inbound connection before any handshake; ``False`` drops it."""
    PEER_CONNECTED = 6
    """``fn(conn)``, after the upgrade, before identify; ``False`` closes the connection."""
    PEER_READY = 7
    """``fn(conn, info)``, after identify answered on the connection."""
    PEER_DISCONNECTED = 8
    """``fn(conn)``, when the last connection to a peer closed."""
    MESSAGE_RECEIVED = 9
    """``fn(msg)`` (sync only), transform chain before a message is delivered."""
    MESSAGE_WILL_SEND = 10
    """``fn(msg)`` (sync only), transform chain before a message is sent."""
    SUCCESSOR_ADDED = 11
    """``fn(peer_id)``, the Chord overlay took a peer into its successor list."""
    SUCCESSOR_REMOVED = 12
    """``fn(peer_id)``, a peer left the successor list (failed, or displaced by closer ones)."""
    PREDECESSOR_ADDED = 13
    """``fn(peer_id)``, the Chord overlay took a peer into its predecessor list."""
    PREDECESSOR_REMOVED = 14
    """``fn(peer_id)``, a peer left the predecessor list."""
    FINGER_ADDED = 15
    """``fn(peer_id, index)``, a peer entered the finger table; it lies in finger
    interval ``[id + 2**index, id + 2**(index+1))``."""
    FINGER_REMOVED = 16
    """``fn(peer_id, index)``, a peer left every finger list."""
    NEIGHBOUR_ADDED = 17
    """``fn(peer_id)``, a peer entered the overlay's routing state (some list)."""
    NEIGHBOUR_REMOVED = 18
    """``fn(peer_id)``, a peer left every list of the overlay's routing state."""
    RELAY_PRIORITY = 19
    """``fn(peer_id, priority) -> priority`` (sync only), the priority of a candidate
    next hop (higher is preferred; default ``-RTT`` in ms). Return a number, None
    (unchanged), ``(priority, go_on)`` or False (stop the chain)."""


VETO_HOOKS = frozenset(
    {Hook.NODE_WILL_START, Hook.WILL_DIAL, Hook.CONNECTION_ACCEPTED, Hook.PEER_CONNECTED}
)
"""Hooks whose ``False`` (or exception) refuses the operation."""
MESSAGE_HOOKS = frozenset({Hook.MESSAGE_RECEIVED, Hook.MESSAGE_WILL_SEND})
"""Hooks run with :meth:`Middleware.run_message` (transform chains)."""
SYNC_ONLY_HOOKS = MESSAGE_HOOKS | {Hook.CONNECTION_ACCEPTED, Hook.RELAY_PRIORITY}
"""Hooks called from synchronous code: ``async def`` functions are refused for them."""


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    fn: Callable[..., Any]
    priority: int
    seq: int


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


class Middleware:
    """Hook chains for one node. ``Node.use`` and the host's call sites use it."""

    def __init__(self) -> None:
        # Imported here, not at module level: the messaging package imports the
        # host, and the host imports this module.
        from ..protocols.messaging.message import Message

        self._message_type = Message
        count = len(Hook)
        self._entries: list[list[_Entry]] = [[] for _ in range(count)]
        self._chains: list[tuple[Callable[..., Any], ...]] = [() for _ in range(count)]
        self._seq = itertools.count()

    # ---------------------------------------------------------- registering
    def use(self, hook: Hook, fn: Callable[..., Any], priority: int = 0) -> Callable[[], None]:
        """Add ``fn`` to ``hook``'s chain; returns a function that removes it again.

        Higher ``priority`` runs first; equal priorities run in the order added.
        The same function may be added twice (it then runs twice); each remover
        removes its own registration and may be called more than once.
        """
        if not isinstance(hook, Hook):
            raise UsageError(f"not a peerwire Hook: {hook!r}")
        if not callable(fn):
            raise UsageError(f"middleware for {hook.name} must be callable, got {fn!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise UsageError(f"middleware priority must be an int, got {priority!r}")
        if hook in SYNC_ONLY_HOOKS and (
            inspect.iscoroutinefunction(fn)
            or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
        ):
            raise UsageError(
                f"{hook.name} runs on a synchronous path: register a plain function, "
                f"not the coroutine function {_name(fn)}"
            )
        entry = _Entry(fn, priority, next(self._seq))
        index: int = hook._value_
        entries = self._entries[index]
        entries.append(entry)
        self._rebuild(index)

        def remove() -> None:
            try:
                entries.remove(entry)
            except ValueError:
                return  # already removed
            self._rebuild(index)

        return remove

    def _rebuild(self, index: int) -> None:
        entries = self._entries[index]
        entries.sort(key=lambda e: (-e.priority, e.seq))
        # A new tuple, never a mutation: chains already running keep their snapshot.
        self._chains[index] = tuple(e.fn for e in entries)

    def has(self, hook: Hook) -> bool:
        """Whether any function is registered for ``hook`` (cheap: call it first)."""
        return bool(self._chains[hook._value_])

    def functions(self, hook: Hook) -> tuple[Callable[..., Any], ...]:
        """``hook``'s chain in the order it runs."""
        return self._chains[hook._value_]

    # -------------------------------------------------------------- running
    async def run(self, hook: Hook, *args: Any) -> bool:
        """Run a veto or notify chain; False if a function returned False (or vetoed by raising).

        Functions may be plain or ``async def``. Only ``False`` stops the
        chain; ``None``, ``True`` or anything else continues it.
        """
        chain = self._chains[hook._value_]
        if not chain:
            return True
        if hook in MESSAGE_HOOKS:
            raise UsageError(f"{hook.name} is a message hook: use run_message")
        veto = hook in VETO_HOOKS
        for fn in chain:
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    result = await result
            except Exception:
                log.exception("middleware %s hook %s raised", hook.name, _name(fn))
                if veto:
                    return False
                continue
            if result is False:
                return False
        return True

    def run_sync(self, hook: Hook, *args: Any) -> bool:
        """Like :meth:`run`, for call sites that cannot await.

        A function that returns an awaitable here (an async callable that
        slipped past :meth:`use`) is a bug: the awaitable is closed, the error
        logged, and the function treated as having raised.
        """
        chain = self._chains[hook._value_]
        if not chain:
            return True
        if hook in MESSAGE_HOOKS:
            raise UsageError(f"{hook.name} is a message hook: use run_message")
        veto = hook in VETO_HOOKS
        for fn in chain:
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    _discard(result)
                    raise UsageError(
                        f"{hook.name} is synchronous but the hook returned an awaitable"
                    )
            except Exception:
                log.exception("middleware %s hook %s raised", hook.name, _name(fn))
                if veto:
                    return False
                continue
            if result is False:
                return False
        return True

    def run_message(self, hook: Hook, msg: Message) -> Message | None:
        """Run a message transform chain; the message to go on with, or None to drop it.

        Each function gets the current message and returns:

        * a :class:`Message` -- continue the chain with it (the same or a copy,
          e.g. ``msg.with_data(...)``);
        * ``None`` -- drop the message: the chain stops and None is returned;
        * ``(msg_or_None, go_on)`` -- continue with ``msg_or_None`` if ``go_on``,
          otherwise stop the chain and return ``msg_or_None`` as the result.

        A function that raises or returns anything else drops the message (logged).
        Call :meth:`has` first: with no function registered, skip the call.
        """
        message_type = self._message_type
        for fn in self._chains[hook._value_]:
            try:
                result = fn(msg)
            except Exception:
                log.exception(
                    "middleware %s hook %s raised; message %d from %s dropped",
                    hook.name,
                    _name(fn),
                    msg.id,
                    msg.sender,
                )
                return None
            if result is None:
                return None
            if isinstance(result, message_type):
                msg = result
                continue
            if (
                isinstance(result, tuple)
                and len(result) == 2
                and (result[0] is None or isinstance(result[0], message_type))
            ):
                out: Message | None = result[0]
                go_on = result[1]
                if out is None or not go_on:
                    return out
                msg = out
                continue
            _discard(result)
            log.error(
                "middleware %s hook %s returned %r (expected Message, None or "
                "(Message | None, bool)); message %d from %s dropped",
                hook.name,
                _name(fn),
                type(result).__name__,
                msg.id,
                msg.sender,
            )
            return None
        return msg


def _discard(value: object) -> None:
    """Close a coroutine nobody will await (so Python does not warn it was never awaited)."""
    close = getattr(value, "close", None)
    if inspect.iscoroutine(value) and close is not None:
        close()
