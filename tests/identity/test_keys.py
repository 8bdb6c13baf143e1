"""Keys: libp2p protobuf encoding, spec test vectors, signing rules per key type."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerwire._proto import keys_pb2
from peerwire.errors import InvalidKeyError, UsageError
from peerwire.identity.keys import (
    MAX_PUBLIC_KEY_PROTOBUF_SIZE,
    EcdsaPrivateKey,
    EcdsaPublicKey,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyType,
    PrivateKey,
    PublicKey,
    RsaPrivateKey,
    RsaPublicKey,
    Secp256k1PrivateKey,
    Secp256k1PublicKey,
    encode_key_protobuf,
    private_key_from_protobuf,
    public_key_from_protobuf,
)

from ._identity_vectors import SPEC_KEY_VECTORS

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

EXPECTED_CLASSES: dict[str, tuple[type[PrivateKey], type[PublicKey]]] = {
    "ed25519": (Ed25519PrivateKey, Ed25519PublicKey),
    "secp256k1": (Secp256k1PrivateKey, Secp256k1PublicKey),
    "ecdsa": (EcdsaPrivateKey, EcdsaPublicKey),
    "rsa": (RsaPrivateKey, RsaPublicKey),
}


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# ------------------------------------------------------------ spec vectors


@pytest.mark.parametrize("name", sorted(SPEC_KEY_VECTORS))
def test_spec_vector_private_key_gives_public_key(name: str) -> None:
    """peer-ids spec "Test vectors": the private key must yield the listed public key."""
    priv_hex, pub_hex = SPEC_KEY_VECTORS[name]
    priv = private_key_from_protobuf(bytes.fromhex(priv_hex))
    pub = public_key_from_protobuf(bytes.fromhex(pub_hex))
    priv_cls, pub_cls = EXPECTED_CLASSES[name]
    assert isinstance(priv, priv_cls)
    assert isinstance(pub, pub_cls)
    assert priv.public_key() == pub
    assert pub.to_protobuf() == bytes.fromhex(pub_hex)
    # Private keys re-encode exactly as go-libp2p wrote them.
    assert priv.to_protobuf() == bytes.fromhex(priv_hex)


@pytest.mark.parametrize("name", sorted(SPEC_KEY_VECTORS))
def test_spec_vector_sign_verify(name: str) -> None:
    priv_hex, pub_hex = SPEC_KEY_VECTORS[name]
    priv = private_key_from_protobuf(bytes.fromhex(priv_hex))
    pub = public_key_from_protobuf(bytes.fromhex(pub_hex))
    sig = priv.sign(b"libp2p")
    assert pub.verify(b"libp2p", sig)
    assert not pub.verify(b"libp2q", sig)
    tampered = bytearray(sig)
    tampered[len(sig) // 2] ^= 0x01
    assert not pub.verify(b"libp2p", bytes(tampered))
    assert not pub.verify(b"libp2p", b"")
    assert not pub.verify(b"libp2p", sig + b"\x00")


def test_key_type_values_match_protobuf_enum() -> None:
    assert int(KeyType.RSA) == int(keys_pb2.RSA) == 0
    assert int(KeyType.ED25519) == int(keys_pb2.Ed25519) == 1
    assert int(KeyType.SECP256K1) == int(keys_pb2.Secp256k1) == 2
    assert int(KeyType.ECDSA) == int(keys_pb2.ECDSA) == 3


@given(key_type=st.sampled_from(list(KeyType)), data=st.binary(max_size=600))
def test_hand_encoding_matches_protobuf_serializer(key_type: KeyType, data: bytes) -> None:
    """The deterministic encoding is what protobuf's own serializer emits (type, then data)."""
    ours = encode_key_protobuf(key_type, data)
    name = keys_pb2.KeyType.Name(int(key_type))
    assert ours == keys_pb2.PublicKey(Type=name, Data=data).SerializeToString()
    assert ours == keys_pb2.PrivateKey(Type=name, Data=data).SerializeToString()


# ------------------------------------------------------------ Ed25519


def test_ed25519_sign_verify_roundtrip() -> None:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    for msg in (b"", b"x", b"y" * 10_000):
        sig = key.sign(msg)
        assert len(sig) == 64
        assert pub.verify(msg, sig)
    sig = key.sign(b"msg")
    for i in range(0, 64, 7):
        bad = bytearray(sig)
        bad[i] ^= 0x80
        assert not pub.verify(b"msg", bytes(bad))
    assert not Ed25519PrivateKey.generate().public_key().verify(b"msg", sig)


def test_ed25519_private_encoding_is_seed_then_public() -> None:
    key = Ed25519PrivateKey.from_seed(b"\x07" * 32)
    raw = key.to_bytes()
    assert raw == b"\x07" * 32 + key.public_key().to_bytes()
    assert key.seed() == b"\x07" * 32
    again = private_key_from_protobuf(key.to_protobuf())
    assert isinstance(again, Ed25519PrivateKey)
    assert again.to_bytes() == raw


def test_ed25519_legacy_96_byte_private_key() -> None:
    key = Ed25519PrivateKey.from_seed(b"\x07" * 32)
    pub = key.public_key().to_bytes()
    legacy = encode_key_protobuf(KeyType.ED25519, key.to_bytes() + pub)
    assert private_key_from_protobuf(legacy).public_key() == key.public_key()
    other = Ed25519PrivateKey.from_seed(b"\x08" * 32).public_key().to_bytes()
    with pytest.raises(InvalidKeyError):
        private_key_from_protobuf(encode_key_protobuf(KeyType.ED25519, key.to_bytes() + other))


def test_ed25519_private_key_with_wrong_public_half_is_rejected() -> None:
    seed = b"\x07" * 32
    wrong = Ed25519PrivateKey.from_seed(b"\x08" * 32).public_key().to_bytes()
    with pytest.raises(InvalidKeyError, match="public half"):
        private_key_from_protobuf(encode_key_protobuf(KeyType.ED25519, seed + wrong))
    with pytest.raises(InvalidKeyError):
        private_key_from_protobuf(encode_key_protobuf(KeyType.ED25519, seed))


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, b"\x00" * 33, "a" * 32])
def test_ed25519_from_seed_rejects_bad_length(seed: bytes) -> None:
    with pytest.raises(UsageError):
        Ed25519PrivateKey.from_seed(seed)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_ed25519_public_key_wrong_length(length: int) -> None:
    with pytest.raises(InvalidKeyError):
        public_key_from_protobuf(encode_key_protobuf(KeyType.ED25519, b"\x01" * length))


# ------------------------------------------------------------ secp256k1


def test_secp256k1_roundtrip_and_low_s() -> None:
    key = Secp256k1PrivateKey.generate()
    pub = key.public_key()
    assert len(pub.to_bytes()) == 33
    assert pub.to_bytes()[0] in (2, 3)
    for i in range(20):
        msg = b"m%d" % i
        sig = key.sign(msg)
        _, s = decode_dss_signature(sig)
        assert s <= SECP256K1_N // 2
        assert pub.verify(msg, sig)
        assert not pub.verify(msg + b"!", sig)
    again = private_key_from_protobuf(key.to_protobuf())
    assert again.public_key() == pub


def test_secp256k1_high_s_signature_is_rejected() -> None:
    """BIP-62: (r, n - s) is the malleated twin of (r, s); only the low-S one verifies."""
    raw = ec.generate_private_key(ec.SECP256K1())
    pub = public_key_from_protobuf(
        encode_key_protobuf(
            KeyType.SECP256K1,
            raw.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            ),
        )
    )
    r, s = decode_dss_signature(raw.sign(b"data", ec.ECDSA(hashes.SHA256())))
    low = min(s, SECP256K1_N - s)
    high = SECP256K1_N - low
    assert pub.verify(b"data", encode_dss_signature(r, low))
    assert not pub.verify(b"data", encode_dss_signature(r, high))


def test_secp256k1_rejects_non_der_and_out_of_range_signatures() -> None:
    key = Secp256k1PrivateKey.generate()
    sig = key.sign(b"data")
    r, s = decode_dss_signature(sig)
    pub = key.public_key()
    assert not pub.verify(b"data", sig[:-1])
    assert not pub.verify(b"data", b"\x30\x00")
    assert not pub.verify(b"data", r.to_bytes(32, "big") + s.to_bytes(32, "big"))  # raw, not DER
    assert not pub.verify(b"data", encode_dss_signature(r + SECP256K1_N, s))
    # BER long-form length instead of DER: same (r, s), not canonical.
    body = sig[2:]
    assert not pub.verify(b"data", b"\x30\x81" + bytes([len(body)]) + body)


def test_secp256k1_key_encodings() -> None:
    uncompressed = (
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    with pytest.raises(InvalidKeyError):
        public_key_from_protobuf(encode_key_protobuf(KeyType.SECP256K1, uncompressed))
    with pytest.raises(InvalidKeyError):  # x = 5 is not on the curve with either parity
        public_key_from_protobuf(
            encode_key_protobuf(KeyType.SECP256K1, b"\x02" + (5).to_bytes(32, "big"))
        )
    for scalar in (0, SECP256K1_N, SECP256K1_N + 1):
        with pytest.raises(InvalidKeyError):
            private_key_from_protobuf(
                encode_key_protobuf(KeyType.SECP256K1, scalar.to_bytes(33, "big")[-32:])
            )
    with pytest.raises(InvalidKeyError):
        private_key_from_protobuf(encode_key_protobuf(KeyType.SECP256K1, b"\x01" * 31))


# ------------------------------------------------------------ ECDSA


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_ecdsa_verify_with_foreign_key(curve: ec.EllipticCurve) -> None:
    """A key made outside peerwire, wrapped by hand in the libp2p protobuf, verifies."""
    raw = ec.generate_private_key(curve)
    pub = public_key_from_protobuf(encode_key_protobuf(KeyType.ECDSA, _spki(raw.public_key())))
    assert isinstance(pub, EcdsaPublicKey)
    sig = raw.sign(b"hello", ec.ECDSA(hashes.SHA256()))
    assert pub.verify(b"hello", sig)
    assert not pub.verify(b"hellp", sig)
    r, s = decode_dss_signature(sig)
    assert not pub.verify(b"hello", encode_dss_signature(r, s ^ 1))
    assert not pub.verify(b"hello", sig[:-2])


def test_ecdsa_private_roundtrip() -> None:
    key = EcdsaPrivateKey.generate()
    again = private_key_from_protobuf(key.to_protobuf())
    assert again.public_key() == key.public_key()
    assert key.public_key().verify(b"x", again.sign(b"x"))


def test_ecdsa_rejects_other_curves_and_key_kinds(rsa2048: rsa.RSAPrivateKey) -> None:
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises(InvalidKeyError):
        public_key_from_protobuf(encode_key_protobuf(KeyType.ECDSA, _spki(k1)))
    with pytest.raises(InvalidKeyError):
        public_key_from_protobuf(encode_key_protobuf(KeyType.ECDSA, _spki(rsa2048.public_key())))
    der = _spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(InvalidKeyError):  # trailing bytes after the DER
        public_key_from_protobuf(encode_key_protobuf(KeyType.ECDSA, der + b"\x00"))


# ------------------------------------------------------------ RSA


def test_rsa_2048_verify_with_foreign_key(rsa2048: rsa.RSAPrivateKey) -> None:
    pub = public_key_from_protobuf(encode_key_protobuf(KeyType.RSA, _spki(rsa2048.public_key())))
    assert isinstance(pub, RsaPublicKey)
    sig = rsa2048.sign(b"hello", padding.PKCS1v15(), hashes.SHA256())
    assert pub.verify(b"hello", sig)
    assert not pub.verify(b"hellp", sig)
    assert not pub.verify(b"hello", sig[:-1])
    bad = bytearray(sig)
    bad[0] ^= 0x40
    assert not pub.verify(b"hello", bytes(bad))
    # PSS or SHA-1 signatures are not the libp2p scheme.
    sha1 = rsa2048.sign(b"hello", padding.PKCS1v15(), hashes.SHA1())
    assert not pub.verify(b"hello", sha1)


def test_rsa_private_roundtrip(rsa2048: rsa.RSAPrivateKey) -> None:
    pkcs1 = rsa2048.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    key = private_key_from_protobuf(encode_key_protobuf(KeyType.RSA, pkcs1))
    assert isinstance(key, RsaPrivateKey)
    assert key.to_bytes() == pkcs1
    assert key.public_key().verify(b"m", key.sign(b"m"))


def test_rsa_key_size_policy() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidKeyError, match="1024 bits"):
        public_key_from_protobuf(encode_key_protobuf(KeyType.RSA, _spki(small.public_key())))
    with pytest.raises(UsageError):
        RsaPrivateKey.generate(bits=1024)
    # An over-large modulus is refused before any expensive use of it.
    huge = rsa.RSAPublicNumbers(65537, (1 << 8200) | 1).public_key()
    with pytest.raises(InvalidKeyError, match="8201 bits"):
        public_key_from_protobuf(encode_key_protobuf(KeyType.RSA, _spki(huge)), max_size=4096)


# ------------------------------------------------------------ decoding faults


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x08",
        b"\x08\x01",  # no Data
        b"\x12\x00",  # no Type
        b"\x08\x07\x12\x00",  # unknown key type
        b"\x08\x01\x12\x20" + b"\x00" * 31,  # truncated Data
        b"\xff\xff\xff",
        b"\x08\x01\x12\x20",
    ],
)
def test_public_key_from_protobuf_garbage(data: bytes) -> None:
    with pytest.raises(InvalidKeyError):
        public_key_from_protobuf(data)
    with pytest.raises(InvalidKeyError):
        private_key_from_protobuf(data)


def test_public_key_size_limit() -> None:
    with pytest.raises(InvalidKeyError, match="exceeds limit"):
        public_key_from_protobuf(b"\x00" * (MAX_PUBLIC_KEY_PROTOBUF_SIZE + 1))


def test_every_truncation_of_a_valid_key_is_rejected() -> None:
    """Feeding a key protobuf cut at every length: only the whole one decodes."""
    for _name, (priv_hex, pub_hex) in sorted(SPEC_KEY_VECTORS.items()):
        pub = bytes.fromhex(pub_hex)
        for cut in range(len(pub)):
            with pytest.raises(InvalidKeyError):
                public_key_from_protobuf(pub[:cut])
        priv = bytes.fromhex(priv_hex)
        for cut in range(0, len(priv), max(1, len(priv) // 50)):
            with pytest.raises(InvalidKeyError):
                private_key_from_protobuf(priv[:cut])


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_public_key_from_protobuf(data: bytes) -> None:
    try:
        key = public_key_from_protobuf(data)
    except InvalidKeyError:
        return
    assert public_key_from_protobuf(key.to_protobuf()) == key


@settings(deadline=None)
@given(
    key_type=st.integers(min_value=0, max_value=5),
    data=st.binary(max_size=120),
)
def test_fuzz_structured_key_messages(key_type: int, data: bytes) -> None:
    """Well-formed protobufs with junk Data: only InvalidKeyError or a valid key."""
    message = b"\x08" + bytes([key_type]) + b"\x12" + bytes([len(data)]) + data
    for decode in (public_key_from_protobuf, private_key_from_protobuf):
        try:
            decode(message)
        except InvalidKeyError:
            pass


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_private_key_from_protobuf(data: bytes) -> None:
    try:
        private_key_from_protobuf(data)
    except InvalidKeyError:
        pass


@settings(deadline=None)
@given(data=st.data())
def test_fuzz_mutated_valid_public_keys(data: st.DataObject) -> None:
    """Flip one byte of a valid key protobuf: the result is an error or a (different) key."""
    _, pub_hex = SPEC_KEY_VECTORS[data.draw(st.sampled_from(sorted(SPEC_KEY_VECTORS)))]
    buf = bytearray(bytes.fromhex(pub_hex))
    index = data.draw(st.integers(min_value=0, max_value=len(buf) - 1))
    buf[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        public_key_from_protobuf(bytes(buf))
    except InvalidKeyError:
        pass


def test_verify_never_raises_on_odd_signatures() -> None:
    keys = [
        Ed25519PrivateKey.generate().public_key(),
        Secp256k1PrivateKey.generate().public_key(),
        EcdsaPrivateKey.generate().public_key(),
    ]
    for pub in keys:
        for sig in (b"", b"\x00", b"\x30", b"\xff" * 64, b"\x30\x06\x02\x01\x00\x02\x01\x00"):
            assert pub.verify(b"data", sig) is False


def test_public_key_equality_and_hash() -> None:
    a = Ed25519PrivateKey.from_seed(b"\x01" * 32).public_key()
    b = public_key_from_protobuf(a.to_protobuf())
    c = Ed25519PrivateKey.from_seed(b"\x02" * 32).public_key()
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert "Ed25519PublicKey(" in repr(a)
    assert (b"\x01" * 32).hex() not in repr(Ed25519PrivateKey.from_seed(b"\x01" * 32))


def test_generated_protos_use_spec_field_numbers() -> None:
    """The other generated modules encode with the libp2p field numbers."""
    from peerwire._proto import identify_pb2, noise_pb2, plaintext_pb2

    payload = noise_pb2.NoiseHandshakePayload(
        identity_key=b"k",
        identity_sig=b"s",
        extensions=noise_pb2.NoiseExtensions(
            webtransport_certhashes=[b"h"], stream_muxers=["/yamux/1.0.0"]
        ),
    )
    assert payload.SerializeToString() == (
        b"\x0a\x01k\x12\x01s\x22\x11\x0a\x01h\x12\x0c/yamux/1.0.0"
    )
    ident = identify_pb2.Identify(
        publicKey=b"p",
        listenAddrs=[b"a"],
        protocols=["x"],
        observedAddr=b"o",
        protocolVersion="v",
        agentVersion="g",
        signedPeerRecord=b"r",
    )
    assert ident.SerializeToString() == b"\x0a\x01p\x12\x01a\x1a\x01x\x22\x01o*\x01v2\x01gB\x01r"
    key = Ed25519PrivateKey.from_seed(b"\x11" * 32).public_key()
    exchange = plaintext_pb2.Exchange(id=b"i")
    exchange.pubkey.ParseFromString(key.to_protobuf())
    assert exchange.SerializeToString() == b"\x0a\x01i\x12\x24" + key.to_protobuf()
