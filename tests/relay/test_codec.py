"""Relay frame codec: round trips, every truncation, random garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerwire.errors import ProtocolError
from peerwire.protocols.relay import codec

kinds = st.sampled_from([codec.DATA, codec.REQUEST, codec.REPLY, codec.ERROR])
u64 = st.integers(0, 2**64 - 1)


@st.composite
def frames(draw: st.DrawFn) -> codec.RelayFrame:
    kind = draw(kinds)
    answer = kind in (codec.REPLY, codec.ERROR)
    return codec.RelayFrame(
        kind=kind,
        hops=draw(st.integers(0, 255)),
        ttl=draw(st.integers(0, 255)),
        id=draw(u64),
        reply_to=draw(u64),
        timestamp_ms=draw(u64),
        dest=draw(st.binary(min_size=32, max_size=32)),
        src=draw(st.binary(min_size=1, max_size=255)),
        to=draw(st.binary(min_size=1, max_size=255)) if answer else b"",
        protocol=draw(st.text(max_size=40)),
        key=draw(st.binary(max_size=300)),
        signature=draw(st.binary(max_size=600)),
        payload=draw(st.binary(max_size=2000)),
    )


@given(frames())
def test_round_trip(frame: codec.RelayFrame) -> None:
    data = codec.encode(frame)
    assert codec.decode(data) == frame
    moved = codec.decode(codec.with_hops(data, 7))
    assert moved.hops == 7
    assert codec.signed_bytes(moved) == codec.signed_bytes(frame)


@given(frames())
def test_every_truncation_raises_protocol_error(frame: codec.RelayFrame) -> None:
    data = codec.encode(frame)
    fixed = len(data) - len(frame.payload)
    for cut in range(fixed):
        with pytest.raises(ProtocolError):
            codec.decode(data[:cut])


@given(st.binary(max_size=400))
def test_garbage_raises_only_protocol_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except ProtocolError:
        pass


def test_bad_fields_rejected() -> None:
    frame = codec.RelayFrame(codec.DATA, 0, 1, 1, 0, 0, bytes(32), b"s", b"", "p", b"", b"", b"")
    data = bytearray(codec.encode(frame))
    data[0] = 9
    with pytest.raises(ProtocolError, match="version"):
        codec.decode(bytes(data))
    data[0], data[1] = 1, 9
    with pytest.raises(ProtocolError, match="kind"):
        codec.decode(bytes(data))
    reply = codec.RelayFrame(codec.REPLY, 0, 1, 1, 0, 0, bytes(32), b"s", b"", "p", b"", b"", b"")
    with pytest.raises(ProtocolError, match="'to'"):
        codec.decode(codec.encode(reply))


def test_error_payload() -> None:
    payload = codec.encode_error_payload(codec.ERR_TTL, "ttl exceeded")
    assert codec.decode_error_payload(payload) == (codec.ERR_TTL, "ttl exceeded")
    assert codec.decode_error_payload(b"") == (0, "")
