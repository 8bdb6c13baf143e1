"""send / request / handlers / inboxes over /peerwire/msg/1.0.0."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

import peerwire as pw
from peerwire.protocols.messaging import codec
from peerwire.testing import node_pair, running_nodes


async def test_request_reply_and_metadata() -> None:
    async with node_pair() as (a, b):
        seen: list[pw.Message] = []

        @b.on("/echo/1.0.0")
        def echo(msg: pw.Message) -> bytes:
            seen.append(msg)
            return msg.data.upper()

        assert await a.request(b.peer_id, "/echo/1.0.0", b"hi", timeout=5) == b"HI"
        (msg,) = seen
        assert msg.sender == a.peer_id
        assert msg.protocol == "/echo/1.0.0"
        assert msg.kind == "direct"
        assert msg.hops == 0
        assert msg.expects_reply
        assert msg.client_version == a.config.agent_version
        assert abs(msg.timestamp_ms - time.time() * 1000) < 60_000
        assert msg.author is None
        assert msg.signature is None


async def test_async_handler_and_one_way_send() -> None:
    async with node_pair() as (a, b):
        got: asyncio.Queue[bytes] = asyncio.Queue()

        @b.on("/note/1.0.0")
        async def note(msg: pw.Message) -> None:
            await asyncio.sleep(0)
            got.put_nowait(msg.data)

        for i in range(100):
            await a.send(b.peer_id, "/note/1.0.0", str(i).encode())
        async with asyncio.timeout(10):
            received = {await got.get() for _ in range(100)}
        assert received == {str(i).encode() for i in range(100)}


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_thousand_requests_in_flight(transport: str) -> None:
    async with node_pair(transport) as (a, b):  # type: ignore[arg-type]

        @b.on("/slow-echo/1.0.0")
        async def slow_echo(msg: pw.Message) -> bytes:
            await asyncio.sleep(0.001 * (msg.data[0] % 7))
            return msg.data

        payloads = [i.to_bytes(4, "big") * 8 for i in range(1000)]
        async with asyncio.timeout(60):
            replies = await asyncio.gather(
                *(a.request(b.peer_id, "/slow-echo/1.0.0", p, timeout=30) for p in payloads)
            )
        assert replies == payloads


async def test_request_timeout_and_late_reply_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "peerwire.messaging")
    release = asyncio.Event()
    async with node_pair() as (a, b):

        @b.on("/late/1.0.0")
        async def late(msg: pw.Message) -> bytes:
            await release.wait()
            return b"too late"

        with pytest.raises(pw.Timeout):
            await a.request(b.peer_id, "/late/1.0.0", b"?", timeout=0.2)
        release.set()
        async with asyncio.timeout(5):
            while not any("late or unknown reply" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
        # The channel still works afterwards.
        b.remove_handler("/late/1.0.0")
        b.add_handler("/late/1.0.0", lambda m: b"now")
        assert await a.request(b.peer_id, "/late/1.0.0", b"?", timeout=5) == b"now"


async def test_handler_raising_becomes_remote_error() -> None:
    async with node_pair() as (a, b):

        @b.on("/fail/1.0.0")
        def fail(msg: pw.Message) -> bytes:
            raise ValueError("no such thing")

        @b.on("/fail-async/1.0.0")
        async def fail_async(msg: pw.Message) -> bytes:
            raise KeyError("missing")

        with pytest.raises(pw.RemoteError) as info:
            await a.request(b.peer_id, "/fail/1.0.0", b"", timeout=5)
        assert info.value.code == codec.ERR_HANDLER
        assert "ValueError: no such thing" in info.value.remote_message
        with pytest.raises(pw.RemoteError, match="KeyError"):
            await a.request(b.peer_id, "/fail-async/1.0.0", b"", timeout=5)


async def test_unknown_protocol_is_an_error_not_a_timeout() -> None:
    async with node_pair() as (a, b):
        with pytest.raises(pw.ProtocolNotSupported):
            await a.request(b.peer_id, "/nobody/1.0.0", b"", timeout=30)


async def test_send_dials_known_peer_when_not_connected() -> None:
    async with running_nodes(2) as (a, b):
        got = b.inbox("/hello/1.0.0")
        a.peerstore.add_addrs(b.peer_id, b.addrs)
        assert a.peers() == []
        await a.send(b.peer_id, "/hello/1.0.0", b"hi")
        async with asyncio.timeout(5):
            msg = await got.get()
        assert msg.data == b"hi"
        assert b.peer_id in a.peers()


async def test_send_to_unknown_peer_raises() -> None:
    async with running_nodes(1) as (a,):
        with pytest.raises(pw.ConnectionLost):
            await a.send(pw.Identity.generate().peer_id, "/x/1.0.0", b"")


async def test_inbox_with_replies() -> None:
    async with node_pair() as (a, b):
        box = b.inbox("/ask/1.0.0")

        async def serve() -> None:
            async for msg in box:
                await b.reply(msg, msg.data[::-1])

        server = asyncio.ensure_future(serve())
        try:
            assert await a.request(b.peer_id, "/ask/1.0.0", b"abc", timeout=5) == b"cba"
        finally:
            box.close()
            async with asyncio.timeout(5):
                await server


async def test_slow_inbox_slows_sender_and_loses_nothing() -> None:
    """Backpressure: the sender blocks while the inbox is full; every message arrives."""
    cfg = pw.Config(stream_receive_window=256 * 1024)
    async with node_pair("tcp", config_a=cfg, config_b=cfg) as (a, b):
        box = b.inbox("/flood/1.0.0", maxsize=8)
        total = 3000
        payload = b"p" * 1024
        sent = 0

        async def sender() -> None:
            nonlocal sent
            for i in range(total):
                await a.send(b.peer_id, "/flood/1.0.0", i.to_bytes(4, "big") + payload)
                sent += 1

        task = asyncio.ensure_future(sender())
        await asyncio.sleep(1.0)
        # Nobody reads the inbox: the sender must be stuck well before the end.
        assert not task.done()
        assert sent < total
        assert len(box) == 8
        received = []
        async with asyncio.timeout(60):
            while len(received) < total:
                msg = await box.get()
                received.append(int.from_bytes(msg.data[:4], "big"))
            await task
        assert received == list(range(total))


async def test_peer_disconnect_fails_pending_requests_promptly() -> None:
    async with node_pair("tcp") as (a, b):
        started = asyncio.Event()

        @b.on("/hang/1.0.0")
        async def hang(msg: pw.Message) -> bytes:
            started.set()
            await asyncio.sleep(60)
            return b""

        pending = asyncio.ensure_future(a.request(b.peer_id, "/hang/1.0.0", b"", timeout=60))
        await asyncio.wait_for(started.wait(), 5)
        conn = b.connection(a.peer_id)
        assert conn is not None
        conn.abort()
        t0 = time.monotonic()
        with pytest.raises(pw.ConnectionLost):
            await asyncio.wait_for(pending, 10)
        assert time.monotonic() - t0 < 5


async def test_message_too_large_is_refused_locally() -> None:
    cfg = pw.Config(max_message_size=64 * 1024)
    async with node_pair(config_a=cfg, config_b=cfg) as (a, b):
        b.add_handler("/big/1.0.0", lambda m: m.data)
        with pytest.raises(pw.MessageTooLarge) as info:
            await a.send(b.peer_id, "/big/1.0.0", b"x" * (64 * 1024))
        assert info.value.limit_name == "max_message_size"
        assert await a.request(b.peer_id, "/big/1.0.0", b"ok", timeout=5) == b"ok"


async def test_signed_messages_carry_author_and_verify() -> None:
    signed = pw.Config(sign_messages=True)
    strict = pw.Config(require_signed_messages=True)
    async with node_pair(config_a=signed, config_b=strict) as (a, b):
        seen: list[pw.Message] = []
        b.add_handler("/signed/1.0.0", lambda m: seen.append(m) or b"ok")
        assert await a.request(b.peer_id, "/signed/1.0.0", b"data", timeout=5) == b"ok"
        assert seen[0].author == a.peer_id
        assert seen[0].signature is not None
        # b requires signatures: an unsigned request from b's own peer is refused.
        a.add_handler("/signed/1.0.0", lambda m: b"x")
        assert await b.request(a.peer_id, "/signed/1.0.0", b"", timeout=5) == b"x"


async def test_unsigned_refused_when_signatures_required() -> None:
    strict = pw.Config(require_signed_messages=True)
    async with node_pair(config_b=strict) as (a, b):
        b.add_handler("/signed/1.0.0", lambda m: b"ok")
        with pytest.raises(pw.RemoteError, match="signed"):
            await a.request(b.peer_id, "/signed/1.0.0", b"", timeout=5)


async def raw_exchange(a: pw.Node, b: pw.Node, frame: bytes) -> codec.Envelope:
    """Send one hand-made frame to b's message endpoint; return b's answer to it."""
    stream = await a.open_stream(b.peer_id, "/peerwire/msg/1.0.0")
    hello = codec.encode(codec.HELLO, 0, 0, b"", b"forger/0", max_size=1 << 20)
    await stream.write(hello + frame)
    decoder = codec.FrameDecoder(1 << 20)
    async with asyncio.timeout(5):
        while True:
            for env in decoder.feed(await stream.read(65536)):
                if env.kind in (codec.REPLY, codec.ERROR):
                    await stream.close()
                    return env


async def test_forged_signature_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "peerwire.messaging")
    async with node_pair() as (a, b):
        b.add_handler("/signed/1.0.0", lambda m: b"ok")
        now = int(time.time() * 1000)
        key = a.identity.public_key.to_protobuf()
        good = a.identity.sign(codec.signed_bytes(codec.REQUEST, 7, now, b"/signed/1.0.0", b"x"))
        frame = codec.encode(
            codec.REQUEST, 7, now, b"/signed/1.0.0", b"x", max_size=1 << 20, key=key, signature=good
        )
        assert (await raw_exchange(a, b, frame)).kind == codec.REPLY
        forged = codec.encode(
            codec.REQUEST, 8, now, b"/signed/1.0.0", b"y", max_size=1 << 20, key=key, signature=good
        )  # signature of another message
        answer = await raw_exchange(a, b, forged)
        assert answer.kind == codec.ERROR
        assert codec.decode_error(answer.data) == (codec.ERR_REJECTED, "bad signature")
        assert any("bad signature" in r.getMessage() for r in caplog.records)


async def test_timestamp_outside_window_is_dropped() -> None:
    async with node_pair() as (a, b):
        b.add_handler("/t/1.0.0", lambda m: b"ok")
        hour_ago = int((time.time() - 3600) * 1000)
        frame = codec.encode(codec.REQUEST, 1, hour_ago, b"/t/1.0.0", b"", max_size=1 << 20)
        answer = await raw_exchange(a, b, frame)
        assert answer.kind == codec.ERROR
        assert codec.decode_error(answer.data)[0] == codec.ERR_REJECTED
        assert await a.request(b.peer_id, "/t/1.0.0", b"", timeout=5) == b"ok"


async def test_middleware_transforms_and_drops_messages() -> None:
    async with node_pair() as (a, b):
        b.add_handler("/m/1.0.0", lambda m: m.data)
        b.use(pw.Hook.MESSAGE_RECEIVED, lambda m: m.with_data(m.data + b"!"), priority=1)
        b.use(pw.Hook.MESSAGE_RECEIVED, lambda m: None if m.data.startswith(b"bad") else m)
        a.use(pw.Hook.MESSAGE_WILL_SEND, lambda m: m.with_data(m.data.lower()))
        assert await a.request(b.peer_id, "/m/1.0.0", b"HELLO", timeout=5) == b"hello!"
        with pytest.raises(pw.RemoteError, match="middleware"):
            await a.request(b.peer_id, "/m/1.0.0", b"BAD", timeout=5)
        a.use(pw.Hook.MESSAGE_WILL_SEND, lambda m: None, priority=10)
        with pytest.raises(pw.ClosedError):
            await a.send(b.peer_id, "/m/1.0.0", b"x")


async def test_handler_and_inbox_are_exclusive() -> None:
    async with running_nodes(1) as (a,):
        a.add_handler("/x/1.0.0", lambda m: None)
        with pytest.raises(pw.UsageError):
            a.inbox("/x/1.0.0")
        box = a.inbox("/y/1.0.0")
        with pytest.raises(pw.UsageError):
            a.add_handler("/y/1.0.0", lambda m: None)
        box.close()
        a.add_handler("/y/1.0.0", lambda m: None)


async def test_garbage_on_message_stream_resets_only_that_stream() -> None:
    async with node_pair() as (a, b):
        b.add_handler("/e/1.0.0", lambda m: m.data)
        stream = await a.open_stream(b.peer_id, "/peerwire/msg/1.0.0")
        await stream.write(b"\xff" * 64)  # a frame claiming ~4 GiB

        async def drain() -> None:
            async with asyncio.timeout(5):
                while await stream.read(1024):
                    pass

        with pytest.raises(pw.StreamReset):
            await drain()
        assert await a.request(b.peer_id, "/e/1.0.0", b"still fine", timeout=5) == b"still fine"
