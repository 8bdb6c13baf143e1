"""Multiaddr: self-describing network addresses (multiformats/multiaddr).

Text ``/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...`` and binary (a sequence of
``uvarint code`` + value, where variable-length values carry a uvarint length)
are two spellings of one address; equality and hashing use the binary form.

Parsing is strict because binary multiaddrs arrive from the network (identify
listen and observed addresses, DHT records): every value is validated, unknown
protocols and trailing bytes are refused, and every fault raises
:class:`InvalidMultiaddr`, never an IndexError or struct.error. Each address
has exactly one canonical text (IPv6 compressed, ports without leading zeros,
``/p2p/`` values in base58), so text and binary round-trip.

Protocols are the subset of the multiaddr ``protocols.csv`` table peerwire can
dial, listen on or pass through, plus ``/memory/<name>``, the in-process
transport: the code (0x309) is the registry's, but the value is peerwire's own,
a non-empty UTF-8 name without ``/`` (rust-libp2p's memory transport uses a
u64 instead, so memory addresses do not interoperate, which is fine for an
in-process transport).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

from .._cache import remember
from ..errors import InvalidKeyError, ProtocolError, UsageError
from ..varint import decode_uvarint, encode_uvarint
from .multibase import multibase_decode, multibase_encode
from .peer_id import PeerId

__all__ = [
    "MAX_MULTIADDR_BYTES",
    "MAX_MULTIADDR_TEXT_LENGTH",
    "PROTOCOL_CODES",
    "InvalidMultiaddr",
    "Multiaddr",
]

MAX_MULTIADDR_BYTES: Final = 1024
"""Largest binary multiaddr accepted. Real ones are under ~200 bytes (a DNS name
is at most 253); the cap bounds what a peer can make us store per address."""

MAX_MULTIADDR_TEXT_LENGTH: Final = 4096
"""Longest text multiaddr parsed (checked before any work is done)."""


PARSE_CACHE_SIZE: Final = 4096
"""Parsed forms remembered per representation (text, binary). A node parses the
same few addresses again and again (every identify, every DHT answer); parsing
is pure, so a bounded cache of valid inputs is safe."""

_Parsed = tuple[tuple["_Component", ...], tuple[bytes, ...]]
_TEXT_CACHE: dict[str, _Parsed] = {}
_BINARY_CACHE: dict[bytes, _Parsed] = {}


class InvalidMultiaddr(UsageError):
    """A malformed multiaddr, in text or binary.

    Also raised for binary addresses received from the network: code that
    decodes remote input catches it and drops the address.
    """


@dataclass(frozen=True, slots=True)
class _Protocol:
    name: str
    code: int
    size: int  # bytes of a fixed-size value; 0 = no value; -1 = uvarint-length-prefixed
    to_bytes: Callable[[str], bytes]  # text value -> binary (validates)
    to_text: Callable[[bytes], str]  # binary value -> text (validates)


# ------------------------------------------------------------------ value codecs

_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE: Final = re.compile(rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}\Z")
_PORT_RE: Final = re.compile(r"(?:0|[1-9][0-9]{0,4})\Z")
_IPV6_CHARS_RE: Final = re.compile(r"[0-9A-Fa-f:.]+\Z")


def _ip4_bytes(text: str) -> bytes:
    if not _IPV4_RE.match(text):
        raise InvalidMultiaddr(f"invalid IPv4 address {text!r}")
    return ipaddress.IPv4Address(text).packed


def _ip4_text(data: bytes) -> str:
    return str(ipaddress.IPv4Address(data))


def _ip6_bytes(text: str) -> bytes:
    # The character check refuses zone ids ("%eth0"), which ipaddress would accept
    # and silently drop from the packed form.
    if not _IPV6_CHARS_RE.match(text):
        raise InvalidMultiaddr(f"invalid IPv6 address {text!r}")
    try:
        return ipaddress.IPv6Address(text).packed
    except ValueError as exc:
        raise InvalidMultiaddr(f"invalid IPv6 address {text!r}") from exc


def _ip6_text(data: bytes) -> str:
    return ipaddress.IPv6Address(data).compressed


def _port_bytes(text: str) -> bytes:
    if not _PORT_RE.match(text) or int(text) > 0xFFFF:
        raise InvalidMultiaddr(f"invalid port {text!r}")
    return int(text).to_bytes(2, "big")


def _port_text(data: bytes) -> str:
    return str(int.from_bytes(data, "big"))


def _name_bytes(text: str) -> bytes:
    if not text or "/" in text:
        raise InvalidMultiaddr(f"invalid name {text!r}: must be non-empty and without '/'")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidMultiaddr(f"invalid name {text!r}: not encodable as UTF-8") from exc


def _name_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMultiaddr("name is not valid UTF-8") from exc
    _name_bytes(text)
    return text


def _p2p_bytes(text: str) -> bytes:
    try:
        return PeerId.from_string(text).to_bytes()
    except InvalidKeyError as exc:
        raise InvalidMultiaddr(f"invalid peer id {text!r}: {exc}") from exc


def _p2p_text(data: bytes) -> str:
    try:
        return str(PeerId.from_bytes(data))
    except InvalidKeyError as exc:
        raise InvalidMultiaddr(f"invalid peer id in /p2p: {exc}") from exc


def _check_multihash(data: bytes) -> None:
    try:
        code = decode_uvarint(data, 0)
        length = decode_uvarint(data, code[1]) if code is not None else None
    except ProtocolError as exc:
        raise InvalidMultiaddr(f"invalid multihash: {exc}") from exc
    if length is None or len(data) - length[1] != length[0]:
        raise InvalidMultiaddr("invalid multihash")


def _certhash_bytes(text: str) -> bytes:
    try:
        data = multibase_decode(text)
    except ValueError as exc:
        raise InvalidMultiaddr(f"invalid certhash {text!r}: {exc}") from exc
    _check_multihash(data)
    return data


def _certhash_text(data: bytes) -> str:
    _check_multihash(data)
    return multibase_encode(data, "base64url")


def _no_value(value: object) -> NoReturn:
    raise InvalidMultiaddr("this protocol takes no value")


def _flag(name: str, code: int) -> _Protocol:
    return _Protocol(name, code, 0, _no_value, _no_value)


def _named(name: str, code: int) -> _Protocol:
    return _Protocol(name, code, -1, _name_bytes, _name_text)


_P2P: Final = _Protocol("p2p", 421, -1, _p2p_bytes, _p2p_text)

_PROTOCOLS: Final = (
    _Protocol("ip4", 4, 4, _ip4_bytes, _ip4_text),
    _Protocol("tcp", 6, 2, _port_bytes, _port_text),
    _Protocol("udp", 273, 2, _port_bytes, _port_text),
    _Protocol("ip6", 41, 16, _ip6_bytes, _ip6_text),
    _named("ip6zone", 42),
    _named("dns", 53),
    _named("dns4", 54),
    _named("dns6", 55),
    _named("dnsaddr", 56),
    _P2P,
    _flag("tls", 448),
    _named("sni", 449),
    _flag("noise", 454),
    _flag("quic", 460),
    _flag("quic-v1", 461),
    _flag("webtransport", 465),
    _Protocol("certhash", 466, -1, _certhash_bytes, _certhash_text),
    _flag("http", 480),
    _flag("https", 443),
    _flag("ws", 477),
    _flag("wss", 478),
    _flag("webrtc-direct", 280),
    _flag("webrtc", 281),
    _flag("p2p-circuit", 290),
    _named("memory", 0x0309),
)

_BY_NAME: Final = {p.name: p for p in _PROTOCOLS} | {"ipfs": _P2P}  # legacy name, same code
_BY_CODE: Final = {p.code: p for p in _PROTOCOLS}

PROTOCOL_CODES: Final = {p.name: p.code for p in _PROTOCOLS}
"""Multicodec code of every protocol name peerwire understands."""


def _lookup_name(name: str) -> _Protocol:
    proto = _BY_NAME.get(name)
    if proto is None:
        raise InvalidMultiaddr(f"unknown multiaddr protocol {name!r}")
    return proto


def _encode_component(proto: _Protocol, value: str | None) -> tuple[str | None, bytes]:
    """(canonical text value, binary component) for a text value."""
    if proto.size == 0:
        if value is not None:
            raise InvalidMultiaddr(f"/{proto.name} takes no value")
        return None, encode_uvarint(proto.code)
    if not isinstance(value, str):
        raise InvalidMultiaddr(f"/{proto.name} needs a value")
    raw = proto.to_bytes(value)
    canonical = proto.to_text(raw)
    prefix = encode_uvarint(proto.code)
    if proto.size < 0:
        prefix += encode_uvarint(len(raw))
    return canonical, prefix + raw


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    try:
        got = decode_uvarint(data, offset)
    except ProtocolError as exc:
        raise InvalidMultiaddr(f"invalid varint in multiaddr: {exc}") from exc
    if got is None:
        raise InvalidMultiaddr("truncated multiaddr")
    return got


_Component = tuple[str, str | None]


class Multiaddr:
    """An immutable, hashable multiaddr; equal when the binary forms are equal."""

    __slots__ = ("_bytes", "_chunks", "_components")

    _bytes: bytes
    _chunks: tuple[bytes, ...]
    _components: tuple[_Component, ...]

    def __init__(self, addr: str | bytes | bytearray | memoryview | Multiaddr) -> None:
        """Parse text (``str``) or binary (bytes-like) form; copy another Multiaddr."""
        if isinstance(addr, Multiaddr):
            self._init(addr._components, addr._chunks)
        elif isinstance(addr, str):
            parsed = _TEXT_CACHE.get(addr)
            if parsed is None:
                parsed = self._parse_text(addr)
                remember(_TEXT_CACHE, addr, parsed, PARSE_CACHE_SIZE)
            self._init(*parsed)
        elif isinstance(addr, bytes | bytearray | memoryview):
            data = bytes(addr)
            parsed = _BINARY_CACHE.get(data)
            if parsed is None:
                parsed = self._parse_binary(data)
                remember(_BINARY_CACHE, data, parsed, PARSE_CACHE_SIZE)
            self._init(*parsed)
        else:
            raise TypeError(f"Multiaddr() takes str, bytes or Multiaddr, not {type(addr)}")

    def _init(self, components: tuple[_Component, ...], chunks: tuple[bytes, ...]) -> None:
        data = b"".join(chunks)
        if len(data) > MAX_MULTIADDR_BYTES:
            raise InvalidMultiaddr(f"multiaddr of {len(data)} bytes exceeds {MAX_MULTIADDR_BYTES}")
        object.__setattr__(self, "_components", components)
        object.__setattr__(self, "_chunks", chunks)
        object.__setattr__(self, "_bytes", data)

    @classmethod
    def _make(cls, components: tuple[_Component, ...], chunks: tuple[bytes, ...]) -> Multiaddr:
        new = object.__new__(cls)
        new._init(components, chunks)
        return new

    @staticmethod
    def _parse_text(text: str) -> tuple[tuple[_Component, ...], tuple[bytes, ...]]:
        if len(text) > MAX_MULTIADDR_TEXT_LENGTH:
            raise InvalidMultiaddr(f"multiaddr text longer than {MAX_MULTIADDR_TEXT_LENGTH}")
        if not text.startswith("/"):
            raise InvalidMultiaddr(f"multiaddr must start with '/': {text!r}")
        parts = text.split("/")[1:]
        if parts and parts[-1] == "":
            parts.pop()  # one trailing "/" is tolerated, as go-multiaddr does
        pairs: list[_Component] = []
        i = 0
        while i < len(parts):
            proto = _lookup_name(parts[i])
            if proto.size == 0:
                pairs.append((proto.name, None))
                i += 1
            else:
                if i + 1 >= len(parts):
                    raise InvalidMultiaddr(f"/{proto.name} is missing its value in {text!r}")
                pairs.append((proto.name, parts[i + 1]))
                i += 2
        return Multiaddr._encode_pairs(pairs)

    @staticmethod
    def _encode_pairs(
        pairs: Iterable[tuple[str, str | None]],
    ) -> tuple[tuple[_Component, ...], tuple[bytes, ...]]:
        components: list[_Component] = []
        chunks: list[bytes] = []
        for pair in pairs:
            try:
                name, value = pair
            except (TypeError, ValueError) as exc:
                raise InvalidMultiaddr(f"not a (protocol, value) pair: {pair!r}") from exc
            proto = _lookup_name(name)
            canonical, chunk = _encode_component(proto, value)
            components.append((proto.name, canonical))
            chunks.append(chunk)
        return tuple(components), tuple(chunks)

    @staticmethod
    def _parse_binary(data: bytes) -> tuple[tuple[_Component, ...], tuple[bytes, ...]]:
        if len(data) > MAX_MULTIADDR_BYTES:
            raise InvalidMultiaddr(f"multiaddr of {len(data)} bytes exceeds {MAX_MULTIADDR_BYTES}")
        components: list[_Component] = []
        chunks: list[bytes] = []
        offset = 0
        while offset < len(data):
            start = offset
            code, offset = _varint(data, offset)
            proto = _BY_CODE.get(code)
            if proto is None:
                raise InvalidMultiaddr(f"unknown multiaddr protocol code {code}")
            if proto.size == 0:
                components.append((proto.name, None))
                chunks.append(data[start:offset])
                continue
            size = proto.size
            if size < 0:
                size, offset = _varint(data, offset)
            end = offset + size
            if end > len(data):
                raise InvalidMultiaddr(f"truncated /{proto.name} value")
            components.append((proto.name, proto.to_text(data[offset:end])))
            chunks.append(data[start:end])
            offset = end
        return tuple(components), tuple(chunks)

    @classmethod
    def from_components(cls, components: Iterable[tuple[str, str | None]]) -> Multiaddr:
        """Build from ``(protocol, value)`` pairs; ``value`` is None for valueless protocols."""
        return cls._make(*cls._encode_pairs(components))

    # ------------------------------------------------------------- accessors

    @property
    def components(self) -> tuple[tuple[str, str | None], ...]:
        """``(protocol, canonical text value or None)`` pairs, in order."""
        return self._components

    def to_bytes(self) -> bytes:
        return self._bytes

    def __bytes__(self) -> bytes:
        return self._bytes

    def protocols(self) -> list[str]:
        return [name for name, _ in self._components]

    def value_for(self, protocol: str) -> str | None:
        """The value of the first ``protocol`` component (None if absent or valueless)."""
        if protocol == "ipfs":
            protocol = "p2p"
        for name, value in self._components:
            if name == protocol:
                return value
        return None

    @property
    def peer_id(self) -> PeerId | None:
        """The PeerId of a trailing ``/p2p/`` component, if there is one."""
        if self._components and self._components[-1][0] == "p2p":
            return PeerId.from_bytes(self._value_bytes(-1))
        return None

    def _value_bytes(self, index: int) -> bytes:
        """The binary value of component ``index`` (its chunk minus code and length)."""
        chunk = self._chunks[index]
        _, offset = _varint(chunk, 0)
        if _BY_NAME[self._components[index][0]].size < 0:
            _, offset = _varint(chunk, offset)
        return chunk[offset:]

    # ------------------------------------------------------------- combinators

    def with_peer_id(self, peer_id: PeerId) -> Multiaddr:
        """This address ending in ``/p2p/<peer_id>`` (replacing any trailing one)."""
        base = self.without_peer_id()
        value, chunk = _encode_component(_P2P, str(peer_id))
        return Multiaddr._make((*base._components, ("p2p", value)), (*base._chunks, chunk))

    def without_peer_id(self) -> Multiaddr:
        """This address without a trailing ``/p2p/`` component."""
        if self._components and self._components[-1][0] == "p2p":
            return Multiaddr._make(self._components[:-1], self._chunks[:-1])
        return self

    def encapsulate(self, other: Multiaddr | str) -> Multiaddr:
        """This address followed by ``other``."""
        tail = other if isinstance(other, Multiaddr) else Multiaddr(other)
        return Multiaddr._make(self._components + tail._components, self._chunks + tail._chunks)

    def __truediv__(self, other: Multiaddr | str) -> Multiaddr:
        return self.encapsulate(other)

    def decapsulate(self, protocol: str | Multiaddr) -> Multiaddr:
        """Drop the last occurrence of ``protocol`` and everything after it.

        ``protocol`` is a protocol name (``"tcp"``) or, like go-multiaddr, a
        multiaddr (``"/tcp/4001"``) whose last occurrence as a component
        sequence is cut. The address is returned unchanged if there is none.
        """
        if isinstance(protocol, str) and not protocol.startswith("/"):
            name = _lookup_name(protocol).name
            for i in range(len(self._components) - 1, -1, -1):
                if self._components[i][0] == name:
                    return Multiaddr._make(self._components[:i], self._chunks[:i])
            return self
        needle = (
            protocol._chunks if isinstance(protocol, Multiaddr) else Multiaddr(protocol)._chunks
        )
        if not needle:
            return self
        for i in range(len(self._chunks) - len(needle), -1, -1):
            if self._chunks[i : i + len(needle)] == needle:
                return Multiaddr._make(self._components[:i], self._chunks[:i])
        return self

    # ------------------------------------------------------------- dunder

    def __str__(self) -> str:
        if not self._components:
            return "/"
        return "".join(
            f"/{name}" if value is None else f"/{name}/{value}" for name, value in self._components
        )

    def __repr__(self) -> str:
        return f"Multiaddr({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Multiaddr):
            return NotImplemented
        return self._bytes == other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Multiaddr is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Multiaddr is immutable")

    def __reduce__(self) -> tuple[type[Multiaddr], tuple[bytes]]:
        return (Multiaddr, (self._bytes,))
