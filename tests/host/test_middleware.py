"""The middleware bus: chain semantics (unit) and the host/node call sites (memory transport)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

import peerwire as pw
from peerwire.host.middleware import SYNC_ONLY_HOOKS, Middleware
from peerwire.identity.multiaddr import Multiaddr
from peerwire.protocols.messaging.message import Message
from peerwire.testing import make_node, node_pair, running_nodes
from peerwire.transport.base import RawConnection

Hook = pw.Hook
PEER = pw.Identity.from_seed(b"\x01" * 32).peer_id
WAIT = 5.0


def message(data: bytes = b"x", msg_id: int = 1) -> Message:
    return Message(data=data, sender=PEER, protocol="/t/1.0.0", id=msg_id)


def passthrough(log: list[str], name: str) -> Callable[[Message], Message]:
    """A message hook that records its call and passes the message on."""

    def fn(msg: Message) -> Message:
        log.append(name)
        return msg

    return fn


def recorder(log: list[str], name: str, result: Any = None) -> Callable[..., Any]:
    def fn(*args: Any) -> Any:
        log.append(name)
        return result

    return fn


# ------------------------------------------------------------------ ordering
async def test_priority_then_insertion_order() -> None:
    mw = Middleware()
    calls: list[str] = []
    mw.use(Hook.NODE_STARTED, recorder(calls, "low"), priority=-5)
    mw.use(Hook.NODE_STARTED, recorder(calls, "a0"))
    mw.use(Hook.NODE_STARTED, recorder(calls, "high"), priority=10)
    mw.use(Hook.NODE_STARTED, recorder(calls, "b0"))
    mw.use(Hook.NODE_STARTED, recorder(calls, "high2"), priority=10)
    assert await mw.run(Hook.NODE_STARTED, None) is True
    assert calls == ["high", "high2", "a0", "b0", "low"]
    calls.clear()
    assert mw.run_sync(Hook.NODE_STARTED, None) is True
    assert calls == ["high", "high2", "a0", "b0", "low"]


async def test_false_stops_the_chain_but_other_falsy_values_do_not() -> None:
    mw = Middleware()
    calls: list[str] = []
    mw.use(Hook.WILL_DIAL, recorder(calls, "none", None), priority=3)
    mw.use(Hook.WILL_DIAL, recorder(calls, "zero", 0), priority=2)
    mw.use(Hook.WILL_DIAL, recorder(calls, "false", False), priority=1)
    mw.use(Hook.WILL_DIAL, recorder(calls, "never"))
    assert await mw.run(Hook.WILL_DIAL, None, None) is False
    assert calls == ["none", "zero", "false"]
    # A notify hook's False also ends its chain.
    notify: list[str] = []
    mw.use(Hook.PEER_READY, recorder(notify, "first", False), priority=1)
    mw.use(Hook.PEER_READY, recorder(notify, "second"))
    assert await mw.run(Hook.PEER_READY, None, None) is False
    assert notify == ["first"]


async def test_async_and_sync_functions_mix() -> None:
    mw = Middleware()
    calls: list[str] = []

    async def slow(node: object) -> bool:
        await asyncio.sleep(0)
        calls.append("async")
        return True

    mw.use(Hook.NODE_WILL_START, slow, priority=1)
    mw.use(Hook.NODE_WILL_START, recorder(calls, "sync"))
    assert await mw.run(Hook.NODE_WILL_START, None) is True
    assert calls == ["async", "sync"]


async def test_empty_chain_and_has() -> None:
    mw = Middleware()
    assert not mw.has(Hook.PEER_READY)
    assert await mw.run(Hook.PEER_READY, None, None) is True
    assert mw.run_sync(Hook.CONNECTION_ACCEPTED, None) is True
    msg = message()
    assert mw.run_message(Hook.MESSAGE_RECEIVED, msg) is msg
    remove = mw.use(Hook.PEER_READY, recorder([], "x"))
    assert mw.has(Hook.PEER_READY)
    assert not mw.has(Hook.PEER_CONNECTED)
    remove()
    assert not mw.has(Hook.PEER_READY)
    assert mw.functions(Hook.PEER_READY) == ()


# ------------------------------------------------------------------ removing
async def test_remover_and_idempotence() -> None:
    mw = Middleware()
    calls: list[str] = []
    fn = recorder(calls, "f")
    first = mw.use(Hook.NODE_STOPPED, fn)
    mw.use(Hook.NODE_STOPPED, fn)  # the same function twice: two registrations
    await mw.run(Hook.NODE_STOPPED, None)
    assert calls == ["f", "f"]
    first()
    first()  # a second call is a no-op, it must not remove the other registration
    calls.clear()
    await mw.run(Hook.NODE_STOPPED, None)
    assert calls == ["f"]


async def test_changes_during_a_running_chain_apply_to_the_next_run() -> None:
    mw = Middleware()
    calls: list[str] = []
    removers: dict[str, Callable[[], None]] = {}

    async def once(node: object) -> None:
        calls.append("once")
        removers["once"]()  # one-shot: remove itself
        removers["later"]()  # and a function later in the chain
        mw.use(Hook.NODE_STARTED, recorder(calls, "added"), priority=100)
        await asyncio.sleep(0)

    removers["once"] = mw.use(Hook.NODE_STARTED, once, priority=2)
    removers["later"] = mw.use(Hook.NODE_STARTED, recorder(calls, "later"), priority=1)
    mw.use(Hook.NODE_STARTED, recorder(calls, "last"))
    assert await mw.run(Hook.NODE_STARTED, None) is True
    assert calls == ["once", "later", "last"]  # the running chain kept its snapshot
    calls.clear()
    assert await mw.run(Hook.NODE_STARTED, None) is True
    assert calls == ["added", "last"]


def test_removing_inside_a_message_chain() -> None:
    mw = Middleware()
    seen: list[str] = []
    removers: list[Callable[[], None]] = []

    def once(msg: Message) -> Message:
        seen.append("once")
        removers[0]()
        return msg

    removers.append(mw.use(Hook.MESSAGE_RECEIVED, once, priority=1))
    mw.use(Hook.MESSAGE_RECEIVED, passthrough(seen, "next"))
    msg = message()
    assert mw.run_message(Hook.MESSAGE_RECEIVED, msg) is msg
    assert mw.run_message(Hook.MESSAGE_RECEIVED, msg) is msg
    assert seen == ["once", "next", "next"]


# -------------------------------------------------------------- registering
def test_use_rejects_bad_arguments() -> None:
    mw = Middleware()
    with pytest.raises(pw.UsageError):
        mw.use("PEER_READY", lambda c, i: None)  # type: ignore[arg-type]
    with pytest.raises(pw.UsageError):
        mw.use(Hook.PEER_READY, "not callable")  # type: ignore[arg-type]
    with pytest.raises(pw.UsageError):
        mw.use(Hook.PEER_READY, lambda c, i: None, priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(pw.UsageError):
        mw.use(Hook.PEER_READY, lambda c, i: None, priority=True)
    assert not mw.has(Hook.PEER_READY)


@pytest.mark.parametrize(
    "hook", [Hook.MESSAGE_RECEIVED, Hook.MESSAGE_WILL_SEND, Hook.CONNECTION_ACCEPTED]
)
def test_async_functions_rejected_for_sync_only_hooks(hook: pw.Hook) -> None:
    mw = Middleware()

    async def coro_fn(arg: object) -> None:
        return None

    class AsyncCallable:
        async def __call__(self, arg: object) -> None:
            return None

    with pytest.raises(pw.UsageError, match=hook.name):
        mw.use(hook, coro_fn)
    with pytest.raises(pw.UsageError):
        mw.use(hook, AsyncCallable())
    assert not mw.has(hook)


async def test_async_functions_accepted_for_async_hooks() -> None:
    mw = Middleware()

    async def fn(*args: object) -> None:
        return None

    for hook in Hook:
        if hook not in SYNC_ONLY_HOOKS:
            mw.use(hook, fn)
            assert mw.has(hook)


def test_awaitable_slipping_into_a_sync_hook_is_a_veto(caplog: pytest.LogCaptureFixture) -> None:
    mw = Middleware()

    async def coro_fn(raw: object) -> None:
        return None

    # A lambda returning a coroutine cannot be recognised at use() time.
    mw.use(Hook.CONNECTION_ACCEPTED, lambda raw: coro_fn(raw))
    with caplog.at_level(logging.ERROR, logger="peerwire.middleware"):
        assert mw.run_sync(Hook.CONNECTION_ACCEPTED, None) is False
    assert "CONNECTION_ACCEPTED" in caplog.text


async def test_message_hooks_need_run_message() -> None:
    mw = Middleware()
    mw.use(Hook.MESSAGE_RECEIVED, lambda m: m)
    with pytest.raises(pw.UsageError):
        await mw.run(Hook.MESSAGE_RECEIVED, message())
    with pytest.raises(pw.UsageError):
        mw.run_sync(Hook.MESSAGE_RECEIVED, message())


# ----------------------------------------------------------------- raising
async def test_raising_notify_hook_is_logged_and_chain_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mw = Middleware()
    calls: list[str] = []

    def boom(conn: object, info: object) -> None:
        raise RuntimeError("boom in hook")

    mw.use(Hook.PEER_READY, boom, priority=1)
    mw.use(Hook.PEER_READY, recorder(calls, "after"))
    with caplog.at_level(logging.ERROR, logger="peerwire.middleware"):
        assert await mw.run(Hook.PEER_READY, None, None) is True
    assert calls == ["after"]
    assert "PEER_READY" in caplog.text
    assert "boom in hook" in caplog.text
    assert all(r.name == "peerwire.middleware" for r in caplog.records)


@pytest.mark.parametrize(
    "hook", [Hook.NODE_WILL_START, Hook.WILL_DIAL, Hook.PEER_CONNECTED, Hook.CONNECTION_ACCEPTED]
)
async def test_raising_veto_hook_fails_closed(
    hook: pw.Hook, caplog: pytest.LogCaptureFixture
) -> None:
    mw = Middleware()
    calls: list[str] = []

    def boom(*args: object) -> None:
        raise RuntimeError("filter broke")

    mw.use(hook, boom, priority=1)
    mw.use(hook, recorder(calls, "never"))
    with caplog.at_level(logging.ERROR, logger="peerwire.middleware"):
        assert mw.run_sync(hook, None) is False
        assert await mw.run(hook, None) is False
    assert calls == []
    assert hook.name in caplog.text


# ---------------------------------------------------------- message chains
def test_run_message_transform_chain() -> None:
    mw = Middleware()
    mw.use(Hook.MESSAGE_RECEIVED, lambda m: m.with_data(m.data + b"1"), priority=2)
    mw.use(Hook.MESSAGE_RECEIVED, lambda m: m.with_data(m.data + b"2"), priority=1)
    mw.use(Hook.MESSAGE_RECEIVED, lambda m: (m.with_data(m.data + b"3"), True))
    out = mw.run_message(Hook.MESSAGE_RECEIVED, message(b"x"))
    assert out is not None
    assert out.data == b"x123"
    # Hooks of the other direction are a separate chain.
    same = message(b"y")
    assert mw.run_message(Hook.MESSAGE_WILL_SEND, same) is same


def test_run_message_none_drops_and_stops() -> None:
    mw = Middleware()
    seen: list[str] = []
    mw.use(Hook.MESSAGE_RECEIVED, lambda m: None if m.id % 2 else m, priority=1)
    mw.use(Hook.MESSAGE_RECEIVED, passthrough(seen, "even"))
    assert mw.run_message(Hook.MESSAGE_RECEIVED, message(msg_id=1)) is None
    kept = message(msg_id=2)
    assert mw.run_message(Hook.MESSAGE_RECEIVED, kept) is kept
    assert seen == ["even"]


def test_run_message_tuple_stop_keeps_the_message() -> None:
    mw = Middleware()
    seen: list[str] = []
    mw.use(Hook.MESSAGE_WILL_SEND, lambda m: (m.with_data(b"stopped"), False), priority=1)
    mw.use(Hook.MESSAGE_WILL_SEND, passthrough(seen, "later"))
    out = mw.run_message(Hook.MESSAGE_WILL_SEND, message())
    assert out is not None
    assert out.data == b"stopped"
    assert seen == []


@pytest.mark.parametrize("go_on", [True, False])
def test_run_message_tuple_with_none_drops(go_on: bool) -> None:
    mw = Middleware()
    seen: list[str] = []
    mw.use(Hook.MESSAGE_RECEIVED, lambda m: (None, go_on), priority=1)
    mw.use(Hook.MESSAGE_RECEIVED, passthrough(seen, "later"))
    assert mw.run_message(Hook.MESSAGE_RECEIVED, message()) is None
    assert seen == []


@pytest.mark.parametrize("bad", [True, False, b"bytes", ("a", True), (None,), 0])
def test_run_message_bad_return_drops_and_logs(
    bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    mw = Middleware()
    mw.use(Hook.MESSAGE_RECEIVED, lambda m: bad)
    with caplog.at_level(logging.ERROR, logger="peerwire.middleware"):
        assert mw.run_message(Hook.MESSAGE_RECEIVED, message()) is None
    assert "MESSAGE_RECEIVED" in caplog.text


def test_run_message_raising_hook_drops_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    mw = Middleware()
    seen: list[str] = []

    def boom(msg: Message) -> Message:
        raise ValueError("cannot parse")

    mw.use(Hook.MESSAGE_RECEIVED, boom, priority=1)
    mw.use(Hook.MESSAGE_RECEIVED, passthrough(seen, "later"))
    with caplog.at_level(logging.ERROR, logger="peerwire.middleware"):
        assert mw.run_message(Hook.MESSAGE_RECEIVED, message()) is None
    assert seen == []
    assert "MESSAGE_RECEIVED" in caplog.text
    assert "cannot parse" in caplog.text


# ---------------------------------------------------------------- lifecycle
async def test_lifecycle_hooks_fire_in_order() -> None:
    node = make_node()
    events: list[tuple[str, object]] = []
    for hook in (Hook.NODE_STOPPED, Hook.NODE_WILL_STOP, Hook.NODE_STARTED, Hook.NODE_WILL_START):
        node.use(hook, lambda n, name=hook.name: events.append((name, n)))
    # A False from WILL_STOP is only a notification: the node still stops.
    node.use(Hook.NODE_WILL_STOP, lambda n: False, priority=-1)
    running_at_start: list[bool] = []
    node.use(Hook.NODE_STARTED, lambda n: running_at_start.append(bool(n.addrs)))
    async with node:
        assert [e[0] for e in events] == ["NODE_WILL_START", "NODE_STARTED"]
    assert [e[0] for e in events] == [
        "NODE_WILL_START",
        "NODE_STARTED",
        "NODE_WILL_STOP",
        "NODE_STOPPED",
    ]
    assert all(e[1] is node for e in events)
    assert running_at_start == [True]
    assert not node.host.is_running


async def test_will_start_veto_aborts_start() -> None:
    node = make_node()
    stopped: list[str] = []

    async def refuse(n: pw.Node) -> bool:
        return False

    node.use(Hook.NODE_WILL_START, refuse)
    node.use(Hook.NODE_STOPPED, recorder(stopped, "stopped"))
    with pytest.raises(pw.Vetoed) as info:
        await node.start()
    assert info.value.hook is Hook.NODE_WILL_START
    assert not node.host.is_running
    assert node.addrs == []
    await node.stop()  # nothing started: no stop hooks
    assert stopped == []


# --------------------------------------------------------------- dialling
async def test_will_dial_sees_address_and_peer() -> None:
    async with node_pair(connect=False) as (a, b):
        seen: list[tuple[Multiaddr, pw.PeerId | None]] = []

        async def allow(addr: Multiaddr, peer: pw.PeerId | None) -> None:
            seen.append((addr, peer))

        a.use(Hook.WILL_DIAL, allow)
        assert await a.connect(b.addrs[0]) == b.peer_id
        assert seen == [(b.addrs[0], b.peer_id)]


async def test_will_dial_veto_raises_and_makes_no_connection() -> None:
    async with node_pair(connect=False) as (a, b):
        accepted: list[RawConnection] = []
        b.use(Hook.CONNECTION_ACCEPTED, lambda raw: accepted.append(raw))
        a.use(Hook.WILL_DIAL, lambda addr, peer: False)
        with pytest.raises(pw.Vetoed) as info:
            await a.connect(b.addrs[0])
        assert info.value.hook is Hook.WILL_DIAL
        with pytest.raises(pw.Vetoed):  # without the /p2p suffix too
            await a.connect(b.addrs[0].without_peer_id())
        for _ in range(10):  # let a stray inbound connection (there must be none) show up
            await asyncio.sleep(0)
        assert accepted == []
        assert a.peers() == []
        assert b.peers() == []
        assert a.host.connections() == []


async def test_will_dial_veto_of_one_address_tries_the_next() -> None:
    async with node_pair(connect=False) as (a, b):
        second = (await b.host.listen(Multiaddr("/memory/middleware-second")))[0]
        first = b.host.listen_addrs[0]
        a.peerstore.add_addrs(b.peer_id, [second, first])  # newest first: first, second
        assert a.peerstore.addrs(b.peer_id) == [first, second]
        dialled: list[Multiaddr] = []

        def only_second(addr: Multiaddr, peer: pw.PeerId | None) -> bool:
            dialled.append(addr)
            return addr.without_peer_id() == second

        remove = a.use(Hook.WILL_DIAL, only_second)
        conn = await a.host.connect_peer(b.peer_id)
        assert conn.remote_peer == b.peer_id
        assert [str(x) for x in dialled] == [str(first), str(second)]
        await a.disconnect(b.peer_id)
        async with asyncio.timeout(WAIT):
            while a.peers():
                await asyncio.sleep(0.01)
        remove()
        a.use(Hook.WILL_DIAL, lambda addr, peer: False)
        with pytest.raises(pw.Vetoed):
            await a.host.connect_peer(b.peer_id)


# ---------------------------------------------------------------- accepting
async def test_connection_accepted_reject_closes_inbound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with node_pair(connect=False) as (a, b):
        seen: list[RawConnection] = []

        def refuse(raw: RawConnection) -> bool:
            seen.append(raw)
            return False

        b.use(Hook.CONNECTION_ACCEPTED, refuse)
        with (
            caplog.at_level(logging.INFO, logger="peerwire.host"),
            pytest.raises((pw.ConnectionLost, pw.ProtocolError)),
        ):
            await a.connect(b.addrs[0])
        assert len(seen) == 1
        assert not seen[0].is_initiator
        assert b.peers() == []
        assert a.peers() == []
        assert "CONNECTION_ACCEPTED" in caplog.text


async def test_peer_connected_veto_on_the_dialer() -> None:
    async with node_pair(connect=False) as (a, b):
        seen: list[pw.PeerId] = []
        gone: list[pw.PeerId] = []

        def refuse(conn: Any) -> bool:
            seen.append(conn.remote_peer)
            return False

        a.use(Hook.PEER_CONNECTED, refuse)
        a.use(Hook.PEER_DISCONNECTED, lambda conn: gone.append(conn.remote_peer))
        with pytest.raises(pw.Vetoed) as info:
            await a.connect(b.addrs[0])
        assert info.value.hook is Hook.PEER_CONNECTED
        assert seen == [b.peer_id]
        assert a.peers() == []
        async with asyncio.timeout(WAIT):
            while b.peers():
                await asyncio.sleep(0.01)
        assert gone == []  # never admitted, so never "disconnected"


async def test_peer_connected_veto_on_the_listener() -> None:
    async with node_pair(connect=False) as (a, b):
        seen: list[pw.PeerId] = []

        async def refuse(conn: Any) -> bool:
            seen.append(conn.remote_peer)
            return False

        b.use(Hook.PEER_CONNECTED, refuse)
        try:
            await a.connect(b.addrs[0])
        except pw.ConnectionLost:
            pass  # the close may race the dialer's own registration
        async with asyncio.timeout(WAIT):
            while a.peers() or not seen:
                await asyncio.sleep(0.01)
        assert seen == [a.peer_id]
        assert b.peers() == []


async def test_slow_peer_connected_hook_holds_remote_streams() -> None:
    """Streams the remote opens while PEER_CONNECTED runs are served once it admits."""
    cfg_a = pw.Config(agent_version="agent-a/1")
    async with node_pair(connect=False, config_a=cfg_a) as (a, b):
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def wait_for_remote_stream(conn: Any) -> bool:
            async with asyncio.timeout(WAIT):
                while not conn.streams:  # a's identify stream, opened right away
                    await asyncio.sleep(0.01)
            return True

        b.use(Hook.PEER_CONNECTED, wait_for_remote_stream)

        def on_ready(conn: Any, info: pw.IdentifyInfo) -> None:
            if not ready.done():
                ready.set_result(info)

        b.use(Hook.PEER_READY, on_ready)
        await a.connect(b.addrs[0])
        async with asyncio.timeout(WAIT):
            info = await a.identify(b.peer_id)
            b_info = await ready
        assert info.peer_id == b.peer_id
        assert b_info.agent_version == "agent-a/1"
        assert a.peer_id in b.peers()


# ------------------------------------------------------------- ready / gone
async def test_peer_ready_after_identify_on_both_sides() -> None:
    cfg_a = pw.Config(agent_version="agent-a/1")
    cfg_b = pw.Config(agent_version="agent-b/2")
    async with node_pair(connect=False, config_a=cfg_a, config_b=cfg_b) as (a, b):
        loop = asyncio.get_running_loop()
        got_a: asyncio.Future[tuple[Any, pw.IdentifyInfo]] = loop.create_future()
        got_b: asyncio.Future[tuple[Any, pw.IdentifyInfo]] = loop.create_future()
        order: list[str] = []
        a.use(Hook.PEER_CONNECTED, lambda conn: order.append("connected"))

        async def on_ready(conn: Any, info: pw.IdentifyInfo) -> None:
            order.append("ready")
            got_a.set_result((conn, info))

        a.use(Hook.PEER_READY, on_ready)
        b.use(Hook.PEER_READY, lambda conn, info: got_b.set_result((conn, info)))
        await a.connect(b.addrs[0])
        async with asyncio.timeout(WAIT):
            conn_a, info_a = await got_a
            conn_b, info_b = await got_b
        assert order == ["connected", "ready"]
        assert conn_a.remote_peer == b.peer_id
        assert info_a.peer_id == b.peer_id
        assert info_a.agent_version == "agent-b/2"
        assert conn_b.remote_peer == a.peer_id
        assert info_b.agent_version == "agent-a/1"


async def test_peer_disconnected_fires_on_disconnect_and_on_stop() -> None:
    async with running_nodes(3) as (a, b, c):
        gone_a: list[pw.PeerId] = []
        gone_b: asyncio.Future[pw.PeerId] = asyncio.get_running_loop().create_future()

        async def on_gone(conn: Any) -> None:
            await asyncio.sleep(0)
            gone_a.append(conn.remote_peer)

        a.use(Hook.PEER_DISCONNECTED, on_gone)
        b.use(Hook.PEER_DISCONNECTED, lambda conn: gone_b.set_result(conn.remote_peer))
        await a.connect(b.addrs[0])
        await a.connect(c.addrs[0])
        await a.disconnect(b.peer_id)
        async with asyncio.timeout(WAIT):
            assert await gone_b == a.peer_id
            while not gone_a:
                await asyncio.sleep(0.01)
        assert gone_a == [b.peer_id]
        await a.stop()  # closes the connection to c: its hook still runs
        assert gone_a == [b.peer_id, c.peer_id]


async def test_node_use_returns_a_working_remover() -> None:
    async with node_pair(connect=False) as (a, b):
        calls: list[str] = []
        remove = a.use(Hook.WILL_DIAL, recorder(calls, "dial"), priority=5)
        await a.connect(b.addrs[0])
        assert calls == ["dial"]
        remove()
        await a.disconnect(b.peer_id)
        async with asyncio.timeout(WAIT):
            while a.peers():
                await asyncio.sleep(0.01)
        await a.connect(b.addrs[0])
        assert calls == ["dial"]
