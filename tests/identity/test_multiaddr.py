"""Multiaddr: text/binary codecs, validation, and the combinators."""

from __future__ import annotations

import ipaddress
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerwire.errors import UsageError
from peerwire.identity.keys import Ed25519PrivateKey
from peerwire.identity.multiaddr import (
    MAX_MULTIADDR_BYTES,
    PROTOCOL_CODES,
    InvalidMultiaddr,
    Multiaddr,
)
from peerwire.identity.multibase import multibase_encode
from peerwire.identity.peer_id import PeerId
from peerwire.varint import encode_uvarint

PIDS = [
    PeerId.from_public_key(Ed25519PrivateKey.from_seed(bytes([i]) * 32).public_key())
    for i in range(1, 5)
]
PID = PIDS[0]
PID_HEX = PID.to_bytes().hex()


@pytest.mark.parametrize(
    ("text", "hex_bytes"),
    [
        ("/ip4/127.0.0.1/tcp/4001", "047f000001060fa1"),
        ("/ip4/127.0.0.1/udp/1234/quic-v1", "047f000001910204d2cd03"),
        ("/ip4/127.0.0.1/udp/1234/quic", "047f000001910204d2cc03"),
        ("/ip6/::1/tcp/0", "29" + "00" * 15 + "01" + "060000"),
        ("/dns4/example.com/tcp/443/wss", "360b" + b"example.com".hex() + "0601bbde03"),
        ("/dns/localhost/tcp/80/ws", "3509" + b"localhost".hex() + "060050dd03"),
        ("/dns6/h/tcp/1/tls/ws", "370168" + "060001" + "c003" + "dd03"),
        ("/memory/node-1", "8906" + "06" + b"node-1".hex()),
        ("/p2p-circuit", "a202"),
        ("/", ""),
    ],
)
def test_known_encodings(text: str, hex_bytes: str) -> None:
    addr = Multiaddr(text)
    assert addr.to_bytes().hex() == hex_bytes
    assert str(addr) == text
    assert Multiaddr(bytes.fromhex(hex_bytes)) == addr
    assert str(Multiaddr(bytes.fromhex(hex_bytes))) == text


def test_protocol_codes_match_registry() -> None:
    """Codes from multiformats/multiaddr protocols.csv."""
    expected = {
        "ip4": 4,
        "tcp": 6,
        "udp": 273,
        "dns": 53,
        "dns4": 54,
        "dns6": 55,
        "ip6": 41,
        "p2p": 421,
        "quic-v1": 0x01CD,
        "quic": 0x01CC,
        "ws": 477,
        "wss": 478,
        "tls": 448,
        "p2p-circuit": 290,
        "memory": 0x0309,
    }
    for name, code in expected.items():
        assert PROTOCOL_CODES[name] == code


def test_p2p_component() -> None:
    addr = Multiaddr(f"/ip4/1.2.3.4/tcp/1/p2p/{PID}")
    assert addr.to_bytes().hex() == "040102030406" + "0001" + "a503" + "26" + PID_HEX
    assert addr.peer_id == PID
    assert addr.value_for("p2p") == str(PID)
    assert addr.value_for("ipfs") == str(PID)
    # Legacy /ipfs/ and CID text are accepted; output is always /p2p/<base58>.
    assert Multiaddr(f"/ip4/1.2.3.4/tcp/1/ipfs/{PID}") == addr
    legacy_cid = Multiaddr(f"/ip4/1.2.3.4/tcp/1/p2p/{PID.to_cid()}")
    assert legacy_cid == addr
    assert str(legacy_cid) == str(addr)


def test_accessors() -> None:
    addr = Multiaddr("/ip4/10.0.0.1/tcp/4001/ws/p2p-circuit/memory/x")
    assert addr.components == (
        ("ip4", "10.0.0.1"),
        ("tcp", "4001"),
        ("ws", None),
        ("p2p-circuit", None),
        ("memory", "x"),
    )
    assert addr.protocols() == ["ip4", "tcp", "ws", "p2p-circuit", "memory"]
    assert addr.value_for("tcp") == "4001"
    assert addr.value_for("udp") is None
    assert addr.value_for("ws") is None
    assert addr.peer_id is None
    assert repr(addr) == "Multiaddr('/ip4/10.0.0.1/tcp/4001/ws/p2p-circuit/memory/x')"
    assert bytes(addr) == addr.to_bytes()


def test_canonical_text() -> None:
    assert str(Multiaddr("/ip6/0:0:0:0:0:0:0:1/tcp/1")) == "/ip6/::1/tcp/1"
    assert str(Multiaddr("/ip6/2001:DB8::1/tcp/1")) == "/ip6/2001:db8::1/tcp/1"
    assert str(Multiaddr("/ip4/1.2.3.4/tcp/80/")) == "/ip4/1.2.3.4/tcp/80"  # trailing '/'


def test_peer_id_combinators() -> None:
    base = Multiaddr("/ip4/127.0.0.1/tcp/4001")
    with_a = base.with_peer_id(PIDS[0])
    assert str(with_a) == f"/ip4/127.0.0.1/tcp/4001/p2p/{PIDS[0]}"
    assert with_a.peer_id == PIDS[0]
    with_b = with_a.with_peer_id(PIDS[1])  # replaces, does not stack
    assert str(with_b) == f"/ip4/127.0.0.1/tcp/4001/p2p/{PIDS[1]}"
    assert with_b.without_peer_id() == base
    assert base.without_peer_id() == base
    # Only a *trailing* /p2p counts: a relay address names the relay, not the target.
    relay = Multiaddr(f"/ip4/1.1.1.1/tcp/1/p2p/{PIDS[2]}/p2p-circuit")
    assert relay.peer_id is None
    assert relay.without_peer_id() == relay
    assert relay.with_peer_id(PIDS[3]).peer_id == PIDS[3]


def test_encapsulate_and_decapsulate() -> None:
    a = Multiaddr("/ip4/127.0.0.1")
    b = a.encapsulate("/tcp/1").encapsulate(Multiaddr("/ws"))
    assert str(b) == "/ip4/127.0.0.1/tcp/1/ws"
    assert a / "/tcp/1" / "/ws" == b
    assert b.decapsulate("tcp") == a
    assert b.decapsulate("ws") == Multiaddr("/ip4/127.0.0.1/tcp/1")
    assert b.decapsulate("ip4") == Multiaddr("/")
    assert b.decapsulate("udp") == b
    assert b.decapsulate("/tcp/1") == a
    assert b.decapsulate(Multiaddr("/tcp/1/ws")) == a
    assert b.decapsulate("/tcp/2") == b
    circuit = Multiaddr(f"/ip4/1.1.1.1/tcp/1/p2p/{PIDS[0]}/p2p-circuit/p2p/{PIDS[1]}")
    # The *last* occurrence is cut.
    assert circuit.decapsulate("p2p") == Multiaddr(f"/ip4/1.1.1.1/tcp/1/p2p/{PIDS[0]}/p2p-circuit")
    assert circuit.decapsulate("ipfs") == circuit.decapsulate("p2p")
    with pytest.raises(InvalidMultiaddr):
        b.decapsulate("nope")


def test_from_components() -> None:
    addr = Multiaddr.from_components([("ip4", "127.0.0.1"), ("tcp", "80"), ("ws", None)])
    assert addr == Multiaddr("/ip4/127.0.0.1/tcp/80/ws")
    assert Multiaddr.from_components(addr.components) == addr
    assert Multiaddr.from_components([("ipfs", PID.to_cid())]).components == (("p2p", str(PID)),)
    for bad in (
        [("ip4", None)],
        [("ws", "x")],
        [("nope", "1")],
        [("tcp", "99999")],
        [("memory", "a/b")],
        [("tcp", 80)],
        ["ip4"],
        [("ip4", "1.2.3.4", "x")],
    ):
        with pytest.raises(InvalidMultiaddr):
            Multiaddr.from_components(bad)  # type: ignore[arg-type]


def test_equality_hash_immutability() -> None:
    a = Multiaddr("/ip4/127.0.0.1/tcp/1")
    b = Multiaddr(a.to_bytes())
    assert a == b
    assert hash(a) == hash(b)
    assert Multiaddr(a) == a
    assert a != Multiaddr("/ip4/127.0.0.1/tcp/2")
    assert a != "/ip4/127.0.0.1/tcp/1"
    assert len({a, b}) == 1
    with pytest.raises(AttributeError):
        a._bytes = b""
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(TypeError):
        Multiaddr(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ip4/1.2.3.4",
        "//",
        "/ip4",
        "/ip4/",
        "/ip4/1.2.3",
        "/ip4/1.2.3.4.5",
        "/ip4/256.1.1.1",
        "/ip4/01.2.3.4",
        "/ip4/1.2.3.4 ",
        "/ip4/::1",
        "/ip6/1.2.3.4",
        "/ip6/fe80::1%eth0",
        "/ip6/:::",
        "/tcp/65536",
        "/tcp/-1",
        "/tcp/+1",
        "/tcp/01",
        "/tcp/1x",
        "/tcp/",
        "/tcp/\u0661",  # Arabic-Indic digit one
        "/udp/ 1",
        "/foo/1",
        "/ip4/1.2.3.4/tcp",
        "/ws/1",
        "/memory/",
        "/memory//x",
        "/dns4/",
        "/p2p/Qmfoo",
        "/p2p/bafyfoo",
        "/dns/\udcff",  # lone surrogate: not UTF-8
        "/certhash/zzz",
        "/certhash/" + multibase_encode(b"\x12\x20" + b"\x00" * 31, "base64url"),
        "/dns/" + "a" * (MAX_MULTIADDR_BYTES + 1),
    ],
)
def test_malformed_text(text: str) -> None:
    with pytest.raises(InvalidMultiaddr):
        Multiaddr(text)


@pytest.mark.parametrize(
    "hex_bytes",
    [
        "04",  # ip4 without value
        "047f0000",  # short ip4
        "06",
        "0601",
        "29" + "00" * 15,  # short ip6
        "ff",  # truncated varint
        "8080808080808080808001",  # over-long varint
        "8000",  # non-minimal varint
        "00",  # code 0 is not a protocol
        "047f000001ff7f",  # unknown protocol code
        "047f000001060fa100",  # trailing garbage
        "3505616263",  # dns length says 5, only 3 bytes
        "3500",  # empty dns name
        "35012f",  # '/' inside a name
        "3502c328",  # invalid UTF-8
        "890600",  # empty memory name
        "a50300",  # empty p2p
        "a50304" + "00" * 4,  # p2p not a valid multihash
        "a503" + "23" + "1220" + "00" * 33,  # sha2-256 digest of 33 bytes
    ],
)
def test_malformed_binary(hex_bytes: str) -> None:
    with pytest.raises(InvalidMultiaddr):
        Multiaddr(bytes.fromhex(hex_bytes))


def test_invalid_multiaddr_is_usage_error() -> None:
    assert issubclass(InvalidMultiaddr, UsageError)


def test_size_limit() -> None:
    long_name = "a" * (MAX_MULTIADDR_BYTES - 10)
    Multiaddr("/dns/" + long_name)
    with pytest.raises(InvalidMultiaddr):
        Multiaddr("/dns/" + long_name).encapsulate("/dns/" + long_name)
    with pytest.raises(InvalidMultiaddr):
        Multiaddr(b"\xa2\x02" * (MAX_MULTIADDR_BYTES // 2 + 1))


def test_every_truncation_is_rejected_or_a_component_prefix() -> None:
    """Cut a binary address at every byte: each piece is an error or a whole-component prefix."""
    addr = Multiaddr(f"/dns4/example.com/tcp/443/wss/p2p/{PID}")
    data = addr.to_bytes()
    boundaries = {0}
    for i in range(1, len(addr.components) + 1):
        boundaries.add(len(Multiaddr.from_components(addr.components[:i]).to_bytes()))
    for cut in range(len(data) + 1):
        if cut in boundaries:
            assert (
                Multiaddr(data[:cut]).components
                == addr.components[: len(Multiaddr(data[:cut]).components)]
            )
        else:
            with pytest.raises(InvalidMultiaddr):
                Multiaddr(data[:cut])


# ------------------------------------------------------------ properties

_ports = st.integers(min_value=0, max_value=65535).map(str)
_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/"),
    min_size=1,
    max_size=20,
)
_certhash = st.binary(max_size=40).map(
    lambda d: multibase_encode(b"\x12" + encode_uvarint(len(d)) + d, "base64url")
)
_component = st.one_of(
    st.tuples(st.just("ip4"), st.ip_addresses(v=4).map(str)),
    st.tuples(
        st.just("ip6"), st.ip_addresses(v=6).map(lambda a: ipaddress.IPv6Address(a).compressed)
    ),
    st.tuples(st.sampled_from(["tcp", "udp"]), _ports),
    st.tuples(st.sampled_from(["dns", "dns4", "dns6", "dnsaddr", "memory", "sni"]), _names),
    st.tuples(st.just("p2p"), st.sampled_from([str(p) for p in PIDS])),
    st.tuples(st.just("certhash"), _certhash),
    st.tuples(
        st.sampled_from(
            ["quic", "quic-v1", "ws", "wss", "tls", "p2p-circuit", "webtransport", "noise"]
        ),
        st.none(),
    ),
)


@given(st.lists(_component, max_size=8))
def test_roundtrip_property(components: list[tuple[str, str | None]]) -> None:
    addr = Multiaddr.from_components(components)
    assert addr.components == tuple(components)
    text = str(addr)
    from_text = Multiaddr(text)
    from_bytes = Multiaddr(addr.to_bytes())
    assert from_text == addr
    assert from_bytes == addr
    assert str(from_text) == text
    assert str(from_bytes) == text
    assert from_bytes.components == addr.components


@given(st.binary(max_size=120))
def test_fuzz_binary(data: bytes) -> None:
    try:
        addr = Multiaddr(data)
    except InvalidMultiaddr:
        return
    assert addr.to_bytes() == data
    assert Multiaddr(str(addr)) == addr


@given(st.lists(_component, min_size=1, max_size=4), st.data())
def test_fuzz_mutated_binary(components: list[tuple[str, str | None]], data: st.DataObject) -> None:
    raw = bytearray(Multiaddr.from_components(components).to_bytes())
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        addr = Multiaddr(bytes(raw))
    except InvalidMultiaddr:
        return
    assert Multiaddr(str(addr)) == addr


@given(st.text(max_size=60))
def test_fuzz_text(text: str) -> None:
    try:
        addr = Multiaddr(text)
    except InvalidMultiaddr:
        return
    assert Multiaddr(addr.to_bytes()) == addr
    assert Multiaddr(str(addr)) == addr


@given(st.lists(st.sampled_from(["/", "ip4", "1.2.3.4", "tcp", "80", "p2p", str(PID), "ws"])))
def test_fuzz_text_tokens(tokens: list[str]) -> None:
    text = "".join(tokens)
    try:
        addr = Multiaddr(text)
    except InvalidMultiaddr:
        return
    assert Multiaddr(str(addr)) == addr
