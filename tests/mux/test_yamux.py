"""Tests for the sans-IO yamux core (peerwire.mux.yamux)."""

from __future__ import annotations

import array
import itertools
import struct

import pytest
from hypothesis import HealthCheck, given, settings
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
    GoAwayReceived,
    MuxEvent,
    PingReceived,
    PongReceived,
    SendWindowOpened,
    StreamEnded,
    StreamOpened,
)
from peerwire.mux.events import StreamReset as StreamResetEvent
from peerwire.mux.yamux import YamuxConfig, YamuxSession
from peerwire.mux.yamux_frame import (
    FLAG_ACK,
    FLAG_FIN,
    FLAG_RST,
    FLAG_SYN,
    HEADER_SIZE,
    INITIAL_WINDOW,
    TYPE_DATA,
    TYPE_GO_AWAY,
    TYPE_PING,
    TYPE_WINDOW_UPDATE,
    FrameHeader,
    decode_header,
    encode_header,
)

MiB = 1 << 20
EXTRA = MiB - INITIAL_WINDOW  # what the default config grants on top of the spec window


def frame(ftype: int, flags: int, sid: int, length: int, body: bytes = b"") -> bytes:
    """A raw frame, for playing a hand-written remote."""
    return struct.pack(">BBHII", 0, ftype, flags, sid, length) + body


def data_frame(sid: int, body: bytes, flags: int = 0) -> bytes:
    return frame(TYPE_DATA, flags, sid, len(body), body)


def wire(session: YamuxSession) -> bytes:
    return b"".join(session.data_to_send())


def pump(
    a: YamuxSession, b: YamuxSession, max_rounds: int = 200
) -> tuple[list[MuxEvent], list[MuxEvent]]:
    """Move bytes both ways until both sides are quiet; return (events at a, events at b)."""
    events_a: list[MuxEvent] = []
    events_b: list[MuxEvent] = []
    for _ in range(max_rounds):
        out_a = wire(a)
        if out_a:
            events_b += b.receive_data(out_a)
        out_b = wire(b)
        if out_b:
            events_a += a.receive_data(out_b)
        if not out_a and not out_b:
            return events_a, events_b
    raise AssertionError("sessions did not go quiet")


def pair(
    client: YamuxConfig | None = None, server: YamuxConfig | None = None
) -> tuple[YamuxSession, YamuxSession]:
    c = YamuxSession(is_client=True, config=client or YamuxConfig())
    s = YamuxSession(is_client=False, config=server or YamuxConfig())
    return c, s


def received(events: list[MuxEvent], sid: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataReceived) and e.stream_id == sid)


def feed_bytewise(session: YamuxSession, data: bytes) -> list[MuxEvent]:
    events: list[MuxEvent] = []
    for i in range(len(data)):
        events += session.receive_data(data[i : i + 1])
    return events


# --------------------------------------------------------------------------- config


def test_config_defaults() -> None:
    cfg = YamuxConfig()
    assert (cfg.max_streams, cfg.receive_window, cfg.max_frame_payload) == (1024, MiB, 65536)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"receive_window": INITIAL_WINDOW - 1},
        {"receive_window": 1 << 32},
        {"max_streams": 0},
        {"max_frame_payload": 0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        YamuxConfig(**kwargs)


# ----------------------------------------------------------------- golden bytes


def test_golden_frames_from_the_session() -> None:
    """Hand-computed bytes following spec.md's layout (version|type|flags|id|length)."""
    c = YamuxSession(is_client=True)
    assert c.open_stream() == 1
    # WINDOW_UPDATE(1) + SYN(1), stream 1, delta 1 MiB - 256 KiB = 0x000C0000
    assert wire(c) == bytes.fromhex("00 01 0001 00000001 000C0000")
    assert c.send_data(1, b"hi") == 2
    assert wire(c) == bytes.fromhex("00 00 0000 00000001 00000002 6869")
    c.ping(0x01020304)
    assert wire(c) == bytes.fromhex("00 02 0001 00000000 01020304")
    c.close_stream(1)  # FIN as a zero-delta WINDOW_UPDATE, like go-yamux
    assert wire(c) == bytes.fromhex("00 01 0004 00000001 00000000")
    assert c.open_stream() == 3
    c.data_to_send()
    c.reset_stream(3)
    assert wire(c) == bytes.fromhex("00 01 0008 00000003 00000000")
    c.go_away(2)
    assert wire(c) == bytes.fromhex("00 03 0000 00000000 00000002")


def test_golden_ack_and_pong_from_the_server() -> None:
    s = YamuxSession(is_client=False)
    events = s.receive_data(bytes.fromhex("00 01 0001 00000001 00000000"))
    assert events == [StreamOpened(1)]
    assert wire(s) == bytes.fromhex("00 01 0002 00000001 000C0000")
    assert s.receive_data(bytes.fromhex("00 02 0001 00000000 DEADBEEF")) == [
        PingReceived(0xDEADBEEF)
    ]
    assert wire(s) == bytes.fromhex("00 02 0002 00000000 DEADBEEF")
    assert s.open_stream() == 2  # the server opens even ids


def test_receive_window_equal_to_spec_window_sends_zero_delta() -> None:
    c = YamuxSession(is_client=True, config=YamuxConfig(receive_window=INITIAL_WINDOW))
    c.open_stream()
    assert wire(c) == bytes.fromhex("00 01 0001 00000001 00000000")


def test_encode_header_golden_and_range_checks() -> None:
    assert encode_header(TYPE_DATA, FLAG_SYN | FLAG_FIN, 0x01020304, 0x0A0B0C0D) == bytes.fromhex(
        "00 00 0005 01020304 0A0B0C0D"
    )
    for bad in [(4, 0, 0, 0), (0, 1 << 16, 0, 0), (0, 0, 1 << 32, 0), (0, 0, 0, -1)]:
        with pytest.raises(UsageError):
            encode_header(*bad)


@given(
    ftype=st.sampled_from([TYPE_DATA, TYPE_WINDOW_UPDATE, TYPE_PING, TYPE_GO_AWAY]),
    flags=st.integers(0, 0xFFFF),
    sid=st.integers(0, 0xFFFF_FFFF),
    length=st.integers(0, 0xFFFF_FFFF),
)
def test_header_round_trip(ftype: int, flags: int, sid: int, length: int) -> None:
    raw = encode_header(ftype, flags, sid, length)
    assert len(raw) == HEADER_SIZE
    assert decode_header(b"\xff" + raw, 1) == FrameHeader(
        type=ftype, flags=flags, stream_id=sid, length=length
    )


def test_decode_header_errors() -> None:
    with pytest.raises(UsageError):
        decode_header(b"\x00" * 11)
    with pytest.raises(ProtocolError):
        decode_header(bytes.fromhex("01 00 0000 00000001 00000000"))
    with pytest.raises(ProtocolError):
        decode_header(bytes.fromhex("00 04 0000 00000001 00000000"))


# ------------------------------------------------------------- streams and data


def test_open_accept_and_data_both_ways() -> None:
    c, s = pair()
    sid = c.open_stream()
    assert c.send_data(sid, b"hello") == 5  # data may follow the SYN before the ACK
    ev_c, ev_s = pump(c, s)
    assert ev_s == [StreamOpened(sid), DataReceived(sid, b"hello")]
    assert ev_c == []
    assert s.send_data(sid, bytearray(b"world")) == 5
    ev_c, ev_s = pump(c, s)
    assert ev_c == [DataReceived(sid, b"world")]
    assert type(ev_c[0].data) is bytes  # type: ignore[union-attr]

    sid2 = s.open_stream()
    assert sid2 == 2
    s.send_data(sid2, memoryview(b"from server"))
    ev_c, ev_s = pump(c, s)
    assert ev_c == [StreamOpened(2), DataReceived(2, b"from server")]


def test_zero_length_send_is_accepted_and_queues_nothing() -> None:
    c, _ = pair()
    sid = c.open_stream()
    c.data_to_send()
    assert c.send_data(sid, b"") == 0
    assert c.send_data(sid, bytearray()) == 0
    assert c.data_to_send() == []


def test_send_copies_caller_buffer() -> None:
    c, s = pair()
    sid = c.open_stream()
    buf = bytearray(b"abcdef")
    assert c.send_data(sid, memoryview(buf)[1:4]) == 3
    buf[:] = b"XXXXXX"
    _, ev_s = pump(c, s)
    assert received(ev_s, sid) == b"bcd"


def test_large_send_is_split_into_max_frame_payload() -> None:
    c = YamuxSession(is_client=True, config=YamuxConfig(max_frame_payload=1000))
    sid = c.open_stream()
    c.data_to_send()
    payload = bytes(range(256)) * 10  # 2560 bytes
    assert c.send_data(sid, payload) == 2560
    chunks = c.data_to_send()
    sizes = [decode_header(h).length for h in chunks[0::2]]
    assert sizes == [1000, 1000, 560]
    assert b"".join(chunks[1::2]) == payload


def test_receive_copies_out_of_a_reused_input_buffer() -> None:
    c, s = pair()
    sid = c.open_stream()
    c.send_data(sid, b"payload-1")
    raw = wire(c)
    buf = bytearray(raw)
    events = s.receive_data(memoryview(buf))
    buf[:] = b"\x00" * len(buf)
    assert events == [StreamOpened(sid), DataReceived(sid, b"payload-1")]
    buf.extend(b"more")  # we hold no export on the caller's buffer


def test_half_close_both_directions() -> None:
    c, s = pair()
    sid = c.open_stream()
    c.send_data(sid, b"request")
    c.close_stream(sid)
    c.close_stream(sid)  # idempotent: one FIN
    _, ev_s = pump(c, s)
    assert ev_s == [StreamOpened(sid), DataReceived(sid, b"request"), StreamEnded(sid)]
    with pytest.raises(ClosedError):
        c.send_data(sid, b"late")
    # The server can still answer on its open half.
    assert s.send_data(sid, b"response") == 8
    s.close_stream(sid)
    ev_c, _ = pump(c, s)
    assert ev_c == [DataReceived(sid, b"response"), StreamEnded(sid)]
    # Both FINs seen: both sides forgot the stream.
    assert c.statistics().open_streams == 0
    assert s.statistics().open_streams == 0
    with pytest.raises(ClosedError):
        s.send_data(sid, b"x")
    s.close_stream(sid)  # closing a dead stream is a no-op
    s.reset_stream(sid)
    s.acknowledge(sid, 7)
    assert s.data_to_send() == []


def test_fin_with_data_frame_flag() -> None:
    s = YamuxSession(is_client=False)
    raw = data_frame(1, b"one-shot", FLAG_SYN | FLAG_FIN)
    assert s.receive_data(raw) == [StreamOpened(1), DataReceived(1, b"one-shot"), StreamEnded(1)]
    assert s.send_data(1, b"reply") == 5
    s.close_stream(1)
    assert s.statistics().open_streams == 0


def test_reset_by_local_side() -> None:
    c, s = pair()
    sid = c.open_stream()
    pump(c, s)
    s.send_data(sid, b"in flight")
    in_flight = wire(s)
    c.reset_stream(sid)
    c.reset_stream(sid)  # no-op the second time
    _, ev_s = pump(c, s)
    assert ev_s == [StreamResetEvent(sid)]
    # Data the server sent before it saw the RST is dropped silently.
    assert c.receive_data(in_flight) == []
    assert c.statistics().frames_ignored == 1
    assert wire(c) == b""
    with pytest.raises(ClosedError):
        c.send_data(sid, b"x")
    with pytest.raises(StreamReset):
        s.send_data(sid, b"x")
    with pytest.raises(StreamReset):
        s.close_stream(sid)
    s.reset_stream(sid)  # no-op
    assert s.data_to_send() == []


def test_rst_error_code_in_window_update_is_not_a_delta() -> None:
    """go-yamux v5 puts an error code in a RST window update's length field."""
    s = YamuxSession(is_client=False)
    s.receive_data(frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0xFFFF_FFFF - INITIAL_WINDOW))
    assert s.receive_data(frame(TYPE_WINDOW_UPDATE, FLAG_RST, 1, 0xFFFF_FFFF)) == [
        StreamResetEvent(1)
    ]


def test_many_concurrent_streams() -> None:
    c, s = pair()
    ids = [c.open_stream() for _ in range(150)]
    ids += [s.open_stream() for _ in range(150)]
    for sid in ids:
        sender = c if sid % 2 else s
        sender.send_data(sid, f"stream {sid} says hi".encode())
    ev_c, ev_s = pump(c, s)
    for sid in ids:
        receiver_events = ev_s if sid % 2 else ev_c
        assert received(receiver_events, sid) == f"stream {sid} says hi".encode()
    assert len(set(ids)) == 300
    assert c.statistics().open_streams == 300
    for sid in ids:
        (c if sid % 2 else s).close_stream(sid)
        (s if sid % 2 else c).close_stream(sid)
    pump(c, s)
    assert c.statistics().open_streams == s.statistics().open_streams == 0


# ------------------------------------------------------------------ flow control


def test_window_exhaustion_and_reopening() -> None:
    c, s = pair()
    sid = c.open_stream()
    # Before the ACK arrives the sender only knows the spec's 256 KiB.
    assert c.send_data(sid, b"\x01" * (INITIAL_WINDOW + 10)) == INITIAL_WINDOW
    _, ev_s = pump(c, s)
    assert len(received(ev_s, sid)) == INITIAL_WINDOW
    # The ACK granted the rest of the 1 MiB window.
    assert c.send_data(sid, b"\x02" * (2 * MiB)) == EXTRA
    assert c.send_data(sid, b"\x03") == 0
    ev_c, ev_s = pump(c, s)
    assert len(received(ev_s, sid)) == EXTRA
    assert ev_c == []
    # Small acknowledgments do not each cause a window update.
    s.acknowledge(sid, MiB // 2 - 1)
    assert s.data_to_send() == []
    s.acknowledge(sid, 1)
    first_update = wire(s)
    assert first_update == frame(TYPE_WINDOW_UPDATE, 0, sid, MiB // 2)
    s.acknowledge(sid, MiB // 2)
    ev_c = c.receive_data(first_update) + c.receive_data(wire(s))
    # Two updates arrived, but the window opened (from 0) only once.
    assert ev_c == [SendWindowOpened(sid)]
    assert c.send_data(sid, b"\x04" * (2 * MiB)) == MiB
    with pytest.raises(UsageError):
        s.acknowledge(sid, MiB + 1)  # more than was delivered


def test_no_window_opened_event_while_window_is_positive() -> None:
    c, s = pair()
    sid = c.open_stream()
    pump(c, s)
    c.send_data(sid, b"x" * (MiB // 2))
    pump(c, s)
    s.acknowledge(sid, MiB // 2)
    ev_c, _ = pump(c, s)
    assert ev_c == []
    assert c.send_data(sid, b"y" * (2 * MiB)) == MiB


def test_no_window_updates_after_remote_fin() -> None:
    c, s = pair()
    sid = c.open_stream()
    pump(c, s)
    assert c.send_data(sid, b"z" * MiB) == MiB
    c.close_stream(sid)
    pump(c, s)
    s.acknowledge(sid, MiB)
    assert s.data_to_send() == []


def test_remote_exceeding_window_is_fatal_before_buffering() -> None:
    c, s = pair()
    sid = c.open_stream()
    pump(c, s)
    s.receive_data(data_frame(sid, b"\x00" * (MiB - 5)))
    # Only the header of an over-long frame: refused before any body arrives.
    with pytest.raises(RemoteLimitExceeded) as info:
        s.receive_data(frame(TYPE_DATA, 0, sid, 6))
    assert info.value.limit_name == "receive_window"
    assert (info.value.limit, info.value.value) == (5, 6)
    # The session is dead: GO_AWAY(protocol error) queued, further input refused.
    assert wire(s) == frame(TYPE_GO_AWAY, 0, 0, 1)
    with pytest.raises(ClosedError):
        s.receive_data(b"")
    with pytest.raises(ClosedError):
        s.open_stream()
    with pytest.raises(ClosedError):
        s.send_data(sid, b"x")
    s.close_stream(sid)
    s.reset_stream(sid)
    s.go_away()
    assert s.data_to_send() == []


def test_oversized_frames_refused_from_header_bytes_alone() -> None:
    # A SYN may carry at most the spec's initial window.
    s = YamuxSession(is_client=False)
    header = frame(TYPE_DATA, FLAG_SYN, 1, INITIAL_WINDOW + 1)
    with pytest.raises(RemoteLimitExceeded):
        feed_bytewise(s, header)
    # Data for an unknown stream is dropped, but never more than we ever grant.
    s = YamuxSession(is_client=False)
    with pytest.raises(RemoteLimitExceeded):
        s.receive_data(frame(TYPE_DATA, 0, 77, 0xFFFF_FFFF))
    s = YamuxSession(is_client=False)
    assert s.receive_data(data_frame(77, b"\x00" * 100)) == []


def test_send_window_overflow_is_protocol_error() -> None:
    s = YamuxSession(is_client=False)
    s.receive_data(frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0))
    s.receive_data(frame(TYPE_WINDOW_UPDATE, 0, 1, 0xFFFF_FFFF - INITIAL_WINDOW))
    with pytest.raises(ProtocolError):
        s.receive_data(frame(TYPE_WINDOW_UPDATE, 0, 1, 1))


# ------------------------------------------------------------------ ping, go-away


def test_ping_pong() -> None:
    c, s = pair()
    c.ping(42)
    ev_c, ev_s = pump(c, s)
    assert ev_s == [PingReceived(42)]
    assert ev_c == [PongReceived(42)]
    with pytest.raises(UsageError):
        c.ping(1 << 32)


def test_go_away() -> None:
    c, s = pair()
    sid = c.open_stream()
    pump(c, s)
    s.go_away(0)
    s.go_away(1)  # only the first is sent
    ev_c, _ = pump(c, s)
    assert ev_c == [GoAwayReceived(0)]
    assert c.statistics().remote_go_away_code == 0
    with pytest.raises(ClosedError):
        c.open_stream()
    with pytest.raises(ClosedError):
        s.open_stream()
    # Existing streams carry on.
    c.send_data(sid, b"still here")
    _, ev_s = pump(c, s)
    assert ev_s == [DataReceived(sid, b"still here")]
    # A SYN that crossed our GO_AWAY is refused with RST; the session lives on.
    assert s.receive_data(frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 3, 0)) == []
    assert wire(s) == frame(TYPE_WINDOW_UPDATE, FLAG_RST, 3, 0)
    assert s.statistics().streams_refused == 1


def test_go_away_is_directional() -> None:
    """After the remote's GO_AWAY it may still open streams to us (hashicorp semantics)."""
    c = YamuxSession(is_client=True)
    assert c.receive_data(frame(TYPE_GO_AWAY, 0, 0, 2)) == [GoAwayReceived(2)]
    assert c.receive_data(frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0)) == [StreamOpened(2)]
    with pytest.raises(UsageError):
        c.go_away(-1)


# ------------------------------------------------------------------- max_streams


def test_local_max_streams() -> None:
    c = YamuxSession(is_client=True, config=YamuxConfig(max_streams=2))
    c.open_stream()
    sid = c.open_stream()
    with pytest.raises(LimitExceeded) as info:
        c.open_stream()
    assert info.value.limit_name == "max_streams"
    assert info.value.limit == 2
    c.reset_stream(sid)
    assert c.open_stream() == 5


def test_remote_syn_over_limit_gets_rst() -> None:
    c, s = pair(server=YamuxConfig(max_streams=2))
    ids = [c.open_stream() for _ in range(3)]
    ev_c, ev_s = pump(c, s)
    assert ev_s == [StreamOpened(ids[0]), StreamOpened(ids[1])]
    assert ev_c == [StreamResetEvent(ids[2])]
    assert s.statistics().streams_refused == 1
    with pytest.raises(StreamReset):
        c.send_data(ids[2], b"x")
    # Freeing a slot lets the next SYN in.
    c.reset_stream(ids[0])
    nxt = c.open_stream()
    ev_c, ev_s = pump(c, s)
    assert ev_s == [StreamResetEvent(ids[0]), StreamOpened(nxt)]


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "raw",
    [
        bytes.fromhex("01 00 0000 00000001 00000000"),  # version 1
        bytes.fromhex("00 04 0000 00000001 00000000"),  # type 4
        bytes.fromhex("00 FF 0000 00000000 00000000"),  # type 255
        frame(TYPE_DATA, 0, 0, 1, b"x"),  # DATA on the session id
        frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 0, 0),  # SYN on the session id
        frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0),  # SYN with the server's own parity
        frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0) * 2,  # duplicate SYN of a live stream
        data_frame(1, b"a", FLAG_SYN | FLAG_FIN) + data_frame(1, b"b"),  # data after FIN
    ],
)
@pytest.mark.parametrize("bytewise", [False, True])
def test_malformed_input_is_protocol_error(raw: bytes, bytewise: bool) -> None:
    s = YamuxSession(is_client=False)
    feed = feed_bytewise if bytewise else YamuxSession.receive_data
    with pytest.raises(ProtocolError):
        feed(s, raw)
    # Whatever was answered before the error, the last frame is GO_AWAY(protocol error).
    assert wire(s).endswith(frame(TYPE_GO_AWAY, 0, 0, 1))


def test_unknown_stream_frames_are_ignored() -> None:
    s = YamuxSession(is_client=False)
    raw = (
        data_frame(9, b"stray")
        + frame(TYPE_WINDOW_UPDATE, 0, 11, 100)
        + frame(TYPE_WINDOW_UPDATE, FLAG_FIN, 13, 0)
        + frame(TYPE_WINDOW_UPDATE, FLAG_RST, 15, 0)
        + frame(TYPE_WINDOW_UPDATE, FLAG_ACK, 4, 0)
    )
    assert s.receive_data(raw) == []
    assert s.data_to_send() == []
    assert s.statistics().frames_ignored == 5


# ------------------------------------------------------- incremental parsing


def recorded_conversation() -> bytes:
    """Everything a client sends a server in a busy session, plus hand-made frames."""
    c, s = pair(client=YamuxConfig(max_frame_payload=700))
    out: list[bytes] = []

    def step() -> None:
        chunk = wire(c)
        out.append(chunk)
        s.receive_data(chunk)
        c.receive_data(wire(s))

    a, b, d = c.open_stream(), c.open_stream(), c.open_stream()
    c.send_data(a, bytes(range(256)) * 9)
    c.send_data(b, b"short")
    c.ping(7)
    step()
    c.close_stream(a)
    c.reset_stream(b)
    c.send_data(d, b"after")
    c.go_away(0)
    step()
    out.append(data_frame(7, b"syn with data", FLAG_SYN))
    out.append(data_frame(7, b""))
    out.append(data_frame(7, b"and fin", FLAG_FIN))
    out.append(frame(TYPE_WINDOW_UPDATE, 0, d, 1234))
    out.append(frame(TYPE_PING, FLAG_ACK, 0, 99))
    out.append(data_frame(1001, b"unknown stream"))
    out.append(data_frame(d, b"x" * 3000))
    return b"".join(out)


CONVERSATION = recorded_conversation()


def replay(chunks: list[bytes | bytearray | memoryview]) -> tuple[list[MuxEvent], bytes]:
    s = YamuxSession(is_client=False)
    events: list[MuxEvent] = []
    for chunk in chunks:
        events += s.receive_data(chunk)
    return events, wire(s)


WHOLE_EVENTS, WHOLE_OUTPUT = replay([CONVERSATION])


def test_recorded_conversation_is_interesting() -> None:
    kinds = {type(e) for e in WHOLE_EVENTS}
    assert kinds >= {
        StreamOpened,
        DataReceived,
        StreamEnded,
        StreamResetEvent,
        PingReceived,
        PongReceived,
        GoAwayReceived,
    }
    assert received(WHOLE_EVENTS, 1) == bytes(range(256)) * 9


def test_byte_by_byte_equals_whole() -> None:
    events, output = replay([CONVERSATION[i : i + 1] for i in range(len(CONVERSATION))])
    assert events == WHOLE_EVENTS
    assert output == WHOLE_OUTPUT


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cuts=st.lists(st.integers(0, len(CONVERSATION)), max_size=40),
    kind=st.sampled_from(["bytes", "bytearray", "memoryview"]),
)
def test_any_chunking_equals_whole(cuts: list[int], kind: str) -> None:
    bounds = [0, *sorted(cuts), len(CONVERSATION)]
    chunks: list[bytes | bytearray | memoryview] = []
    for lo, hi in itertools.pairwise(bounds):
        piece = CONVERSATION[lo:hi]
        if kind == "bytearray":
            chunks.append(bytearray(piece))
        elif kind == "memoryview":
            chunks.append(memoryview(b"\xee" + piece + b"\xee")[1:-1])
        else:
            chunks.append(piece)
    events, output = replay(chunks)
    assert events == WHOLE_EVENTS
    assert output == WHOLE_OUTPUT


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300_000), min_size=1, max_size=8),
    ack_chunk=st.integers(4096, 400_000),
)
def test_transfer_with_backpressure_delivers_everything(sizes: list[int], ack_chunk: int) -> None:
    """Random writes through a small window: all bytes arrive in order, nothing breaks."""
    cfg = YamuxConfig(receive_window=INITIAL_WINDOW, max_frame_payload=50_000)
    c, s = pair(client=cfg, server=cfg)
    sid = c.open_stream()
    payload = b"".join(bytes([i % 251]) * n for i, n in enumerate(sizes))
    sent = got = 0
    unacked = 0
    chunks: list[bytes] = []
    for _ in range(10_000):
        if sent < len(payload):
            sent += c.send_data(sid, payload[sent : sent + 100_000])
        _, ev_s = pump(c, s)
        for e in ev_s:
            if isinstance(e, DataReceived):
                chunks.append(e.data)
                unacked += len(e.data)
        step = min(unacked, ack_chunk)
        s.acknowledge(sid, step)
        unacked -= step
        got = sum(map(len, chunks))
        if got == len(payload):
            break
    assert b"".join(chunks) == payload


# ------------------------------------------------------------------ edge cases


def test_non_byte_buffers_are_handled_as_bytes() -> None:
    c, s = pair()
    sid = c.open_stream()
    words = array.array("H", [0x0102, 0x0304])
    assert c.send_data(sid, memoryview(words)) == 4
    raw = wire(c)
    as_words = array.array("I", raw[: len(raw) // 4 * 4])
    events = s.receive_data(memoryview(as_words)) + s.receive_data(raw[len(raw) // 4 * 4 :])
    assert received(events, sid) == words.tobytes()


def test_data_frame_split_inside_its_body() -> None:
    c, s = pair()
    sid = c.open_stream()
    pump(c, s)
    c.send_data(sid, b"0123456789")
    raw = wire(c)
    assert s.receive_data(raw[:15]) == []
    assert s.receive_data(raw[15:]) == [DataReceived(sid, b"0123456789")]


def test_remote_reset_record_is_bounded() -> None:
    s = YamuxSession(is_client=False, config=YamuxConfig(max_streams=2))
    for sid in (1, 3, 5):
        s.receive_data(frame(TYPE_WINDOW_UPDATE, FLAG_SYN, sid, 0))
        s.receive_data(frame(TYPE_WINDOW_UPDATE, FLAG_RST, sid, 0))
    with pytest.raises(ClosedError) as info:
        s.send_data(1, b"x")  # forgotten: the oldest entry was evicted
    assert not isinstance(info.value, StreamReset)
    with pytest.raises(StreamReset):
        s.send_data(5, b"x")


def test_stream_ids_exhausted() -> None:
    c = YamuxSession(is_client=True)
    c._next_id = 0xFFFF_FFFF  # white-box: opening 2**31 streams is not practical
    assert c.open_stream() == 0xFFFF_FFFF
    with pytest.raises(LimitExceeded) as info:
        c.open_stream()
    assert info.value.limit_name == "stream_ids"


def test_ping_after_failure_and_properties() -> None:
    s = YamuxSession(is_client=False)
    assert not s.is_client
    assert s.config == YamuxConfig()
    with pytest.raises(ProtocolError):
        s.receive_data(bytes.fromhex("05 00 0000 00000001 00000000"))
    with pytest.raises(ClosedError):
        s.ping(1)
    assert s.statistics().local_go_away


# --------------------------------------------------------------------------- coalescing


def test_consecutive_small_sends_on_one_stream_share_a_frame() -> None:
    c, s = pair(client=YamuxConfig(max_frame_payload=1000))
    sid = c.open_stream()
    c.data_to_send()
    for i in range(5):
        assert c.send_data(sid, bytes([i]) * 300) == 300
    wire_bytes = wire(c)
    headers = []
    offset = 0
    while offset < len(wire_bytes):
        h = decode_header(wire_bytes, offset)
        headers.append(h.length)
        offset += 12 + h.length
    assert headers == [900, 600]  # grown up to max_frame_payload, then a new frame
    events = s.receive_data(data_frame(sid, b"", FLAG_SYN) + wire_bytes)
    assert received(events, sid) == b"".join(bytes([i]) * 300 for i in range(5))


def test_coalescing_never_reorders_around_other_frames() -> None:
    c, s = pair()
    a = c.open_stream()
    b = c.open_stream()
    c.send_data(a, b"a1")
    c.send_data(b, b"b1")
    c.send_data(a, b"a2")  # must not join the first frame: b1 stands between them
    c.close_stream(a)
    c.send_data(b, b"b2")
    _, ev_s = pump(c, s)
    data = [(e.stream_id, e.data) for e in ev_s if isinstance(e, DataReceived)]
    assert data == [(a, b"a1"), (b, b"b1"), (a, b"a2"), (b, b"b2")]
    assert StreamEnded(a) in ev_s
