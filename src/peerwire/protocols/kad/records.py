"""DHT records and provider records: validation, bounded stores, expiry, republishing.

Sans-IO: nothing here reads a clock. Every method that cares about time takes
``now`` (seconds on the caller's clock; the asyncio adapter passes
``loop.time()``, so the simulator's virtual clock works unchanged).

Validation follows the libp2p spec's ``Validator`` shape: ``validate(key,
value)`` raises :class:`InvalidRecord`, ``select(key, values)`` picks the best
of several valid values. Keys are namespaced like ``/pk/<peer id bytes>``: the
part between the first two slashes picks the validator. The default
(:func:`default_validator`) checks ``/pk/`` records (the value must be a public
key whose PeerId is the rest of the key) and accepts any other key, because
peerwire's ``put_value`` is meant for applications' own keys; pass a
:class:`NamespacedValidator` with ``default=None`` to refuse unknown namespaces
the way go-libp2p does.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ...errors import InvalidKeyError, LimitExceeded
from ...identity.keys import public_key_from_protobuf
from ...identity.peer_id import PeerId
from .errors import InvalidRecord

PK_PREFIX = b"/pk/"


# ------------------------------------------------------------------ validators
@runtime_checkable
class Validator(Protocol):
    """Decides which records may be stored and which of several values wins."""

    def validate(self, key: bytes, value: bytes) -> None:
        """Raise :class:`InvalidRecord` unless ``value`` may be stored under ``key``."""

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        """Index of the best of ``values`` (all already valid; at least one). Must be stable."""


@dataclass(frozen=True, slots=True)
class AcceptAllValidator:
    """Accepts every record (size limits still apply).

    Values carry no version, so ``select`` takes the value most peers
    returned, and on a tie the later one. In a store, ``[stored, incoming]``
    is a tie, so a new ``put_value`` replaces the old value; in ``get_value``
    a stale minority loses to the majority.
    """

    def validate(self, key: bytes, value: bytes) -> None:
        return None

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        counts: dict[bytes, int] = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        best = 0
        for i, value in enumerate(values):
            if counts[value] >= counts[values[best]]:
                best = i
        return best


@dataclass(frozen=True, slots=True)
class PublicKeyValidator:
    """``/pk/<peer id bytes>`` records: the value is a public key (libp2p protobuf)
    whose PeerId is exactly the bytes after ``/pk/``. Any valid value is the same
    key, so ``select`` takes the first."""

    def validate(self, key: bytes, value: bytes) -> None:
        if not key.startswith(PK_PREFIX) or len(key) <= len(PK_PREFIX):
            raise InvalidRecord("public key record keys are /pk/<peer id bytes>")
        try:
            peer = PeerId.from_bytes(key[len(PK_PREFIX) :])
            public_key = public_key_from_protobuf(value)
        except InvalidKeyError as exc:
            raise InvalidRecord(f"bad public key record: {exc}") from exc
        if not peer.matches_public_key(public_key):
            raise InvalidRecord("public key does not match the peer id in the key")

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        return 0


def namespace_of(key: bytes) -> str | None:
    """``"pk"`` for ``b"/pk/..."``; None for keys that are not ``/<ns>/<rest>`` text."""
    if not key.startswith(b"/"):
        return None
    end = key.find(b"/", 1)
    if end <= 1:
        return None
    try:
        return key[1:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


class NamespacedValidator:
    """Dispatches on the key's namespace; keys without a registered namespace go to ``default``.

    ``default=None`` rejects them (go-libp2p's behaviour). js-libp2p and
    go-libp2p need the same namespace configured on their side to accept a
    record peerwire stores on them.
    """

    def __init__(
        self, namespaces: Mapping[str, Validator], *, default: Validator | None = None
    ) -> None:
        self.namespaces = dict(namespaces)
        self.default = default

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NamespacedValidator):
            return NotImplemented
        return self.namespaces == other.namespaces and self.default == other.default

    def __hash__(self) -> int:
        # Configs holding a validator stay comparable and hashable (for stateless,
        # hashable validators such as the built-in ones).
        return hash((frozenset(self.namespaces.items()), self.default))

    def __repr__(self) -> str:
        return f"NamespacedValidator({self.namespaces!r}, default={self.default!r})"

    def _for(self, key: bytes) -> Validator:
        ns = namespace_of(key)
        validator = self.namespaces.get(ns) if ns is not None else None
        if validator is None:
            validator = self.default
        if validator is None:
            raise InvalidRecord(f"no validator for key namespace {ns!r}")
        return validator

    def validate(self, key: bytes, value: bytes) -> None:
        self._for(key).validate(key, value)

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        if len(values) == 1:
            return 0
        index = self._for(key).select(key, values)
        if not 0 <= index < len(values):
            raise InvalidRecord(f"validator selected index {index} of {len(values)} values")
        return index


def default_validator() -> NamespacedValidator:
    """``/pk/`` checked, every other key accepted (see the module docstring)."""
    return NamespacedValidator({"pk": PublicKeyValidator()}, default=AcceptAllValidator())


# -------------------------------------------------------------------- records
@dataclass(slots=True)
class StoredRecord:
    """A record held by this node. ``received``/``expires`` are on the caller's clock."""

    key: bytes
    value: bytes
    received: float
    expires: float


class RecordStore:
    """Bounded ``key -> record`` store with validation, expiry and republish bookkeeping.

    Records others put on us live ``ttl`` seconds and are then dropped: only
    their publisher keeps them alive, by republishing every
    ``republish_interval`` (the libp2p model; go and js do the same). Records we
    published ourselves are tracked in a separate table and come back from
    :meth:`due_republish` when their time is up.
    """

    def __init__(
        self,
        validator: Validator,
        *,
        max_records: int,
        max_record_size: int,
        ttl: float,
        republish_interval: float,
    ) -> None:
        self.validator = validator
        self.max_records = max_records
        self.max_record_size = max_record_size
        self.ttl = ttl
        self.republish_interval = republish_interval
        self._records: dict[bytes, StoredRecord] = {}
        self._published: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def check(self, key: bytes, value: bytes) -> None:
        """Validate a record: size limit, then the validator. Raises :class:`InvalidRecord`."""
        if not key:
            raise InvalidRecord("empty record key")
        size = len(key) + len(value)
        if size > self.max_record_size:
            raise InvalidRecord(
                f"record of {size} bytes exceeds max_record_size ({self.max_record_size})"
            )
        self.validator.validate(key, value)

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        """The validator's choice among already-valid ``values``."""
        return self.validator.select(key, values)

    def put(self, key: bytes, value: bytes, now: float, *, replace: bool = False) -> bool:
        """Validate and store; False if the stored value is better and was kept.

        ``replace=True`` skips the comparison (our own ``put_value``: the
        caller decides what the value is).

        Raises :class:`InvalidRecord` for an invalid record and
        :class:`LimitExceeded` (``max_records``) when a new key does not fit
        even after expired records are dropped.
        """
        self.check(key, value)
        existing = self._records.get(key)
        if existing is not None and existing.expires > now:
            if (
                not replace
                and existing.value != value
                and self.select(key, [existing.value, value]) == 0
            ):
                return False
            existing.value = value
            existing.received = now
            existing.expires = now + self.ttl
            return True
        if existing is None and len(self._records) >= self.max_records:
            self.expire(now)
            if len(self._records) >= self.max_records:
                raise LimitExceeded(
                    f"record store full (max_records={self.max_records})",
                    limit_name="max_records",
                    limit=self.max_records,
                    value=len(self._records) + 1,
                )
        self._records[key] = StoredRecord(key, value, now, now + self.ttl)
        return True

    def get(self, key: bytes, now: float) -> StoredRecord | None:
        record = self._records.get(key)
        if record is None:
            return None
        if record.expires <= now:
            del self._records[key]
            return None
        return record

    def remove(self, key: bytes) -> bool:
        return self._records.pop(key, None) is not None

    def expire(self, now: float) -> int:
        """Drop every expired record; returns how many."""
        dead = [key for key, rec in self._records.items() if rec.expires <= now]
        for key in dead:
            del self._records[key]
        return len(dead)

    # -------------------------------------------------- our own publications
    def publish(self, key: bytes, value: bytes, now: float) -> None:
        """Remember that we published ``key`` (so it is republished); bounded by ``max_records``."""
        if key not in self._published and len(self._published) >= self.max_records:
            raise LimitExceeded(
                f"too many published records (max_records={self.max_records})",
                limit_name="max_records",
                limit=self.max_records,
                value=len(self._published) + 1,
            )
        self._published[key] = (value, now + self.republish_interval)
        self._published.move_to_end(key)

    def unpublish(self, key: bytes) -> None:
        self._published.pop(key, None)

    def published(self) -> list[bytes]:
        return list(self._published)

    def due_republish(self, now: float) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` of our records whose republish time has come (0 interval: never)."""
        if self.republish_interval <= 0:
            return []
        return [(k, v) for k, (v, due) in self._published.items() if due <= now]

    def mark_republished(self, key: bytes, now: float) -> None:
        entry = self._published.get(key)
        if entry is not None:
            self._published[key] = (entry[0], now + self.republish_interval)

    def next_republish(self) -> float | None:
        """Earliest republish time of our records, if any."""
        if self.republish_interval <= 0 or not self._published:
            return None
        return min(due for _, due in self._published.values())


# ------------------------------------------------------------------ providers
class ProviderStore:
    """``key -> {provider: expiry}``, bounded in keys and in providers per key.

    A full key keeps its current providers (refreshing one only moves its
    expiry) and refuses newcomers until some expire: flooding a key with fake
    providers cannot push the real ones out. Keys we provide ourselves are
    tracked for reproviding, like :class:`RecordStore` publications.
    """

    def __init__(
        self,
        *,
        max_keys: int,
        max_providers_per_key: int,
        ttl: float,
        reprovide_interval: float,
    ) -> None:
        self.max_keys = max_keys
        self.max_providers_per_key = max_providers_per_key
        self.ttl = ttl
        self.reprovide_interval = reprovide_interval
        self._providers: dict[bytes, dict[PeerId, float]] = {}
        self._providing: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._providers)

    def add(self, key: bytes, provider: PeerId, now: float) -> bool:
        """Record ``provider`` for ``key``; False if a limit refused it."""
        entries = self._providers.get(key)
        if entries is None:
            if len(self._providers) >= self.max_keys:
                self.expire(now)
                if len(self._providers) >= self.max_keys:
                    return False
            entries = self._providers[key] = {}
        if provider not in entries and len(entries) >= self.max_providers_per_key:
            self._expire_key(key, entries, now)
            if len(entries) >= self.max_providers_per_key:
                return False
        entries[provider] = now + self.ttl
        return True

    def get(self, key: bytes, now: float) -> list[PeerId]:
        """Live providers of ``key``, oldest registration first."""
        entries = self._providers.get(key)
        if not entries:
            return []
        self._expire_key(key, entries, now)
        return list(entries)

    def _expire_key(self, key: bytes, entries: dict[PeerId, float], now: float) -> None:
        dead = [peer for peer, expires in entries.items() if expires <= now]
        for peer in dead:
            del entries[peer]
        if not entries:
            self._providers.pop(key, None)

    def expire(self, now: float) -> int:
        """Drop expired provider records; returns how many."""
        count = 0
        for key, entries in list(self._providers.items()):
            before = len(entries)
            self._expire_key(key, entries, now)
            count += before - len(entries)
        return count

    # ------------------------------------------------------- our own provides
    def start_providing(self, key: bytes, now: float) -> None:
        if key not in self._providing and len(self._providing) >= self.max_keys:
            raise LimitExceeded(
                f"providing too many keys (max_provider_keys={self.max_keys})",
                limit_name="max_provider_keys",
                limit=self.max_keys,
                value=len(self._providing) + 1,
            )
        self._providing[key] = now + self.reprovide_interval

    def stop_providing(self, key: bytes) -> None:
        self._providing.pop(key, None)

    def providing(self) -> list[bytes]:
        return list(self._providing)

    def due_reprovide(self, now: float) -> list[bytes]:
        if self.reprovide_interval <= 0:
            return []
        return [key for key, due in self._providing.items() if due <= now]

    def mark_reprovided(self, key: bytes, now: float) -> None:
        if key in self._providing:
            self._providing[key] = now + self.reprovide_interval
