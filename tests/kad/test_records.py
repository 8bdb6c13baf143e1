"""Record and provider stores: validation, limits, expiry, republish bookkeeping."""

from __future__ import annotations

import random

import pytest

from peerwire import Identity
from peerwire.errors import LimitExceeded, ProtocolError, UsageError
from peerwire.protocols.kad import (
    AcceptAllValidator,
    InvalidRecord,
    KadConfig,
    NamespacedValidator,
    PublicKeyValidator,
    default_validator,
)
from peerwire.protocols.kad.records import ProviderStore, RecordStore, namespace_of

from .helpers import random_peer

HOUR = 3600.0


def store(**kw: object) -> RecordStore:
    args: dict[str, object] = {
        "max_records": 4,
        "max_record_size": 256,
        "ttl": 100.0,
        "republish_interval": 40.0,
    }
    args.update(kw)
    return RecordStore(default_validator(), **args)  # type: ignore[arg-type]


def pk_record(ident: Identity) -> tuple[bytes, bytes]:
    return b"/pk/" + ident.peer_id.to_bytes(), ident.public_key.to_protobuf()


def test_public_key_records_must_match_their_key() -> None:
    a, b = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
    v = PublicKeyValidator()
    key, value = pk_record(a)
    v.validate(key, value)
    with pytest.raises(InvalidRecord):
        v.validate(key, pk_record(b)[1])  # someone else's key
    with pytest.raises(InvalidRecord):
        v.validate(key, b"not a key")
    with pytest.raises(InvalidRecord):
        v.validate(b"/pk/" + b"\xff\xff", value)  # not a PeerId
    with pytest.raises(InvalidRecord):
        v.validate(b"/pk/", value)
    assert isinstance(InvalidRecord("x"), ProtocolError)


def test_namespaces_dispatch_and_unknown_ones_follow_the_default() -> None:
    assert namespace_of(b"/pk/abc") == "pk"
    assert namespace_of(b"/ipns/x") == "ipns"
    assert namespace_of(b"plain") is None
    assert namespace_of(b"//x") is None
    assert namespace_of(b"/\xff/x") is None
    strict = NamespacedValidator({"pk": PublicKeyValidator()})
    with pytest.raises(InvalidRecord):
        strict.validate(b"/app/x", b"v")
    with pytest.raises(InvalidRecord):
        strict.validate(b"raw key", b"v")
    lenient = default_validator()
    lenient.validate(b"/app/x", b"v")
    lenient.validate(b"raw key", b"v")
    with pytest.raises(InvalidRecord):
        lenient.validate(b"/pk/\x00\x01", b"v")


def test_accept_all_selects_the_majority_then_the_latest() -> None:
    v = AcceptAllValidator()
    assert v.select(b"k", [b"old", b"new"]) == 1
    assert v.select(b"k", [b"a", b"b", b"a"]) == 2
    assert v.select(b"k", [b"a", b"a", b"b"]) == 1
    assert v.select(b"k", [b"x"]) == 0


def test_put_get_replace_and_expire() -> None:
    s = store()
    assert s.put(b"/app/a", b"1", now=0.0)
    record = s.get(b"/app/a", 10.0)
    assert record is not None
    assert record.value == b"1"
    assert record.expires == 100.0
    assert s.put(b"/app/a", b"2", now=50.0)  # tie in the default select: newer wins
    record = s.get(b"/app/a", 60.0)
    assert record is not None
    assert record.value == b"2"
    assert record.expires == 150.0
    assert s.get(b"/app/a", 150.0) is None  # expired, and dropped
    assert len(s) == 0


def test_a_better_stored_value_is_kept() -> None:
    class Highest:
        def validate(self, key: bytes, value: bytes) -> None:
            return None

        def select(self, key: bytes, values: object) -> int:
            vals = list(values)  # type: ignore[call-overload]
            return vals.index(max(vals))

    s = RecordStore(
        NamespacedValidator({"v": Highest()}),
        max_records=4,
        max_record_size=256,
        ttl=100.0,
        republish_interval=0.0,
    )
    assert s.put(b"/v/x", b"5", 0.0)
    assert not s.put(b"/v/x", b"3", 1.0)
    assert s.get(b"/v/x", 2.0).value == b"5"  # type: ignore[union-attr]
    assert s.put(b"/v/x", b"3", 1.0, replace=True)


def test_size_and_count_limits() -> None:
    s = store(max_records=2, max_record_size=64)
    with pytest.raises(InvalidRecord):
        s.put(b"/app/big", b"x" * 64, 0.0)
    with pytest.raises(InvalidRecord):
        s.put(b"", b"x", 0.0)
    s.put(b"/app/1", b"x", 0.0)
    s.put(b"/app/2", b"x", 0.0)
    with pytest.raises(LimitExceeded) as info:
        s.put(b"/app/3", b"x", 10.0)
    assert info.value.limit_name == "max_records"
    s.put(b"/app/1", b"y", 10.0)  # updating an existing key is fine
    s.put(b"/app/3", b"x", 200.0)  # once the others expired there is room
    assert s.expire(1000.0) == 1


def test_republish_bookkeeping() -> None:
    s = store(republish_interval=40.0)
    s.publish(b"/app/mine", b"v", 0.0)
    assert s.due_republish(39.0) == []
    assert s.next_republish() == 40.0
    assert s.due_republish(40.0) == [(b"/app/mine", b"v")]
    s.mark_republished(b"/app/mine", 40.0)
    assert s.due_republish(79.0) == []
    assert s.due_republish(80.0) == [(b"/app/mine", b"v")]
    s.publish(b"/app/mine", b"w", 80.0)  # a new put replaces the value
    assert s.due_republish(120.0) == [(b"/app/mine", b"w")]
    s.unpublish(b"/app/mine")
    assert s.due_republish(1e9) == []
    never = store(republish_interval=0.0)
    never.publish(b"/app/x", b"v", 0.0)
    assert never.due_republish(1e9) == []
    assert never.next_republish() is None


def test_provider_store_limits_and_expiry() -> None:
    rng = random.Random(1)
    peers = [random_peer(rng) for _ in range(4)]
    p = ProviderStore(max_keys=2, max_providers_per_key=2, ttl=10.0, reprovide_interval=5.0)
    assert p.add(b"k1", peers[0], 0.0)
    assert p.add(b"k1", peers[1], 1.0)
    assert not p.add(b"k1", peers[2], 2.0)  # full: newcomers refused
    assert p.add(b"k1", peers[0], 3.0)  # a known provider refreshes its expiry
    assert p.get(b"k1", 5.0) == peers[:2]
    assert p.get(b"k1", 11.5) == [peers[0]]  # peers[1] expired at 1 + 10; peers[0] lives to 13
    assert p.add(b"k2", peers[0], 0.0)
    assert not p.add(b"k3", peers[0], 0.0)  # max_keys
    assert p.add(b"k3", peers[0], 20.0)  # after expiry there is room again
    assert p.expire(100.0) >= 1
    assert len(p) == 0


def test_reprovide_bookkeeping() -> None:
    p = ProviderStore(max_keys=1, max_providers_per_key=2, ttl=10.0, reprovide_interval=5.0)
    p.start_providing(b"k", 0.0)
    assert p.due_reprovide(4.0) == []
    assert p.due_reprovide(5.0) == [b"k"]
    p.mark_reprovided(b"k", 5.0)
    assert p.due_reprovide(9.0) == []
    with pytest.raises(LimitExceeded):
        p.start_providing(b"other", 0.0)
    p.stop_providing(b"k")
    assert p.providing() == []


def test_kad_config_validates_its_fields() -> None:
    KadConfig()
    for bad in (
        {"k": 0},
        {"alpha": 0},
        {"mode": "both"},
        {"bucket_count": 0},
        {"request_timeout": 0},
        {"jitter": 1.0},
        {"max_message_size": 1024},
        {"protocol": "no-slash"},
        {"validator": object()},
    ):
        with pytest.raises(UsageError):
            KadConfig(**bad)  # type: ignore[arg-type]
    assert KadConfig().record_ttl == 36 * HOUR
