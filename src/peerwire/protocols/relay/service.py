"""``/peerwire/relay/1.0.0``: ``node.route`` and ``node.route_request``.

A routed message hops from neighbour to neighbour, each hop asking the overlay
(Chord, Kademlia) for its next hop toward the destination key, until a node
responsible for the key delivers it to its ``node.on`` handler or inbox with
``Message.kind == "relay"``, ``Message.hops`` the links travelled and
``Message.sender`` the original source (signed by it, see
:class:`~peerwire.protocols.relay.config.RelayConfig`).

Why these rules:

* **Retries along alternatives.** Under churn the best next hop may have
  crashed before the overlay noticed. A node therefore asks
  ``overlay.next_hops(key)`` for candidates and, when handing the frame to
  one fails (dial refused, stream broken while queued), tries the next one,
  up to ``RelayConfig.max_attempts``.
* **Nothing lost silently.** The origin's ``route`` raises :class:`Unroutable`
  when no candidate takes the message. Further on, a message that cannot be
  forwarded or outlives its TTL is logged and counted in :class:`RelayStats`,
  and a waiting ``route_request`` gets an ERROR routed back (it raises
  :class:`RemoteError` with a ``code`` from :mod:`.codec`) instead of a timeout.
  What the messaging layer had already handed to a connection that then
  broke cannot be seen here; a ``route_request`` then times out.
* **Replies go back the short way when they can:** straight to the origin
  if a connection to it exists, otherwise routed toward the origin's key (the
  origin is the node responsible for its own key in Chord and Kademlia).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...errors import (
    ClosedError,
    ConnectionLost,
    LimitExceeded,
    PeerwireError,
    ProtocolError,
    ProtocolNotSupported,
    RemoteError,
    Timeout,
    UsageError,
)
from ...identity.peer_id import PeerId
from ...overlay.base import key_for
from ..broadcast.seen import SeenCache
from ..messaging.message import Message
from . import RELAY_PROTOCOL, codec
from .authors import Authors, key_to_send
from .link import LocalDelivery, Responder

if TYPE_CHECKING:
    from ...host.host import Host
    from ...overlay.base import Overlay
    from ..messaging.service import MessagingService
    from .link import Link

log = logging.getLogger("peerwire.relay")

KeyLike = bytes | PeerId


def _now() -> float:
    """The event loop's clock (virtual under the simulator)."""
    return asyncio.get_running_loop().time()


class Unroutable(ConnectionLost):
    """A routed message could be handed to none of the candidate next hops."""


@dataclass(frozen=True, slots=True)
class RelayStats:
    """Counters of one node's relay service (a snapshot)."""

    originated: int = 0
    """Messages and requests this node routed (``route`` / ``route_request``)."""
    delivered: int = 0
    """Routed messages delivered here (this node was responsible)."""
    forwarded: int = 0
    """Frames handed to a next hop (replies included)."""
    retries: int = 0
    """Times a next hop failed and another candidate was tried."""
    replies_sent: int = 0
    replies_received: int = 0
    dropped_ttl: int = 0
    """Frames dropped because they had travelled ``ttl`` hops."""
    dropped_unroutable: int = 0
    """Frames no candidate next hop would take (or no overlay to route with)."""
    dropped_invalid: int = 0
    """Malformed frames, bad signatures, stale timestamps, replays."""
    dropped_no_handler: int = 0
    """Delivered to this node, but no handler or inbox for the protocol."""
    dropped_orphan_reply: int = 0
    """Replies that reached the node responsible for their origin's key but not the origin."""
    hops: dict[int, int] = field(default_factory=dict)
    """Histogram of ``Message.hops`` over messages delivered here."""


class RelayService:
    """One node's relay endpoint (``node.route`` / ``node.route_request``)."""

    def __init__(
        self,
        host: Host,
        messaging: MessagingService,
        overlay: Callable[[], Overlay | None],
        link: Link,
        delivery: LocalDelivery,
    ) -> None:
        self._host = host
        self._ms = messaging
        self._overlay = overlay
        self._link = link
        self._delivery = delivery
        self.config = host.config.relay
        self._self_bytes = host.peer_id.to_bytes()
        self._key = key_to_send(host.peer_id, host.identity.public_key)
        self._authors = Authors()
        self._next_id = int.from_bytes(os.urandom(8), "big") >> 2
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        window = 2 * self.config.max_age if self.config.max_age else 600.0
        self._seen = SeenCache(max_entries=self.config.seen_size, ttl=window)
        self._counts: dict[str, int] = dict.fromkeys(RelayStats.__slots__, 0)
        del self._counts["hops"]
        self._hops: dict[int, int] = {}
        messaging.reserve(RELAY_PROTOCOL, self._on_frame)

    # -------------------------------------------------------------- public
    def stats(self) -> RelayStats:
        return RelayStats(**self._counts, hops=dict(sorted(self._hops.items())))

    async def route(self, key: KeyLike, protocol: str, data: bytes) -> None:
        """Deliver ``data`` to the node responsible for ``key`` (returns once handed on)."""
        frame = self._originate(codec.DATA, key, protocol, data)
        await self._start(frame)

    async def route_request(
        self, key: KeyLike, protocol: str, data: bytes, timeout: float | None = None
    ) -> bytes:
        """Route a request to the node responsible for ``key`` and return its reply."""
        limit = self._host.config.request_timeout if timeout is None else timeout
        if len(self._pending) >= self._host.config.max_pending_requests:
            raise LimitExceeded(
                "max_pending_requests reached",
                limit_name="max_pending_requests",
                limit=self._host.config.max_pending_requests,
            )
        frame = self._originate(codec.REQUEST, key, protocol, data)
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[frame.id] = fut
        try:
            async with asyncio.timeout(limit):
                await self._start(frame)
                return await fut
        except TimeoutError as exc:
            if isinstance(exc, Timeout):
                raise
            raise Timeout(
                f"route_request {protocol} to key {key!r} timed out after {limit} s"
            ) from exc
        finally:
            self._pending.pop(frame.id, None)

    def reply(self, msg: Message, data: bytes) -> None:
        """Answer a routed request taken from an inbox (``node.reply``)."""
        responder = msg.reply_channel
        if not msg.expects_reply or not isinstance(responder, _Responder):
            raise UsageError("this message is not a routed request")
        responder.reply(data)

    async def stop(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ClosedError("node stopped"))
        self._pending.clear()

    # ------------------------------------------------------------ origin
    def _require_overlay(self) -> Overlay:
        overlay = self._overlay()
        if overlay is None:
            raise UsageError("routing needs an overlay: start the node with overlay='chord'")
        return overlay

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFFFFFFFFFF
        return self._next_id

    def _sign(self, frame: codec.RelayFrame) -> codec.RelayFrame:
        if self.config.sign:
            frame.key = self._key
            frame.signature = self._host.identity.sign(codec.signed_bytes(frame))
        return frame

    def _originate(self, kind: int, key: KeyLike, protocol: str, data: bytes) -> codec.RelayFrame:
        self._require_overlay()
        if not protocol or len(protocol.encode()) > codec.MAX_PROTOCOL_LENGTH:
            raise UsageError(f"protocol id must be 1..255 bytes: {protocol!r}")
        frame = codec.RelayFrame(
            kind=kind,
            hops=0,
            ttl=self.config.ttl,
            id=self._new_id(),
            reply_to=0,
            timestamp_ms=int(time.time() * 1000),
            dest=key_for(key),
            src=self._self_bytes,
            to=b"",
            protocol=protocol,
            key=b"",
            signature=b"",
            payload=bytes(data),
        )
        self._count("originated")
        return self._sign(frame)

    async def _start(self, frame: codec.RelayFrame) -> None:
        overlay = self._require_overlay()
        if overlay.is_responsible(frame.dest):
            self._deliver(frame, 0, self._host.peer_id)
            return
        data = codec.encode(frame)
        tried: set[PeerId] = set()
        errors: list[str] = []
        for _attempt in range(self.config.max_attempts):
            candidates = [p for p in overlay.next_hops(frame.dest) if p not in tried]
            if not candidates:
                break
            peer = candidates[0]
            tried.add(peer)
            try:
                await self._link.send(peer, RELAY_PROTOCOL, data)
            except (ConnectionLost, ProtocolError, Timeout, LimitExceeded) as exc:
                errors.append(f"{peer}: {exc}")
                self._count("retries")
                continue
            self._count("forwarded")
            return
        self._count("dropped_unroutable")
        raise Unroutable(
            f"no next hop toward {frame.dest.hex()[:16]}… took the message"
            + (": " + "; ".join(errors) if errors else " (no candidates)")
        )

    # ----------------------------------------------------------- receiving
    def _on_frame(self, msg: Message) -> None:
        try:
            frame = codec.decode(msg.data)
        except ProtocolError as exc:
            self._count("dropped_invalid")
            log.warning("dropping malformed relay frame from %s: %s", msg.sender, exc)
            return
        hops = frame.hops + 1
        if frame.kind in (codec.REPLY, codec.ERROR):
            self._on_answer(frame, hops, msg.sender)
            return
        if hops > frame.ttl:
            self._ttl_exceeded(frame, hops)
            return
        overlay = self._overlay()
        if overlay is None:
            self._unroutable(frame, "this node has no overlay")
            return
        if overlay.is_responsible(frame.dest):
            self._deliver(frame, hops, msg.sender)
            return
        if hops >= frame.ttl:
            self._ttl_exceeded(frame, hops)
            return
        frame.hops = hops
        self._forward(codec.with_hops(msg.data, hops), frame, {msg.sender})

    def _forward(self, data: bytes, frame: codec.RelayFrame, tried: set[PeerId]) -> None:
        """Hand ``data`` to the best candidate not tried yet; report if none takes it."""
        overlay = self._overlay()
        if overlay is None:
            self._unroutable(frame, "this node has no overlay")
            return
        for peer in overlay.next_hops(frame.dest):
            if peer in tried:
                continue
            if len(tried) >= self.config.max_attempts:
                break
            tried.add(peer)

            def failed(exc: BaseException, peer: PeerId = peer) -> None:
                self._count("retries")
                log.debug("relay next hop %s failed: %s; trying another", peer, exc)
                self._forward(data, frame, tried)

            if self._link.send_nowait(peer, RELAY_PROTOCOL, data, failed):
                self._count("forwarded")
                return
            self._count("retries")
        self._unroutable(frame, f"no next hop took it (tried {len(tried)})")

    def _ttl_exceeded(self, frame: codec.RelayFrame, hops: int) -> None:
        self._count("dropped_ttl")
        log.warning(
            "dropping routed %s %d toward %s…: %d hops, ttl %d",
            codec.KIND_NAMES[frame.kind],
            frame.id,
            frame.dest.hex()[:16],
            hops,
            frame.ttl,
        )
        if frame.kind == codec.REQUEST:
            self._answer(
                frame, codec.ERROR, codec.encode_error_payload(codec.ERR_TTL, "ttl exceeded")
            )

    def _unroutable(self, frame: codec.RelayFrame, why: str) -> None:
        self._count("dropped_unroutable")
        log.warning(
            "dropping routed %s %d toward %s…: %s",
            codec.KIND_NAMES[frame.kind],
            frame.id,
            frame.dest.hex()[:16],
            why,
        )
        if frame.kind == codec.REQUEST:
            payload = codec.encode_error_payload(codec.ERR_UNROUTABLE, why)
            self._answer(frame, codec.ERROR, payload)

    # ------------------------------------------------------------ delivery
    def _check(self, frame: codec.RelayFrame) -> tuple[PeerId, str]:
        """The source of a frame that reached its destination, and why it is refused ("" if not)."""
        try:
            src, _ = self._authors.peer(frame.src, frame.key)
        except PeerwireError:
            return self._host.peer_id, "bad source PeerId"
        if frame.signature or self.config.sign:
            if (
                self._authors.verify(
                    frame.src, frame.key, codec.signed_bytes(frame), frame.signature
                )
                is None
            ):
                return src, "bad or missing signature"
        if self.config.max_age:
            skew = abs(time.time() * 1000 - frame.timestamp_ms) / 1000
            if skew > self.config.max_age:
                return src, f"timestamp off by {skew:.0f} s"
        return src, ""

    def _deliver(self, frame: codec.RelayFrame, hops: int, via: PeerId) -> None:
        if hops:
            src, refused = self._check(frame)
            if not refused and not self._seen.add(frame.src + frame.id.to_bytes(8, "big"), _now()):
                refused = "replayed"
            if refused:
                self._count("dropped_invalid")
                log.warning(
                    "refusing routed message %d from %s (via %s): %s", frame.id, src, via, refused
                )
                if frame.kind == codec.REQUEST and refused != "bad source PeerId":
                    self._answer(
                        frame, codec.ERROR, codec.encode_error_payload(codec.ERR_REJECTED, refused)
                    )
                return
        else:
            src = self._host.peer_id
        msg = Message(
            data=frame.payload,
            sender=src,
            protocol=frame.protocol,
            id=frame.id,
            kind="relay",
            hops=hops,
            timestamp_ms=frame.timestamp_ms,
            author=src if frame.signature else None,
            signature=frame.signature or None,
        )
        request = frame.kind == codec.REQUEST
        self._count("delivered")
        self._hops[hops] = self._hops.get(hops, 0) + 1
        responder = _Responder(self, frame) if request else None
        if not self._delivery.deliver(msg, responder):
            self._count("dropped_no_handler")
            log.warning(
                "routed message %d from %s: no handler for %s", frame.id, src, frame.protocol
            )
            if request:
                payload = codec.encode_error_payload(
                    codec.ERR_NO_HANDLER, f"no handler for {frame.protocol}"
                )
                self._answer(frame, codec.ERROR, payload)

    # ------------------------------------------------------------- answers
    def _answer(self, request: codec.RelayFrame, kind: int, payload: bytes) -> None:
        """Send a REPLY/ERROR for ``request`` back to its source."""
        if kind == codec.REPLY:
            self._count("replies_sent")
        answer = codec.RelayFrame(
            kind=kind,
            hops=0,
            ttl=self.config.ttl,
            id=self._new_id(),
            reply_to=request.id,
            timestamp_ms=int(time.time() * 1000),
            dest=b"",
            src=self._self_bytes,
            to=request.src,
            protocol=request.protocol,
            key=b"",
            signature=b"",
            payload=payload,
        )
        try:
            origin, _ = self._authors.peer(request.src)
        except PeerwireError:
            log.warning("cannot answer routed request %d: bad source PeerId", request.id)
            return
        answer.dest = key_for(origin)
        self._sign(answer)
        if origin == self._host.peer_id:
            self._resolve(answer, origin)
            return
        self._send_answer(codec.encode(answer), answer, origin, set())

    def _send_answer(
        self, data: bytes, answer: codec.RelayFrame, origin: PeerId, tried: set[PeerId]
    ) -> None:
        if origin not in tried and self._host.connection(origin) is not None:
            tried.add(origin)

            def failed(exc: BaseException) -> None:
                self._send_answer(data, answer, origin, tried)

            if self._link.send_nowait(origin, RELAY_PROTOCOL, data, failed):
                self._count("forwarded")
                return
        overlay = self._overlay()
        if overlay is None or overlay.is_responsible(answer.dest):
            self._count("dropped_orphan_reply")
            log.warning(
                "dropping %s for routed request %d: origin %s unreachable",
                codec.KIND_NAMES[answer.kind],
                answer.reply_to,
                origin,
            )
            return
        self._forward(data, answer, tried)

    def _on_answer(self, frame: codec.RelayFrame, hops: int, via: PeerId) -> None:
        if frame.to == self._self_bytes:
            try:
                src, _ = self._authors.peer(frame.src, frame.key)
            except PeerwireError:
                self._count("dropped_invalid")
                return
            if self.config.sign and (
                self._authors.verify(
                    frame.src, frame.key, codec.signed_bytes(frame), frame.signature
                )
                is None
            ):
                self._count("dropped_invalid")
                log.warning("dropping routed answer %d from %s: bad signature", frame.reply_to, src)
                return
            self._resolve(frame, src)
            return
        if hops >= frame.ttl:
            self._count("dropped_ttl")
            log.warning("dropping routed answer to request %d: ttl exceeded", frame.reply_to)
            return
        try:
            origin, _ = self._authors.peer(frame.to)
        except PeerwireError:
            self._count("dropped_invalid")
            return
        frame.hops = hops
        # A REPLY must head for its origin's key; a frame claiming another dest is bogus.
        if frame.dest != key_for(origin):
            self._count("dropped_invalid")
            return
        raw = codec.encode(frame)
        self._send_answer(raw, frame, origin, {via})

    def _resolve(self, frame: codec.RelayFrame, src: PeerId) -> None:
        fut = self._pending.get(frame.reply_to)
        if fut is None or fut.done():
            log.debug("dropping late or unknown routed answer %d from %s", frame.reply_to, src)
            return
        if frame.kind == codec.REPLY:
            self._count("replies_received")
            fut.set_result(frame.payload)
            return
        code, text = codec.decode_error_payload(frame.payload)
        cls = ProtocolNotSupported if code == codec.ERR_NO_HANDLER else RemoteError
        fut.set_exception(cls(f"{src}: {text}", code=code, remote_message=text))

    def _count(self, name: str) -> None:
        self._counts[name] += 1


class _Responder(Responder):
    """Answers one routed request (at most once)."""

    __slots__ = ("_done", "_frame", "_service")

    def __init__(self, service: RelayService, frame: codec.RelayFrame) -> None:
        self._service = service
        self._frame = frame
        self._done = False

    def reply(self, data: bytes) -> None:
        if self._done:
            raise UsageError("this routed request was already answered")
        self._done = True
        self._service._answer(self._frame, codec.REPLY, bytes(data))

    def fail(self, code: str, text: str) -> None:
        if self._done:
            return
        self._done = True
        number = {"handler": codec.ERR_HANDLER, "limit": codec.ERR_LIMIT}.get(
            code, codec.ERR_NO_HANDLER
        )
        self._service._answer(self._frame, codec.ERROR, codec.encode_error_payload(number, text))
