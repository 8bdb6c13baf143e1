"""TCP transport specifics (the shared behaviour is in test_conformance.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvloop

from peerwire.errors import ClosedError, ConnectionLost, Timeout, UsageError
from peerwire.identity.multiaddr import Multiaddr
from peerwire.testing.transport_suite import RecordingReceiver
from peerwire.transport import RawConnection, TcpConnection, TcpTransport

LOCAL = "/ip4/127.0.0.1/tcp/0"
PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

LOOPS = [
    pytest.param(asyncio.new_event_loop, id="asyncio"),
    pytest.param(uvloop.new_event_loop, id="uvloop"),
]


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.asynccontextmanager
async def tcp_pair(
    transport: TcpTransport | None = None, listen: str = LOCAL
) -> AsyncIterator[tuple[RawConnection, RawConnection]]:
    transport = transport or TcpTransport()
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue(maxsize=4)
    listener = await transport.listen(Multiaddr(listen), accepted.put_nowait)
    try:
        async with asyncio.timeout(10):
            dialer = await transport.dial(listener.addrs[0])
            acceptor = await accepted.get()
        try:
            yield dialer, acceptor
        finally:
            dialer.abort()
            acceptor.abort()
    finally:
        await listener.close()


async def _wait(predicate: Callable[[], bool], *, rounds: int = 2000) -> None:
    """Poll a condition that depends on the kernel, bounded by count and time."""
    async with asyncio.timeout(10):
        for _ in range(rounds):
            if predicate():
                return
            await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize(
    ("addr", "dial", "listen"),
    [
        ("/ip4/127.0.0.1/tcp/4001", True, True),
        ("/ip6/::1/tcp/4001", True, True),
        (f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}", True, True),
        ("/dns4/localhost/tcp/4001", True, False),
        ("/dns6/localhost/tcp/4001", True, False),
        ("/dns/example.com/tcp/443", True, False),
        ("/ip4/127.0.0.1/udp/4001", False, False),
        ("/ip4/127.0.0.1/udp/4001/quic-v1", False, False),
        ("/ip4/127.0.0.1/tcp/4001/ws", False, False),
        ("/ip4/127.0.0.1", False, False),
        ("/memory/node-1", False, False),
        (f"/p2p/{PEER}", False, False),
    ],
)
def test_can_dial_and_listen(addr: str, dial: bool, listen: bool) -> None:
    transport = TcpTransport()
    assert transport.can_dial(Multiaddr(addr)) is dial
    assert transport.can_listen(Multiaddr(addr)) is listen


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dial_timeout": 0},
        {"backlog": 0},
        {"read_buffer_size": 10},
        {"write_high_water": 10, "write_low_water": 11},
        {"write_low_water": -1},
    ],
)
def test_bad_options_are_usage_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        TcpTransport(**kwargs)


async def test_dial_and_listen_refuse_foreign_addresses() -> None:
    transport = TcpTransport()
    with pytest.raises(UsageError):
        await transport.dial(Multiaddr("/memory/x"))
    with pytest.raises(UsageError):
        await transport.listen(Multiaddr("/dns4/localhost/tcp/0"), lambda c: None)


async def test_addresses_and_roles() -> None:
    transport = TcpTransport()
    listener = await transport.listen(Multiaddr(LOCAL), lambda conn: None)
    try:
        (addr,) = listener.addrs
        assert addr.protocols() == ["ip4", "tcp"]
        assert addr.value_for("ip4") == "127.0.0.1"
        assert addr.value_for("tcp") != "0"
    finally:
        await listener.close()
    async with tcp_pair() as (a, b):
        assert a.is_initiator
        assert not b.is_initiator
        assert a.remote_addr == b.local_addr
        assert a.local_addr == b.remote_addr
        assert str(a.local_addr).startswith("/ip4/127.0.0.1/tcp/")


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_addresses() -> None:
    async with tcp_pair(listen="/ip6/::1/tcp/0") as (a, b):
        assert a.remote_addr.protocols() == ["ip6", "tcp"]
        assert a.remote_addr.value_for("ip6") == "::1"
        rec = RecordingReceiver()
        b.set_receiver(rec)
        a.write(b"over v6")
        async with asyncio.timeout(10):
            await rec.wait_for(lambda: rec.data == b"over v6")


async def test_dial_with_p2p_suffix_and_dns_name() -> None:
    transport = TcpTransport()
    accepted: list[RawConnection] = []
    listener = await transport.listen(Multiaddr(LOCAL), accepted.append)
    port = listener.addrs[0].value_for("tcp")
    try:
        with_peer = await transport.dial(Multiaddr(f"/ip4/127.0.0.1/tcp/{port}/p2p/{PEER}"))
        with_peer.abort()
        try:
            socket.getaddrinfo("localhost", None, socket.AF_INET)
        except OSError:
            pytest.skip("localhost does not resolve")
        by_name = await transport.dial(Multiaddr(f"/dns4/localhost/tcp/{port}"))
        assert by_name.remote_addr.value_for("ip4") == "127.0.0.1"
        by_name.abort()
    finally:
        await listener.close()
        for conn in accepted:
            conn.abort()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_refused_dial_is_connection_lost_with_cause() -> None:
    with pytest.raises(ConnectionLost) as info:
        await TcpTransport().dial(Multiaddr(f"/ip4/127.0.0.1/tcp/{_closed_port()}"))
    assert isinstance(info.value.__cause__, OSError)


async def test_dial_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def never_connects(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)

    monkeypatch.setattr(loop, "create_connection", never_connects)
    transport = TcpTransport(dial_timeout=0.05)
    with pytest.raises(Timeout) as info:
        await transport.dial(Multiaddr("/ip4/127.0.0.1/tcp/9"))
    assert isinstance(info.value, TimeoutError)


async def test_listening_on_a_taken_port_is_a_usage_error() -> None:
    transport = TcpTransport()
    listener = await transport.listen(Multiaddr(LOCAL), lambda conn: None)
    try:
        with pytest.raises(UsageError):
            await transport.listen(listener.addrs[0], lambda conn: None)
    finally:
        await listener.close()


async def test_reuse_port_lets_two_listeners_share_a_port() -> None:
    transport = TcpTransport(reuse_port=True)
    first = await transport.listen(Multiaddr(LOCAL), lambda conn: None)
    try:
        second = await transport.listen(first.addrs[0], lambda conn: None)
        assert second.addrs == first.addrs
        await second.close()
    finally:
        await first.close()


async def test_nodelay_is_on() -> None:
    async with tcp_pair() as (a, b):
        for conn in (a, b):
            assert isinstance(conn, TcpConnection)
            assert conn._transport is not None
            sock = conn._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_receiver_gets_memoryviews_of_one_reused_buffer() -> None:
    views: list[Any] = []

    class Keeper(RecordingReceiver):
        def data_received(self, data: memoryview) -> None:
            views.append(data.obj)
            super().data_received(data)

    async with tcp_pair() as (a, b):
        rec = Keeper()
        b.set_receiver(rec)
        for i in range(5):
            a.write(b"chunk %d;" % i)
            async with asyncio.timeout(10):
                await rec.wait_for(lambda i=i: rec.data.endswith(b"chunk %d;" % i))
    assert len(views) >= 2
    assert all(obj is views[0] for obj in views)
    assert not rec.violations


async def test_data_eof_and_loss_before_set_receiver_are_replayed_in_order() -> None:
    async with tcp_pair() as (a, b):
        assert isinstance(b, TcpConnection)
        a.writelines([b"one ", bytearray(b"two "), memoryview(b"three")])
        a.close()
        # Wait (privately) until the EOF is queued behind the data, so the replay path runs.
        await _wait(lambda: any(not isinstance(item, bytes) for item in b._pending))
        rec = RecordingReceiver()
        b.set_receiver(rec)
        assert rec.data == b"one two three"
        assert rec.eof
        assert not rec.lost  # the remote's close is an EOF; our half stays open
        b.close()
        async with asyncio.timeout(10):
            await rec.wait_for(lambda: rec.lost)
        assert rec.lost_exc is None
        assert not rec.violations


async def test_a_new_receiver_learns_of_an_earlier_eof_and_loss() -> None:
    async with tcp_pair() as (a, b):
        first = RecordingReceiver()
        b.set_receiver(first)
        a.write_eof()
        async with asyncio.timeout(10):
            await first.wait_for(lambda: first.eof)
        second = RecordingReceiver()
        b.set_receiver(second)
        assert second.eof
        assert not second.lost
        a.abort()
        # After an EOF asyncio stops reading, so (as with any TCP socket) the reset
        # is noticed when we next write.
        for _ in range(1000):
            if second.lost:
                break
            with contextlib.suppress(ConnectionLost):
                b.write(b"x")
            await asyncio.sleep(0.01)
        assert second.lost
        third = RecordingReceiver()
        b.set_receiver(third)
        assert third.eof
        assert third.lost
        assert isinstance(third.lost_exc, ConnectionLost)


async def test_abort_resets_the_remote() -> None:
    async with tcp_pair() as (a, b):
        rec = RecordingReceiver()
        b.set_receiver(rec)
        a.abort()
        a.abort()  # idempotent
        async with asyncio.timeout(10):
            await rec.wait_for(lambda: rec.lost)
        assert isinstance(rec.lost_exc, ConnectionLost)
        assert isinstance(rec.lost_exc.__cause__, ConnectionResetError)
        with pytest.raises(ConnectionLost):
            b.write(b"x")
        with pytest.raises(ClosedError):
            a.write(b"x")


async def test_pause_reading_passes_through() -> None:
    async with tcp_pair() as (a, b):
        assert isinstance(b, TcpConnection)
        assert b._transport is not None
        rec = RecordingReceiver()
        b.set_receiver(rec)
        b.pause_reading()
        assert not b._transport.is_reading()
        a.write(b"held back")
        await asyncio.sleep(0.05)
        assert rec.received == 0
        b.resume_reading()
        assert b._transport.is_reading()
        async with asyncio.timeout(10):
            await rec.wait_for(lambda: rec.data == b"held back")


async def test_write_pause_is_propagated_and_many_drainers_wait() -> None:
    transport = TcpTransport(write_high_water=16 * 1024)
    assert transport.write_low_water == 4 * 1024
    async with tcp_pair(transport) as (a, b):
        ra, rb = RecordingReceiver(), RecordingReceiver(keep_data=False)
        a.set_receiver(ra)
        b.set_receiver(rb)
        b.pause_reading()
        sent = 0
        for _ in range(4096):
            if a.write_paused:
                break
            a.write(bytes(64 * 1024))
            sent += 64 * 1024
        assert a.write_paused
        assert ra.write_pauses == 1
        drainers = [asyncio.ensure_future(a.drain()) for _ in range(3)]
        await asyncio.sleep(0.05)
        drainers[0].cancel()  # must not disturb the other waiters
        await asyncio.sleep(0)
        assert drainers[0].cancelled()
        b.resume_reading()
        async with asyncio.timeout(10):
            await asyncio.gather(*drainers[1:])
            await rb.wait_for(lambda: rb.received == sent)
        assert not a.write_paused
        assert ra.write_resumes == 1


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_written_buffers_may_be_reused_at_once(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """A bytearray handed to write() may be overwritten right away (even if queued)."""

    async def main() -> None:
        async with tcp_pair(TcpTransport(write_high_water=8 * 1024)) as (a, b):
            rec = RecordingReceiver()
            b.set_receiver(rec)
            b.pause_reading()
            buf = bytearray(32 * 1024)
            expected = bytearray()
            for i in range(200):  # enough to fill the kernel buffers and queue in user space
                buf[:] = bytes([i]) * len(buf)
                a.write(buf)
                expected += buf
                a.writelines([memoryview(buf)[:100]])
                expected += buf[:100]
            buf[:] = b"\xff" * len(buf)
            b.resume_reading()
            async with asyncio.timeout(10):
                await rec.wait_for(lambda: rec.received >= len(expected))
            assert rec.data == expected

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_lifecycle_under_each_event_loop(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    """Dial, exchange, half-close, close and abort behave the same under asyncio and uvloop."""

    async def main() -> None:
        async with tcp_pair() as (a, b):
            ra, rb = RecordingReceiver(), RecordingReceiver()
            a.write(b"early")  # before the acceptor has a receiver
            await asyncio.sleep(0.01)
            a.set_receiver(ra)
            b.set_receiver(rb)
            a.write_eof()
            async with asyncio.timeout(10):
                await rb.wait_for(lambda: rb.eof)
            assert rb.data == b"early"
            b.writelines([b"late", b" reply"])
            b.close()
            with pytest.raises(ClosedError):
                b.write(b"x")
            async with asyncio.timeout(10):
                await ra.wait_for(lambda: ra.lost)
                await b.wait_closed()
                await a.wait_closed()
            assert ra.data == b"late reply"
            assert ra.eof
            assert ra.lost_exc is None
        async with tcp_pair() as (a, b):
            rb = RecordingReceiver()
            b.set_receiver(rb)
            a.abort()
            async with asyncio.timeout(10):
                await rb.wait_for(lambda: rb.lost)
            assert isinstance(rb.lost_exc, ConnectionLost)
            with pytest.raises(ConnectionLost):
                await b.drain()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


async def test_async_handlers_run_and_failing_ones_abort_their_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = TcpTransport()
    served = asyncio.Event()

    async def handler(conn: RawConnection) -> None:
        served.set()
        raise RuntimeError("handler bug")

    listener = await transport.listen(Multiaddr(LOCAL), handler)
    try:
        with caplog.at_level(logging.ERROR, logger="peerwire.transport"):
            conn = await transport.dial(listener.addrs[0])
            rec = RecordingReceiver()
            conn.set_receiver(rec)
            async with asyncio.timeout(10):
                await served.wait()
                await rec.wait_for(lambda: rec.lost)
        assert isinstance(rec.lost_exc, ConnectionLost)
        assert "handler bug" in caplog.text
    finally:
        await listener.close()


async def test_failing_sync_callback_aborts_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def callback(conn: RawConnection) -> None:
        raise RuntimeError("callback bug")

    transport = TcpTransport()
    listener = await transport.listen(Multiaddr(LOCAL), callback)
    try:
        with caplog.at_level(logging.ERROR, logger="peerwire.transport"):
            conn = await transport.dial(listener.addrs[0])
            rec = RecordingReceiver()
            conn.set_receiver(rec)
            async with asyncio.timeout(10):
                await rec.wait_for(lambda: rec.lost)
        assert "callback bug" in caplog.text
    finally:
        await listener.close()


async def test_closed_listener_keeps_accepted_connections() -> None:
    transport = TcpTransport()
    accepted: asyncio.Queue[RawConnection] = asyncio.Queue(maxsize=1)
    listener = await transport.listen(Multiaddr(LOCAL), accepted.put_nowait)
    a = await transport.dial(listener.addrs[0])
    async with asyncio.timeout(10):
        b = await accepted.get()
    await listener.close()
    await listener.close()  # idempotent
    rec = RecordingReceiver()
    b.set_receiver(rec)
    a.write(b"alive")
    async with asyncio.timeout(10):
        await rec.wait_for(lambda: rec.data == b"alive")
    a.abort()
    b.abort()
