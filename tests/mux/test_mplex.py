"""mplex core: two sessions back to back, golden bytes, limits and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire.errors import (
    ClosedError,
    LimitExceeded,
    ProtocolError,
    RemoteLimitExceeded,
    StreamReset,
    UsageError,
)
from peerwire.mux.events import (
    DataReceived,
    MuxerCore,
    MuxEvent,
    StreamEnded,
    StreamOpened,
)
from peerwire.mux.events import StreamReset as StreamResetEvent
from peerwire.mux.mplex import MplexConfig, MplexSession
from peerwire.varint import encode_uvarint


def pair(
    client: MplexConfig | None = None, server: MplexConfig | None = None
) -> tuple[MplexSession, MplexSession]:
    a = MplexSession(is_client=True, config=client or MplexConfig())
    b = MplexSession(is_client=False, config=server or MplexConfig())
    return a, b


def wire(session: MplexSession) -> bytes:
    return b"".join(session.data_to_send())


def deliver(src: MplexSession, dst: MplexSession) -> list[MuxEvent]:
    return dst.receive_data(wire(src))


def frame(wire_id: int, flag: int, data: bytes = b"") -> bytes:
    return encode_uvarint((wire_id << 3) | flag) + encode_uvarint(len(data)) + data


def test_implements_muxer_core() -> None:
    core: MuxerCore = MplexSession(is_client=True)
    assert core.data_to_send() == []


# ------------------------------------------------------------------ golden bytes
def test_golden_new_stream_and_message() -> None:
    a, _ = pair()
    s0 = a.open_stream()
    s1 = a.open_stream()
    # NewStream: header (0 << 3) | 0, length 1, name "0" (go and js name streams by id).
    assert wire(a) == b"\x00\x010" + b"\x08\x011"
    a.send_data(s1, b"hi")
    assert wire(a) == b"\x0a\x02hi"  # (1 << 3) | MessageInitiator
    a.close_stream(s0)
    a.reset_stream(s1)
    assert wire(a) == b"\x04\x00" + b"\x0e\x00"  # CloseInitiator 0, ResetInitiator 1
    assert a.wire_stream(s0) == (0, True)


def test_golden_receiver_flags() -> None:
    a, b = pair()
    a.open_stream()
    (opened,) = deliver(a, b)
    assert isinstance(opened, StreamOpened)
    sid = opened.stream_id
    assert b.wire_stream(sid) == (0, False)
    b.send_data(sid, b"yo")
    b.close_stream(sid)
    assert wire(b) == b"\x01\x02yo" + b"\x03\x00"  # MessageReceiver, CloseReceiver


def test_opaque_ids() -> None:
    a, b = pair()
    ids = [a.open_stream() for _ in range(3)]
    assert ids == [1, 3, 5]  # (wire_id << 1) | 1
    events = deliver(a, b)
    assert events == [StreamOpened(0), StreamOpened(2), StreamOpened(4)]


# ------------------------------------------------------------------ streams
def test_open_and_data_both_ways() -> None:
    a, b = pair()
    sa = a.open_stream()
    assert a.send_data(sa, b"ping") == 4
    events = deliver(a, b)
    assert isinstance(events[0], StreamOpened)
    sb = events[0].stream_id
    assert events == [StreamOpened(sb), DataReceived(sb, b"ping")]
    b.send_data(sb, bytearray(b"pong"))
    assert deliver(b, a) == [DataReceived(sa, b"pong")]


def test_half_close_then_forget() -> None:
    a, b = pair()
    sa = a.open_stream()
    (opened,) = deliver(a, b)
    assert isinstance(opened, StreamOpened)
    sb = opened.stream_id
    a.close_stream(sa)
    a.close_stream(sa)  # idempotent
    assert deliver(a, b) == [StreamEnded(sb)]
    with pytest.raises(ClosedError):
        a.send_data(sa, b"x")
    b.send_data(sb, b"still open this way")
    assert deliver(b, a) == [DataReceived(sa, b"still open this way")]
    b.close_stream(sb)
    assert deliver(b, a) == [StreamEnded(sa)]
    for session, sid in ((a, sa), (b, sb)):
        with pytest.raises(UsageError):
            session.wire_stream(sid)
        with pytest.raises(ClosedError):
            session.send_data(sid, b"x")
        session.close_stream(sid)  # no-op on a forgotten stream
        session.reset_stream(sid)
        session.acknowledge(sid, 10)
    assert wire(a) == b""
    assert wire(b) == b""


def test_data_after_remote_close_is_ignored() -> None:
    a, b = pair()
    a.open_stream()
    deliver(a, b)
    assert b.receive_data(frame(0, 4) + frame(0, 2, b"late") + frame(0, 4)) == [StreamEnded(0)]


def test_reset() -> None:
    a, b = pair()
    sa = a.open_stream()
    a.send_data(sa, b"data")
    (_, _) = deliver(a, b)
    a.reset_stream(sa)
    assert deliver(a, b) == [StreamResetEvent(0)]
    with pytest.raises(StreamReset):
        b.send_data(0, b"x")
    with pytest.raises(StreamReset):
        a.send_data(sa, b"x")
    # Frames still in flight for a reset stream are ignored.
    assert a.receive_data(frame(0, 1, b"in flight") + frame(0, 3)) == []


def test_remote_reset_of_our_stream() -> None:
    a, b = pair()
    sa = a.open_stream()
    deliver(a, b)
    b.reset_stream(0)
    assert wire(b) == b"\x05\x00"  # ResetReceiver
    b.reset_stream(0)
    assert a.receive_data(b"\x05\x00") == [StreamResetEvent(sa)]
    with pytest.raises(StreamReset):
        a.send_data(sa, b"x")


def test_same_wire_id_from_both_sides_is_two_streams() -> None:
    a, b = pair()
    sa = a.open_stream()
    sb = b.open_stream()
    assert a.wire_stream(sa) == b.wire_stream(sb) == (0, True)
    a.send_data(sa, b"from a's stream")
    b.send_data(sb, b"from b's stream")
    ev_b = deliver(a, b)
    ev_a = deliver(b, a)
    (in_b,) = (e.stream_id for e in ev_b if isinstance(e, StreamOpened))
    (in_a,) = (e.stream_id for e in ev_a if isinstance(e, StreamOpened))
    assert ev_b == [StreamOpened(in_b), DataReceived(in_b, b"from a's stream")]
    assert ev_a == [StreamOpened(in_a), DataReceived(in_a, b"from b's stream")]
    assert len({sa, in_a}) == 2
    assert len({sb, in_b}) == 2
    # Replies go to the right stream on the other side.
    a.send_data(in_a, b"reply to b")
    b.send_data(in_b, b"reply to a")
    assert deliver(a, b) == [DataReceived(sb, b"reply to b")]
    assert deliver(b, a) == [DataReceived(sa, b"reply to a")]
    # Closing one leaves the other alone.
    a.close_stream(sa)
    assert deliver(a, b) == [StreamEnded(in_b)]
    b.send_data(sb, b"b's own stream still works")
    assert deliver(b, a) == [DataReceived(in_a, b"b's own stream still works")]


def test_unknown_streams_are_ignored() -> None:
    a, _ = pair()
    assert a.receive_data(frame(9, 1, b"x") + frame(9, 2, b"y") + frame(9, 3) + frame(9, 6)) == []


def test_new_stream_reusing_a_live_id_is_fatal() -> None:
    _, b = pair()
    b.receive_data(frame(3, 0, b"3"))
    with pytest.raises(ProtocolError, match="still open"):
        b.receive_data(frame(3, 0, b"3"))
    with pytest.raises(ProtocolError):
        b.receive_data(b"")


def test_wire_id_reused_after_close_gets_a_fresh_opaque_id() -> None:
    _, b = pair()
    (first,) = b.receive_data(frame(0, 0))
    b.receive_data(frame(0, 6))
    (second,) = b.receive_data(frame(0, 0))
    assert isinstance(first, StreamOpened)
    assert isinstance(second, StreamOpened)
    assert second.stream_id != first.stream_id


# ------------------------------------------------------------------ limits
def test_oversized_frame_rejected_from_header() -> None:
    _, b = pair(server=MplexConfig(max_message_size=100))
    b.receive_data(frame(0, 0))
    # Only the header and length: rejected before any body byte arrives.
    with pytest.raises(RemoteLimitExceeded) as info:
        b.receive_data(encode_uvarint(2) + encode_uvarint(101))
    assert info.value.limit_name == "max_message_size"
    assert info.value.value == 101


def test_default_message_limit_is_one_mib() -> None:
    _, b = pair()
    b.receive_data(frame(0, 0))
    b.receive_data(encode_uvarint(2) + encode_uvarint(1 << 20))  # exactly 1 MiB: accepted
    with pytest.raises(RemoteLimitExceeded):
        MplexSession(is_client=False).receive_data(
            encode_uvarint(2) + encode_uvarint((1 << 20) + 1)
        )


def test_outgoing_data_is_split() -> None:
    cfg = MplexConfig(max_message_size=10, max_stream_buffer=100)
    a, b = pair(cfg, cfg)
    sa = a.open_stream()
    payload = bytes(range(25))
    assert a.send_data(sa, memoryview(payload)) == 25
    events = deliver(a, b)
    assert events[1:] == [
        DataReceived(0, payload[:10]),
        DataReceived(0, payload[10:20]),
        DataReceived(0, payload[20:]),
    ]


def test_max_streams_local() -> None:
    a, _ = pair(client=MplexConfig(max_streams=2))
    s = a.open_stream()
    a.open_stream()
    with pytest.raises(LimitExceeded) as info:
        a.open_stream()
    assert info.value.limit_name == "max_streams"
    a.reset_stream(s)
    a.open_stream()


def test_max_streams_remote_gets_reset() -> None:
    a, b = pair(server=MplexConfig(max_streams=1))
    a.open_stream()
    s2 = a.open_stream()
    assert deliver(a, b) == [StreamOpened(0)]
    assert wire(b) == b"\x0d\x00"  # ResetReceiver for wire id 1
    a.receive_data(b"\x0d\x00")
    with pytest.raises(StreamReset):
        a.send_data(s2, b"x")


def test_max_stream_buffer_resets_the_stream() -> None:
    a, b = pair(server=MplexConfig(max_stream_buffer=10))
    sa = a.open_stream()
    a.send_data(sa, b"123456")
    events = deliver(a, b)
    assert events[-1] == DataReceived(0, b"123456")
    b.acknowledge(0, 2)  # 4 outstanding
    a.send_data(sa, b"123456")  # 10: exactly at the limit, fine
    assert deliver(a, b) == [DataReceived(0, b"123456")]
    a.send_data(sa, b"x")  # 11: over
    assert deliver(a, b) == [StreamResetEvent(0)]
    assert wire(b) == b"\x05\x00"
    assert a.receive_data(b"\x05\x00") == [StreamResetEvent(sa)]
    with pytest.raises(StreamReset):
        a.send_data(sa, b"x")


def test_acknowledge_is_lenient_but_rejects_negative() -> None:
    a, b = pair(server=MplexConfig(max_stream_buffer=8))
    sa = a.open_stream()
    a.send_data(sa, b"12345678")
    deliver(a, b)
    b.acknowledge(0, 100)  # more than delivered: clamps at zero
    a.send_data(sa, b"12345678")
    assert deliver(a, b) == [DataReceived(0, b"12345678")]
    with pytest.raises(UsageError):
        b.acknowledge(0, -1)


@pytest.mark.parametrize(
    "kwargs", [{"max_streams": -1}, {"max_message_size": 0}, {"max_stream_buffer": 0}]
)
def test_config_validation(kwargs: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        MplexConfig(**kwargs)


# ------------------------------------------------------------------ hostile input
def test_unknown_flag_is_fatal() -> None:
    _, b = pair()
    with pytest.raises(ProtocolError, match="flag 7"):
        b.receive_data(b"\x07")
    with pytest.raises(ProtocolError):
        b.receive_data(frame(0, 0))


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x00\x00",  # non-minimal header varint
        b"\x00\x80\x00",  # non-minimal length varint
        b"\xff" * 10,  # header varint longer than 9 bytes
    ],
)
def test_malformed_varints(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        MplexSession(is_client=True).receive_data(data)


def test_input_buffer_may_be_reused() -> None:
    a, b = pair()
    sa = a.open_stream()
    a.send_data(sa, b"A" * 50)
    buf = bytearray(wire(a))
    events = b.receive_data(memoryview(buf)[:-10])
    buf[:] = b"\x00" * len(buf)
    events += b.receive_data(b"A" * 10)
    assert events == [StreamOpened(0), DataReceived(0, b"A" * 50)]


def test_ping_and_go_away() -> None:
    a, b = pair()
    with pytest.raises(UsageError, match="no ping"):
        a.ping(1)
    b.go_away()
    with pytest.raises(ClosedError):
        b.open_stream()
    assert wire(b) == b""
    s = a.open_stream()
    assert deliver(a, b) == []
    assert wire(b) == b"\x05\x00"
    a.receive_data(b"\x05\x00")
    with pytest.raises(StreamReset):
        a.send_data(s, b"x")


def test_unknown_ids_are_usage_errors() -> None:
    a, _ = pair()
    for sid in (1, 2, -1):
        with pytest.raises(UsageError):
            a.send_data(sid, b"x")
        with pytest.raises(UsageError):
            a.close_stream(sid)


# ------------------------------------------------------------------ chunking
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("open")),
        st.tuples(st.just("send"), st.integers(0, 7), st.binary(max_size=300)),
        st.tuples(st.just("close"), st.integers(0, 7)),
        st.tuples(st.just("reset"), st.integers(0, 7)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=40))
def test_any_chunking_gives_the_same_events(ops: list[tuple[object, ...]], cuts: list[int]) -> None:
    cfg = MplexConfig(max_message_size=128)
    a = MplexSession(is_client=True, config=cfg)
    streams: list[int] = []
    sent: dict[int, bytes] = {}
    for op in ops:
        if op[0] == "open":
            streams.append(a.open_stream())
            continue
        if not streams:
            continue
        assert isinstance(op[1], int)
        sid = streams[op[1] % len(streams)]
        try:
            if op[0] == "send":
                assert isinstance(op[2], bytes)
                a.send_data(sid, op[2])
                sent[sid] = sent.get(sid, b"") + op[2]
            elif op[0] == "close":
                a.close_stream(sid)
            else:
                a.reset_stream(sid)
        except (ClosedError, StreamReset):
            pass
    data = wire(a)
    whole = MplexSession(is_client=False, config=cfg).receive_data(data)

    chunked_session = MplexSession(is_client=False, config=cfg)
    chunked: list[MuxEvent] = []
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        if point > start:
            chunked += chunked_session.receive_data(memoryview(data)[start:point])
            start = point
    assert chunked == whole

    one_by_one = MplexSession(is_client=False, config=cfg)
    single: list[MuxEvent] = []
    for i in range(len(data)):
        single += one_by_one.receive_data(data[i : i + 1])
    assert single == whole

    # Every stream's bytes arrive intact and in order, on the matching remote stream.
    remote_ids = [e.stream_id for e in whole if isinstance(e, StreamOpened)]
    assert len(remote_ids) == len(streams)
    received: dict[int, bytes] = {}
    for e in whole:
        if isinstance(e, DataReceived):
            received[e.stream_id] = received.get(e.stream_id, b"") + e.data
    for local, remote in zip(streams, remote_ids, strict=True):
        assert received.get(remote, b"") == sent.get(local, b"")


@settings(max_examples=100, deadline=None)
@given(
    wire_id=st.integers(min_value=0, max_value=(1 << 60) - 1),
    flag=st.sampled_from([1, 2]),
    payload=st.binary(min_size=1, max_size=2000),
)
def test_frame_round_trip(wire_id: int, flag: int, payload: bytes) -> None:
    we_opened = flag == 1  # MessageReceiver frames concern streams we opened
    b = MplexSession(is_client=False)
    if we_opened:
        for _ in range(2):
            b.open_stream()
        wire_id = wire_id % 2
        expected_sid = (wire_id << 1) | 1
    else:
        (opened,) = b.receive_data(frame(wire_id, 0, str(wire_id).encode()))
        assert isinstance(opened, StreamOpened)
        expected_sid = opened.stream_id
    assert b.receive_data(frame(wire_id, flag, payload)) == [DataReceived(expected_sid, payload)]
