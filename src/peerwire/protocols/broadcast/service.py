"""``node.broadcast``: the asyncio adapter around :class:`~.core.BroadcastCore`.

Frames travel as ``/peerwire/bcast/1.0.0`` messages over the messaging layer
(one stream per neighbour, batched, flow-controlled) and are handled by a
synchronous handler: no task per frame. Forwarding never waits; a neighbour
that cannot take more (its queue of ``BroadcastConfig.queue_size`` frames is
full, or it cannot be reached) loses that frame, counted in
``BroadcastStats.dropped_congestion`` and logged: push and pull have other
paths to every node, and a tree broadcast that must survive failures should
use ``copies=2`` or more.

Delivered messages reach ``node.on(protocol)`` handlers and inboxes with
``kind == "broadcast"``, ``sender`` and ``author`` = the node that broadcast
it (its signature checked), ``hops`` = links travelled. The origin does not
deliver its own message to itself.

Validation (Spacemesh: relay only what validated): ``set_validator(protocol,
fn)`` registers ``fn(msg) -> bool`` (or an async one); a message is
delivered and passed on only once ``fn`` returned True. A validator that
raises refuses the message (fail closed).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ...errors import UsageError
from ...identity.peer_id import PeerId
from ..messaging.message import Message
from ..relay.authors import key_to_send
from . import BCAST_PROTOCOL
from .core import MODES, BroadcastCore, BroadcastMode, BroadcastStats, Candidate, Output
from .tree import FingerOverlay, Positions, TreeOverlay, shifted_children

if TYPE_CHECKING:
    from ...host.host import Host
    from ...overlay.base import Overlay
    from ..messaging.service import MessagingService
    from ..relay.link import Link, LocalDelivery

__all__ = ["BroadcastMode", "BroadcastService", "BroadcastStats", "Validator"]

log = logging.getLogger("peerwire.broadcast")

Validator = Callable[[Message], "bool | Awaitable[bool]"]


class _Topology:
    """The core's view of the overlay (or, without one, of the connected peers)."""

    __slots__ = ("_fingers", "_host", "_overlay", "_positions", "_tree")

    def __init__(self, host: Host, overlay: Overlay | None, positions: Positions) -> None:
        self._host = host
        self._overlay = overlay
        self._positions = positions
        # Checked once here, not per frame: isinstance against a runtime_checkable
        # Protocol inspects every member each call (10% of a node's CPU in the
        # 16-process tree benchmark).
        self._tree = overlay if isinstance(overlay, TreeOverlay) else None
        self._fingers = overlay if isinstance(overlay, FingerOverlay) else None

    def neighbours(self) -> list[PeerId]:
        if self._overlay is None:
            return self._host.connected_peers()
        return self._overlay.neighbours()

    def tree_children(self, limit: bytes | None, tree: int) -> list[tuple[PeerId, bytes]]:
        if tree and self._fingers is not None:
            return shifted_children(self._fingers, self._host.peer_id, limit, tree, self._positions)
        if self._tree is not None:
            return self._tree.tree_children(limit)
        return []


class BroadcastService:
    """One node's broadcast endpoint."""

    def __init__(
        self,
        host: Host,
        messaging: MessagingService,
        overlay: Callable[[], Overlay | None],
        link: Link,
        delivery: LocalDelivery,
    ) -> None:
        self._host = host
        self._overlay = overlay
        self._link = link
        self._delivery = delivery
        self.config = host.config.broadcast
        self.core = BroadcastCore(
            host.peer_id,
            sign=host.identity.sign,
            key=key_to_send(host.peer_id, host.identity.public_key),
            config=self.config,
        )
        self._validators: dict[str, Validator] = {}
        self._topology_cache: tuple[Overlay | None, _Topology] | None = None
        self._positions = Positions()
        self._validating = 0
        self._timer: asyncio.TimerHandle | None = None
        messaging.reserve(BCAST_PROTOCOL, self._on_frame)

    # --------------------------------------------------------------- public
    def stats(self) -> BroadcastStats:
        return self.core.stats()

    def set_validator(self, protocol: str, validator: Validator | None) -> None:
        if validator is None:
            self._validators.pop(protocol, None)
        elif not callable(validator):
            raise UsageError(f"validator for {protocol} must be callable")
        else:
            self._validators[protocol] = validator

    async def broadcast(
        self,
        protocol: str,
        data: bytes,
        mode: BroadcastMode = "push",
        *,
        copies: int = 1,
        hop_limit: int | None = None,
    ) -> bytes:
        """Author and send a broadcast; returns its 16-byte id."""
        if mode not in MODES:
            raise UsageError(f"broadcast mode must be one of {MODES}, not {mode!r}")
        if not 1 <= copies <= self.config.max_copies:
            raise UsageError(
                f"copies must be in 1..{self.config.max_copies} (BroadcastConfig.max_copies)"
            )
        if copies != 1 and mode != "tree":
            raise UsageError("copies= applies to tree broadcasts only")
        if hop_limit is not None and not 1 <= hop_limit <= 255:
            raise UsageError("hop_limit must be in 1..255")
        overlay = self._overlay()
        if mode == "tree" and not isinstance(overlay, TreeOverlay):
            raise UsageError("tree broadcast needs an overlay with tree_children (overlay='chord')")
        loop = asyncio.get_running_loop()
        msg_id, out = self.core.publish(
            mode,
            protocol,
            bytes(data),
            now=loop.time(),
            wall_ms=int(time.time() * 1000),
            nonce=int.from_bytes(os.urandom(8), "big"),
            topology=self._topology(overlay),
            copies=copies,
            hop_limit=hop_limit,
        )
        await self._send_from_origin(out)
        self._arm_timer()
        return msg_id

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -------------------------------------------------------------- sending
    async def _send_from_origin(self, out: Output) -> None:
        """Like :meth:`_send`, but waits for room (backpressure on the broadcaster)."""
        for peer, frame in out.sends:
            if self._link.send_nowait(peer, BCAST_PROTOCOL, frame, self._failed_send(peer)):
                continue
            try:
                await self._link.send(peer, BCAST_PROTOCOL, frame)
            except Exception as exc:
                self._failed_send(peer)(exc)

    def _failed_send(self, peer: PeerId) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            self.core.counts["dropped_congestion"] += 1
            log.info("broadcast frame to %s not sent: %s", peer, exc)

        return failed

    def _send(self, out: Output) -> None:
        link = self._link
        for peer, frame in out.sends:
            if not link.send_nowait(peer, BCAST_PROTOCOL, frame, self._failed_send(peer)):
                self.core.counts["dropped_congestion"] += 1
                log.warning(
                    "broadcast frame to %s dropped: %d frames already queued "
                    "(BroadcastConfig.queue_size)",
                    peer,
                    link.queued(peer),
                )

    # ------------------------------------------------------------ receiving
    def _on_frame(self, msg: Message) -> None:
        loop = asyncio.get_running_loop()
        out = self.core.receive(
            msg.sender,
            msg.data,
            now=loop.time(),
            wall_ms=int(time.time() * 1000),
            topology=self._topology(self._overlay()),
        )
        self._process(out)

    def _process(self, out: Output) -> None:
        for candidate in out.check:
            self._validate(candidate)
        if out.sends:
            self._send(out)
        for candidate in out.deliver:
            message = _message(candidate)
            if not self._delivery.deliver(message):
                log.debug("broadcast for %s: no handler here", message.protocol)
        if self.core.pull.fetches:
            self._arm_timer()

    def _validate(self, candidate: Candidate) -> None:
        msg_id = candidate.post.id
        validator = self._validators.get(candidate.post.protocol)
        if validator is None:
            self._settle(msg_id, True)
            return
        try:
            verdict: Any = validator(_message(candidate))
        except Exception:
            log.exception("broadcast validator for %s raised", candidate.post.protocol)
            self._settle(msg_id, False)
            return
        if inspect.isawaitable(verdict):
            if self._validating >= self.config.max_validations:
                if inspect.iscoroutine(verdict):
                    verdict.close()
                self.core.abandon(msg_id)
                self.core.counts["dropped_validation_limit"] += 1
                log.warning(
                    "broadcast %s dropped: %d validations running "
                    "(BroadcastConfig.max_validations)",
                    msg_id.hex(),
                    self._validating,
                )
                return
            self._validating += 1
            self._host.spawn(self._validate_async(msg_id, verdict), name="broadcast validator")
            return
        self._settle(msg_id, verdict is True)

    async def _validate_async(self, msg_id: bytes, verdict: Awaitable[Any]) -> None:
        try:
            ok = await verdict is True
        except Exception:
            log.exception("broadcast validator raised")
            ok = False
        finally:
            self._validating -= 1
        self._settle(msg_id, ok)

    def _settle(self, msg_id: bytes, ok: bool) -> None:
        loop = asyncio.get_running_loop()
        out = self.core.settle(
            msg_id,
            ok,
            now=loop.time(),
            topology=self._topology(self._overlay()),
        )
        self._process(out)

    def _topology(self, overlay: Overlay | None) -> _Topology:
        """The core's view of ``overlay``, rebuilt only when the overlay object changes."""
        cached = self._topology_cache
        if cached is None or cached[0] is not overlay:
            cached = (overlay, _Topology(self._host, overlay, self._positions))
            self._topology_cache = cached
        return cached[1]

    # --------------------------------------------------------------- timers
    def _arm_timer(self) -> None:
        if self._timer is not None:
            return
        deadline = self.core.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._host.is_running:
            return
        self._process(self.core.tick(asyncio.get_running_loop().time()))
        self._arm_timer()


def _message(candidate: Candidate) -> Message:
    post = candidate.post
    return Message(
        data=post.payload,
        sender=candidate.author,
        protocol=post.protocol,
        id=int.from_bytes(post.id[:8], "big"),
        kind="broadcast",
        hops=candidate.hops,
        timestamp_ms=post.timestamp_ms,
        author=candidate.author,
        signature=post.signature,
    )
