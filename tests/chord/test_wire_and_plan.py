"""The chord message codec (round trips, hostile bytes) and the sans-IO stabilisation plan."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire.identity.multiaddr import Multiaddr
from peerwire.identity.peer_id import PeerId
from peerwire.overlay.chord.config import ChordConfig
from peerwire.overlay.chord.ideal import ideal_rings
from peerwire.overlay.chord.ring import KEY_BITS, Ring
from peerwire.overlay.chord.stabilize import Stabilizer
from peerwire.overlay.chord.wire import (
    MAX_ADDRS_PER_NODE,
    ChordProtocolError,
    Codec,
    NodeInfo,
    Request,
    RequestType,
    Response,
    Status,
)

peer_ids = st.binary(min_size=32, max_size=32).map(
    lambda b: PeerId.from_bytes(bytes((0x12, 0x20)) + b)
)
addrs = st.builds(
    lambda a, b, port: Multiaddr(f"/ip4/127.0.{a}.{b}/tcp/{port}"),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(1, 65535),
)
nodes = st.builds(NodeInfo, peer_ids, st.lists(addrs, max_size=MAX_ADDRS_PER_NODE).map(tuple))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(list(RequestType)),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.lists(addrs, max_size=MAX_ADDRS_PER_NODE).map(tuple),
)
def test_request_round_trip(
    kind: RequestType, key: bytes, count: int, ttl: int, sender: tuple[Multiaddr, ...]
) -> None:
    codec = Codec(64)
    req = Request(type=kind, key=key, count=count, ttl=ttl, sender_addrs=sender)
    assert codec.decode_request(codec.encode_request(req)) == req


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(list(Status)),
    st.lists(nodes, max_size=10).map(tuple),
    st.lists(nodes, max_size=10).map(tuple),
    st.lists(nodes, max_size=10).map(tuple),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_response_round_trip(
    status: Status,
    succ: tuple[NodeInfo, ...],
    pred: tuple[NodeInfo, ...],
    fingers: tuple[NodeInfo, ...],
    hops: int,
    approximate: bool,
) -> None:
    codec = Codec(64)
    resp = Response(
        status=status,
        successors=succ,
        predecessors=pred,
        fingers=fingers,
        hops=hops,
        approximate=approximate,
    )
    assert codec.decode_response(codec.encode_response(resp)) == resp


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_hostile_bytes_raise_only_chord_protocol_error(data: bytes) -> None:
    codec = Codec(8)
    for decode in (codec.decode_request, codec.decode_response):
        try:
            decode(data)
        except ChordProtocolError:
            pass


def test_lists_are_cut_and_bad_entries_skipped() -> None:
    from peerwire._proto import chord_pb2

    rng = random.Random(1)
    msg = chord_pb2.Response()
    good = [PeerId.from_bytes(bytes((0x12, 0x20)) + rng.randbytes(32)) for _ in range(5)]
    for pid in good:
        entry = msg.successors.add()
        entry.id = pid.to_bytes()
        entry.addrs.extend([b"\xff\xff", Multiaddr("/ip4/1.2.3.4/tcp/5").to_bytes()])
    msg.successors.add().id = b"not a peer id"
    decoded = Codec(3).decode_response(msg.SerializeToString())
    assert [n.peer_id for n in decoded.successors] == good[:3]
    assert all(n.addrs == (Multiaddr("/ip4/1.2.3.4/tcp/5"),) for n in decoded.successors)
    assert Codec(10).decode_response(msg.SerializeToString()).successors[-1].peer_id == good[-1]


def test_find_successors_key_must_be_32_bytes() -> None:
    codec = Codec(8)
    data = codec.encode_request(Request(type=RequestType.FIND_SUCCESSORS, key=b"short"))
    with pytest.raises(ChordProtocolError):
        codec.decode_request(data)


# ------------------------------------------------------------------ plan
def test_jittered_interval_stays_in_bounds_and_is_seeded() -> None:
    cfg = ChordConfig(stabilize_interval=2.0, jitter=0.25)
    a = Stabilizer[int](cfg, random.Random(5))
    b = Stabilizer[int](cfg, random.Random(5))
    delays = [a.next_delay() for _ in range(200)]
    assert delays == [b.next_delay() for _ in range(200)]
    assert all(1.5 <= d <= 2.5 for d in delays)
    assert len(set(delays)) > 100


def test_failures_count_up_and_reset_on_success() -> None:
    plan = Stabilizer[str](ChordConfig(max_failures=2), random.Random(1))
    assert not plan.failed("x")
    plan.heard_from("x", 10.0)
    assert not plan.failed("x")
    assert plan.failed("x")


def test_probes_pick_the_longest_silent_neighbours() -> None:
    cfg = ChordConfig(probe_interval=30.0, max_probes_per_round=2)
    plan = Stabilizer[int](cfg, random.Random(1))
    ring: Ring[int] = Ring(0, 0)
    ring.offer([(k, k) for k in (10, 20, 30, 40)])
    assert plan.probes(ring, 0.0) == []  # newcomers start their clock now
    plan.heard_from(20, 5.0)
    plan.heard_from(30, 1.0)
    assert plan.probes(ring, 36.0) == [10, 40]  # silent since 0; 30 since 1; 20 recent
    plan.forget(10)
    assert plan.probes(ring, 36.0) == [40, 30]  # forgotten: its clock restarts


def test_finger_sweep_skips_starts_the_answers_cover_and_wraps() -> None:
    rng = random.Random(9)
    ids = [rng.getrandbits(256) for _ in range(500)]
    ring = ideal_rings([(p, p) for p in ids])[ids[0]]
    plan = Stabilizer[int](ChordConfig(), random.Random(1))
    floor = ring.sweep_floor()
    looked_up = []
    for _ in range(40):
        index = plan.next_finger(ring)
        assert index is not None
        assert floor <= index < KEY_BITS
        looked_up.append(index)
        first = ring.finger(index)[0]
        distance = ring.distance_of(first)
        plan.finger_done(index, distance if first != ids[0] else None)
    # One pass visits each distinct finger past the floor once, then starts over.
    one_pass = looked_up[: looked_up.index(floor, 1)]
    distinct = {i for i, _ in ring.distinct_fingers() if i >= floor}
    assert len(one_pass) <= len(distinct) + 1
    assert len(set(one_pass)) == len(one_pass)
    assert Stabilizer[int](ChordConfig(), random.Random(1)).next_finger(Ring(0, 0)) is None
