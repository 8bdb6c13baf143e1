"""multistream-select 1.0: dialer and listener wired back to back, plus hostile input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire.errors import NegotiationError, ProtocolError, RemoteLimitExceeded, UsageError
from peerwire.negotiate.multistream import (
    MAX_MESSAGE_SIZE,
    MAX_PROPOSALS,
    MULTISTREAM_PROTOCOL,
    MultistreamDialer,
    MultistreamListener,
    encode_message,
    encode_protocol_list,
)
from peerwire.varint import decode_uvarint

HEADER = b"\x13/multistream/1.0.0\n"


def pump(dialer: MultistreamDialer, listener: MultistreamListener, rounds: int = 20) -> None:
    """Exchange bytes until both sides are quiet (bounded by ``rounds``)."""
    for _ in range(rounds):
        a = dialer.data_to_send()
        if a:
            listener.receive_data(a)
        b = listener.data_to_send()
        if b:
            dialer.receive_data(b)
        if not a and not b:
            return
    raise AssertionError("negotiation did not settle")


def supports(*protocols: str) -> Callable[[str], bool]:
    return lambda p: p in protocols


def feed_in_chunks(
    target: MultistreamDialer | MultistreamListener, data: bytes, cuts: list[int]
) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for point in [*points, len(data)]:
        if point > start:
            target.receive_data(memoryview(data)[start:point])
            start = point


# ------------------------------------------------------------------ golden bytes
def test_golden_bytes() -> None:
    assert encode_message(MULTISTREAM_PROTOCOL) == HEADER
    assert encode_message("na") == bytes.fromhex("036e610a")  # from the spec
    assert encode_message("ls") == bytes.fromhex("036c730a")
    dialer = MultistreamDialer(["/noise"])
    assert dialer.data_to_send() == HEADER + b"\x07/noise\n"
    assert dialer.data_to_send() == b""
    listener = MultistreamListener(supports("/noise"))
    assert listener.data_to_send() == HEADER


def test_long_message_uses_two_byte_length() -> None:
    proto = "/" + "x" * 199
    assert encode_message(proto) == b"\xc9\x01" + proto.encode() + b"\n"


# ------------------------------------------------------------------ negotiation
def test_first_proposal_accepted() -> None:
    dialer = MultistreamDialer(["/noise", "/tls/1.0.0"])
    listener = MultistreamListener(supports("/noise"))
    listener.receive_data(dialer.data_to_send())
    assert listener.done
    assert listener.protocol == "/noise"
    assert listener.data_to_send() == HEADER + b"\x07/noise\n"
    assert not dialer.done
    dialer.receive_data(HEADER + b"\x07/noise\n")
    assert dialer.done
    assert dialer.protocol == "/noise"
    assert dialer.take_leftover() == b""
    assert listener.take_leftover() == b""


def test_fallback_after_na() -> None:
    dialer = MultistreamDialer(["/tls/1.0.0", "/noise"])
    listener = MultistreamListener(supports("/noise"))
    listener.receive_data(dialer.data_to_send())
    assert not listener.done
    answer = listener.data_to_send()
    assert answer == HEADER + b"\x03na\n"
    dialer.receive_data(answer)
    assert not dialer.done
    second = dialer.data_to_send()
    assert second == b"\x07/noise\n"
    listener.receive_data(second)
    pump(dialer, listener)
    assert dialer.protocol == listener.protocol == "/noise"


def test_no_common_protocol() -> None:
    dialer = MultistreamDialer(["/a", "/b", "/c"])
    listener = MultistreamListener(supports("/z"))
    with pytest.raises(NegotiationError, match=r"'/a', '/b', '/c'"):
        pump(dialer, listener)
    assert not dialer.done
    assert dialer.protocol is None
    with pytest.raises(UsageError):
        dialer.receive_data(b"")


def test_leftover_after_echo_and_after_done() -> None:
    dialer = MultistreamDialer(["/echo/1"])
    listener = MultistreamListener(supports("/echo/1"))
    listener.receive_data(dialer.data_to_send() + b"never parsed as a message")
    assert listener.take_leftover() == b"never parsed as a message"
    dialer.receive_data(listener.data_to_send() + b"\x00server speaks first")
    assert dialer.take_leftover() == b"\x00server speaks first"
    assert dialer.take_leftover() == b""
    dialer.receive_data(b"more")
    assert dialer.take_leftover() == b"more"


# ------------------------------------------------------------------ lazy mode
def test_lazy_dialer_with_app_data_both_ways() -> None:
    dialer = MultistreamDialer(["/yamux/1.0.0"], lazy=True)
    assert dialer.done
    assert dialer.protocol == "/yamux/1.0.0"
    assert dialer.lazy_pending
    listener = MultistreamListener(supports("/yamux/1.0.0"))
    # js-libp2p / go send header + proposal + first application bytes in one write.
    listener.receive_data(dialer.data_to_send() + b"client-app")
    assert listener.done
    assert listener.take_leftover() == b"client-app"
    # The listener's header + echo arrive with its own application bytes behind them.
    reply = listener.data_to_send() + b"server-app"
    assert dialer.take_leftover() == b""
    dialer.receive_data(reply[:5])
    assert dialer.lazy_pending
    assert dialer.take_leftover() == b""
    dialer.receive_data(reply[5:])
    assert not dialer.lazy_pending
    assert dialer.take_leftover() == b"server-app"


def test_lazy_dialer_refused() -> None:
    dialer = MultistreamDialer(["/nope"], lazy=True)
    listener = MultistreamListener(supports("/yes"))
    listener.receive_data(dialer.data_to_send())
    with pytest.raises(NegotiationError, match="/nope"):
        dialer.receive_data(listener.data_to_send())


def test_lazy_needs_exactly_one_protocol() -> None:
    with pytest.raises(UsageError):
        MultistreamDialer(["/a", "/b"], lazy=True)


@pytest.mark.parametrize("protocols", [[], [""], ["na"], ["ls"], ["/a\n"], ["/" + "x" * 1023]])
def test_dialer_rejects_bad_protocol_ids(protocols: list[str]) -> None:
    with pytest.raises(UsageError):
        MultistreamDialer(protocols)


# ------------------------------------------------------------------ ls
def test_ls_lists_protocols() -> None:
    listener = MultistreamListener(supports("/a", "/b"), listing=lambda: ["/a", "/b"])
    listener.data_to_send()
    listener.receive_data(HEADER + encode_message("ls"))
    reply = listener.data_to_send()
    assert reply == encode_protocol_list(["/a", "/b"])
    got = decode_uvarint(reply)
    assert got is not None
    length, start = got
    body = reply[start:]
    assert len(body) == length
    assert body.endswith(b"\n")
    lines, pos = [], 0
    while pos < len(body) - 1:
        got = decode_uvarint(body, pos)
        assert got is not None
        n, pos = got
        lines.append(body[pos : pos + n])
        pos += n
    assert lines == [b"/a\n", b"/b\n"]
    assert not listener.done
    listener.receive_data(encode_message("/b"))
    assert listener.protocol == "/b"


def test_ls_without_listing_answers_na() -> None:
    listener = MultistreamListener(lambda p: True)
    listener.data_to_send()
    listener.receive_data(HEADER + encode_message("ls"))
    assert listener.data_to_send() == b"\x03na\n"
    assert not listener.done


# ------------------------------------------------------------------ hostile input
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (encode_message("/multistream/2.0.0"), ProtocolError),  # wrong header
        (b"\x13/multistream/1.0.0X", ProtocolError),  # no trailing newline
        (b"\x00", ProtocolError),  # empty message
        (b"\x02\xff\n", ProtocolError),  # not UTF-8
        (b"\x81\x00", ProtocolError),  # non-minimal length
        (b"\x81\x08", RemoteLimitExceeded),  # 1025 bytes
        (b"\xff\xff\x7f", RemoteLimitExceeded),  # three-byte length
    ],
)
@pytest.mark.parametrize("side", ["dialer", "listener"])
def test_malformed_input(data: bytes, error: type[Exception], side: str) -> None:
    target: MultistreamDialer | MultistreamListener
    target = MultistreamDialer(["/a"]) if side == "dialer" else MultistreamListener(lambda p: True)
    with pytest.raises(error):
        target.receive_data(data)
    # Byte by byte: the same error, never an IndexError or a silent hang.
    fresh = MultistreamDialer(["/a"]) if side == "dialer" else MultistreamListener(lambda p: True)
    raised: Exception | None = None
    for i in range(len(data)):
        try:
            fresh.receive_data(data[i : i + 1])
        except ProtocolError as exc:
            raised = exc
            break
    assert isinstance(raised, error)


def test_malformed_proposal_after_header() -> None:
    listener = MultistreamListener(lambda p: True)
    with pytest.raises(ProtocolError):
        listener.receive_data(HEADER + b"\x02\xc3\n")  # truncated UTF-8 sequence


def test_dialer_rejects_unexpected_answer() -> None:
    dialer = MultistreamDialer(["/a"])
    with pytest.raises(ProtocolError, match="unexpected answer"):
        dialer.receive_data(HEADER + encode_message("/b"))


def test_message_of_exactly_the_limit_is_accepted() -> None:
    proto = "/" + "p" * (MAX_MESSAGE_SIZE - 2)
    listener = MultistreamListener(lambda p: True)
    listener.receive_data(HEADER + encode_message(proto))
    assert listener.protocol == proto


def test_listener_caps_refused_proposals() -> None:
    listener = MultistreamListener(lambda p: False)
    listener.data_to_send()
    listener.receive_data(
        HEADER + b"".join(encode_message(f"/p/{i}") for i in range(MAX_PROPOSALS))
    )
    assert listener.data_to_send() == b"\x03na\n" * MAX_PROPOSALS
    with pytest.raises(RemoteLimitExceeded) as info:
        listener.receive_data(encode_message("/one/too/many"))
    assert info.value.limit_name == "max_proposals"
    assert listener.data_to_send() == b""


def test_listener_custom_proposal_cap() -> None:
    listener = MultistreamListener(lambda p: False, max_proposals=1)
    listener.receive_data(HEADER + encode_message("/x"))
    with pytest.raises(RemoteLimitExceeded):
        listener.receive_data(encode_message("/y"))


# ------------------------------------------------------------------ chunking
@settings(max_examples=100, deadline=None)
@given(
    cuts_l=st.lists(st.integers(min_value=0, max_value=500), max_size=30),
    cuts_d=st.lists(st.integers(min_value=0, max_value=500), max_size=30),
    lazy=st.booleans(),
    app=st.binary(max_size=40),
)
def test_any_chunking_gives_the_same_result(
    cuts_l: list[int], cuts_d: list[int], lazy: bool, app: bytes
) -> None:
    protocols = ["/yamux/1.0.0"] if lazy else ["/tls/1.0.0", "/noise", "/yamux/1.0.0"]
    dialer = MultistreamDialer(protocols, lazy=lazy)
    listener = MultistreamListener(supports("/yamux/1.0.0"))
    for _ in range(10):
        out = dialer.data_to_send()
        if not out:
            break
        if lazy or dialer.done:
            out += app
        feed_in_chunks(listener, out, cuts_l)
        back = listener.data_to_send()
        if listener.done:
            back += app[::-1]
        feed_in_chunks(dialer, back, cuts_d)
    assert listener.protocol == dialer.protocol == "/yamux/1.0.0"
    assert not dialer.lazy_pending
    assert dialer.take_leftover() == app[::-1]
    assert listener.take_leftover() == (app if lazy else b"")


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=300).filter(lambda s: "\n" not in s and len(s.encode()) < 1024))
def test_message_round_trip(text: str) -> None:
    listener = MultistreamListener(lambda p: True)
    frame = HEADER + encode_message(text)
    if text in ("na", "ls", MULTISTREAM_PROTOCOL):
        return
    for i in range(len(frame)):
        listener.receive_data(frame[i : i + 1])
    assert listener.protocol == text
