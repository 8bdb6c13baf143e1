"""PeerId: derivation from keys, text forms (base58btc and CIDv1), validation."""

from __future__ import annotations

import hashlib
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerwire.errors import InvalidKeyError
from peerwire.identity.keys import (
    EcdsaPrivateKey,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyType,
    Secp256k1PublicKey,
    encode_key_protobuf,
    public_key_from_protobuf,
)
from peerwire.identity.multibase import b58encode, multibase_encode
from peerwire.identity.peer_id import PeerId

from ._identity_vectors import SPEC_KEY_VECTORS

SEED_VECTORS = [
    (b"\x11" * 32, "12D3KooWPqT2nMDSiXUSx5D7fasaxhxKigVhcqfkKqrLghCq9jxz"),
    (b"\x22" * 32, "12D3KooWLdJAwPtyQ5RFnr9wGXsQzpf3P2SeqFbYkqbfVehLu4Ns"),
]

# CIDv1 (libp2p-key, base32) of the 0x11 * 32 seed's PeerId. Derived by hand from
# the base58 vector: 0x01 (CIDv1) 0x72 (libp2p-key) + the multihash bytes.
SEED_11_CID = "bafzaajaiaejcbuckwizhik5uvm5bg2f5iyk6jzwqejflogqbnoxykifdglexpbzx"

# peer-ids spec, "String representation": the same sha256 PeerId in both forms,
# and an Ed25519 (identity multihash) PeerId.
SPEC_QM = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
SPEC_QM_CID = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
SPEC_ED25519 = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def _pid(seed_byte: int) -> PeerId:
    return PeerId.from_public_key(Ed25519PrivateKey.from_seed(bytes([seed_byte]) * 32).public_key())


@pytest.mark.parametrize(("seed", "text"), SEED_VECTORS)
def test_seed_vectors(seed: bytes, text: str) -> None:
    pid = PeerId.from_public_key(Ed25519PrivateKey.from_seed(seed).public_key())
    assert str(pid) == text
    assert repr(pid) == f"PeerId('{text}')"
    assert PeerId.from_string(text) == pid
    assert PeerId.from_bytes(pid.to_bytes()) == pid
    assert pid.to_bytes()[:2] == b"\x00\x24"  # identity multihash of a 36-byte protobuf


def test_cid_vector_parses_to_same_peer_id() -> None:
    pid = PeerId.from_string(SEED_VECTORS[0][1])
    assert pid.to_cid() == SEED_11_CID
    cid_bytes = b"\x01\x72" + pid.to_bytes()
    assert SEED_11_CID == multibase_encode(cid_bytes, "base32")
    assert PeerId.from_string(SEED_11_CID) == pid
    # Any supported multibase spelling of the same CID names the same peer.
    for base in ("base58btc", "base16", "base36", "base64url"):
        assert PeerId.from_string(multibase_encode(cid_bytes, base)) == pid
    assert PeerId.from_string("B" + SEED_11_CID[1:].upper()) == pid


def test_spec_string_examples() -> None:
    qm = PeerId.from_string(SPEC_QM)
    assert PeerId.from_string(SPEC_QM_CID) == qm
    assert qm.to_cid() == SPEC_QM_CID
    assert str(qm) == SPEC_QM
    assert qm.extract_public_key() is None
    ed = PeerId.from_string(SPEC_ED25519)
    key = ed.extract_public_key()
    assert isinstance(key, Ed25519PublicKey)
    assert PeerId.from_public_key(key) == ed
    assert ed.matches_public_key(key)


def test_spec_key_vectors_peer_ids() -> None:
    """Small keys are inlined (identity), large ones hashed (sha2-256)."""
    ed = public_key_from_protobuf(bytes.fromhex(SPEC_KEY_VECTORS["ed25519"][1]))
    assert str(PeerId.from_public_key(ed)).startswith("12D3KooW")

    k1 = public_key_from_protobuf(bytes.fromhex(SPEC_KEY_VECTORS["secp256k1"][1]))
    k1_pid = PeerId.from_public_key(k1)
    assert str(k1_pid).startswith("16Uiu2")  # the well-known secp256k1 PeerId prefix
    assert isinstance(k1_pid.extract_public_key(), Secp256k1PublicKey)
    assert k1_pid.extract_public_key() == k1

    for name in ("ecdsa", "rsa"):
        pub_pb = bytes.fromhex(SPEC_KEY_VECTORS[name][1])
        pid = PeerId.from_public_key(public_key_from_protobuf(pub_pb))
        assert pid.to_bytes() == b"\x12\x20" + hashlib.sha256(pub_pb).digest()
        assert str(pid).startswith("Qm")
        assert pid.extract_public_key() is None
        assert pid.matches_public_key(public_key_from_protobuf(pub_pb))
        assert PeerId.from_string(str(pid)) == pid
        assert PeerId.from_string(pid.to_cid()) == pid


def test_matches_public_key() -> None:
    a = Ed25519PrivateKey.from_seed(b"\x11" * 32).public_key()
    b = Ed25519PrivateKey.from_seed(b"\x22" * 32).public_key()
    pid = PeerId.from_public_key(a)
    assert pid.matches_public_key(a)
    assert not pid.matches_public_key(b)
    ecdsa = EcdsaPrivateKey.generate().public_key()
    assert PeerId.from_public_key(ecdsa).matches_public_key(ecdsa)
    assert not PeerId.from_public_key(ecdsa).matches_public_key(a)


def test_equality_hash_order_and_immutability() -> None:
    a, b, a2 = _pid(1), _pid(2), _pid(1)
    assert a == a2
    assert a != b
    assert hash(a) == hash(a2)
    assert len({a, b, a2}) == 2
    assert sorted([b, a]) == sorted([a, b])
    assert (a < b) == (a.to_bytes() < b.to_bytes())
    assert a <= a2
    assert a >= a2
    assert a != str(a)
    with pytest.raises(AttributeError):
        a._bytes = b""
    with pytest.raises(AttributeError):
        a.foo = 1
    assert pickle.loads(pickle.dumps(a)) == a
    assert bytes(a) == a.to_bytes()


def _identity_mh(payload: bytes) -> bytes:
    return b"\x00" + bytes([len(payload)]) + payload


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x12",
        b"\x12\x20" + b"\x00" * 31,  # short digest
        b"\x12\x20" + b"\x00" * 33,  # trailing byte
        b"\x12\x10" + b"\x00" * 16,  # sha2-256 digest must be 32 bytes
        b"\x13\x40" + b"\x00" * 64,  # sha2-512: not a PeerId hash
        b"\x80\x00\x00",  # non-minimal varint
        _identity_mh(b"\x08\x01\x12\x03abc"),  # identity multihash of a junk key
        _identity_mh(b"junk"),
        b"\x00\x2b" + encode_key_protobuf(KeyType.ED25519, b"\x01" * 39),  # > 42 bytes inline
    ],
)
def test_from_bytes_rejects_junk(data: bytes) -> None:
    with pytest.raises(InvalidKeyError):
        PeerId.from_bytes(data)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Qm",
        "1",
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5O",  # 'O' is not base58
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5",  # truncated
        "12D3KooXD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",  # corrupt key protobuf
        "bafzaajaiaejcbuckwizhik5uvm5bg2f5iyk6jzwqejflogqbnoxykifdglexpbz",  # truncated
        "bafyb" + "a" * 50,  # wrong codec / junk
        multibase_encode(b"\x01\x70" + _pid(1).to_bytes(), "base32"),  # dag-pb, not libp2p-key
        multibase_encode(b"\x02\x72" + _pid(1).to_bytes(), "base32"),  # CID version 2
        "x" + "a" * 40,  # unknown multibase
        "Q" * 300,  # too long
        " 12D3KooWPqT2nMDSiXUSx5D7fasaxhxKigVhcqfkKqrLghCq9jxz",
        "12D3KooWPqT2nMDSiXUSx5D7fasaxhxKigVhcqfkKqrLghCq9jxz\n",
    ],
)
def test_from_string_rejects_junk(text: str) -> None:
    with pytest.raises(InvalidKeyError):
        PeerId.from_string(text)


def test_from_string_rejects_non_str() -> None:
    with pytest.raises(InvalidKeyError):
        PeerId.from_string(b"12D3KooW")  # type: ignore[arg-type]


@given(st.binary(max_size=80))
def test_fuzz_from_bytes(data: bytes) -> None:
    try:
        pid = PeerId.from_bytes(data)
    except InvalidKeyError:
        return
    assert PeerId.from_string(str(pid)) == pid
    assert PeerId.from_string(pid.to_cid()) == pid


@given(st.text(max_size=80))
def test_fuzz_from_string(text: str) -> None:
    try:
        PeerId.from_string(text)
    except InvalidKeyError:
        pass


@given(st.binary(min_size=32, max_size=32))
def test_sha256_peer_ids_roundtrip_through_text(digest: bytes) -> None:
    pid = PeerId.from_bytes(b"\x12\x20" + digest)
    assert str(pid) == b58encode(b"\x12\x20" + digest)
    assert str(pid).startswith("Qm")
    assert PeerId.from_string(str(pid)) == pid
    assert PeerId.from_string(pid.to_cid()) == pid
