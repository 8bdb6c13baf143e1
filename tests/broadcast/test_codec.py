"""Broadcast post and frame codecs: round trips, ids, truncations, garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerwire import Identity
from peerwire.errors import ProtocolError, UsageError
from peerwire.protocols.broadcast import codec

AUTHOR = Identity.from_seed(b"\x05" * 32)
u64 = st.integers(0, 2**64 - 1)
protocols = st.text(min_size=1, max_size=40)


def make_post(ts: int, nonce: int, protocol: str, payload: bytes) -> codec.Post:
    return codec.encode_post(
        ts, nonce, AUTHOR.peer_id.to_bytes(), b"", protocol, payload, AUTHOR.sign
    )


@given(u64, u64, protocols, st.binary(max_size=3000))
def test_post_round_trip_and_id(ts: int, nonce: int, protocol: str, payload: bytes) -> None:
    post = make_post(ts, nonce, protocol, payload)
    back = codec.decode_post(post.raw)
    assert back == post
    assert back.id == post.digest[:16]
    assert AUTHOR.public_key.verify(codec.signed_bytes(back.digest), back.signature)


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=500),
)
def test_frame_round_trips(hops: int, limit: int, tree: int, key: bytes, payload: bytes) -> None:
    post = make_post(1, 2, "/p", payload)
    push = codec.decode_frame(codec.encode_push(hops, limit, post.raw))
    assert (push.type, push.hops, push.hop_limit, push.post) == (codec.PUSH, hops, limit, post)
    body = codec.decode_frame(codec.encode_push(hops, limit, post.raw, body=True))
    assert body.type == codec.BODY
    assert body.post == post
    tree_frame = codec.decode_frame(codec.encode_tree(hops, tree, key, post.raw))
    assert (tree_frame.tree, tree_frame.limit) == (tree, key)
    assert tree_frame.post == post


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=50))
def test_id_frames(ids: list[bytes]) -> None:
    have = codec.decode_frame(codec.encode_ids(codec.IHAVE, ids, 3, 9))
    assert (have.type, have.hops, have.hop_limit, have.ids) == (codec.IHAVE, 3, 9, ids)
    want = codec.decode_frame(codec.encode_ids(codec.IWANT, ids))
    assert (want.type, want.ids) == (codec.IWANT, ids)


def test_id_frame_limits() -> None:
    with pytest.raises(UsageError):
        codec.encode_ids(codec.IWANT, [])
    with pytest.raises(ProtocolError):
        codec.decode_frame(bytes((codec.IWANT,)) + bytes(15))
    with pytest.raises(ProtocolError):
        codec.decode_frame(bytes((codec.IWANT,)) + bytes(16 * (codec.MAX_IDS + 1)))


@given(st.binary(max_size=300))
def test_every_truncation_raises_protocol_error(payload: bytes) -> None:
    post = make_post(7, 8, "/proto", payload)
    data = codec.encode_tree(1, 0, bytes(32), post.raw)
    fixed = len(data) - len(payload)
    for cut in range(fixed):
        with pytest.raises(ProtocolError):
            codec.decode_frame(data[:cut])


@given(st.binary(max_size=400))
def test_garbage_raises_only_protocol_error(data: bytes) -> None:
    try:
        codec.decode_frame(data)
    except ProtocolError:
        pass


def test_changed_payload_changes_id() -> None:
    a = make_post(1, 1, "/p", b"a")
    raw = bytearray(a.raw)
    raw[-1] ^= 1
    b = codec.decode_post(bytes(raw))
    assert b.id != a.id
    assert not AUTHOR.public_key.verify(codec.signed_bytes(b.digest), b.signature)
