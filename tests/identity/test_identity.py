"""Identity: generation, seeds, and the on-disk key file."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from peerwire.errors import UsageError
from peerwire.identity.identity import MAX_KEY_FILE_SIZE, Identity, KeyFileError, _create_key_file
from peerwire.identity.keys import (
    Ed25519PrivateKey,
    KeyType,
    Secp256k1PrivateKey,
    encode_key_protobuf,
    private_key_from_protobuf,
)
from peerwire.identity.peer_id import PeerId

from ._identity_vectors import SPEC_KEY_VECTORS

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_is_ed25519() -> None:
    ident = Identity.generate()
    assert isinstance(ident.private_key, Ed25519PrivateKey)
    assert str(ident.peer_id).startswith("12D3KooW")
    assert ident.peer_id == PeerId.from_public_key(ident.public_key)
    assert ident.public_key.verify(b"hello", ident.sign(b"hello"))
    assert Identity.generate().peer_id != ident.peer_id
    assert repr(ident) == f"Identity(peer_id={ident.peer_id!r})"


@pytest.mark.parametrize(
    ("seed", "text"),
    [
        (b"\x11" * 32, "12D3KooWPqT2nMDSiXUSx5D7fasaxhxKigVhcqfkKqrLghCq9jxz"),
        (b"\x22" * 32, "12D3KooWLdJAwPtyQ5RFnr9wGXsQzpf3P2SeqFbYkqbfVehLu4Ns"),
    ],
)
def test_from_seed_vectors(seed: bytes, text: str) -> None:
    ident = Identity.from_seed(seed)
    assert str(ident.peer_id) == text
    assert Identity.from_seed(seed).sign(b"x") == ident.sign(b"x")  # Ed25519 is deterministic


@pytest.mark.parametrize("seed", [b"", b"\x11" * 31, b"\x11" * 33, "11" * 16, None])
def test_from_seed_rejects_bad_seeds(seed: bytes) -> None:
    with pytest.raises(UsageError):
        Identity.from_seed(seed)


def test_identity_from_other_key_types() -> None:
    ident = Identity(Secp256k1PrivateKey.generate())
    assert str(ident.peer_id).startswith("16Uiu2")
    assert ident.public_key.verify(b"m", ident.sign(b"m"))
    with pytest.raises(UsageError):
        Identity(b"not a key")  # type: ignore[arg-type]


@posix_only
def test_load_or_create_creates_private_file_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = Identity.load_or_create(path)
    assert path.exists()
    assert _mode(path) == 0o600
    data = path.read_bytes()
    assert data == first.private_key.to_protobuf()
    assert private_key_from_protobuf(data).public_key() == first.public_key
    again = Identity.load_or_create(str(path))
    assert again.peer_id == first.peer_id
    assert path.read_bytes() == data  # loading never rewrites the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]  # no temp files left


@posix_only
def test_created_file_mode_never_wider_than_0600(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        Identity.load_or_create(tmp_path / "a.key")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.key") & 0o077 == 0
    old = os.umask(0)
    try:
        Identity.load_or_create(tmp_path / "b.key")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "b.key") == 0o600


def test_loads_go_libp2p_key_file(tmp_path: Path) -> None:
    """A key file as go-libp2p / IPFS write it: the raw PrivateKey protobuf."""
    priv_hex, _ = SPEC_KEY_VECTORS["ed25519"]
    path = tmp_path / "go.key"
    path.write_bytes(bytes.fromhex(priv_hex))
    path.chmod(0o600)
    ident = Identity.load_or_create(path)
    expected = PeerId.from_public_key(
        private_key_from_protobuf(bytes.fromhex(priv_hex)).public_key()
    )
    assert ident.peer_id == expected
    assert ident.private_key.to_protobuf() == bytes.fromhex(priv_hex)


@pytest.mark.parametrize("name", ["secp256k1", "ecdsa", "rsa"])
def test_loads_other_key_types(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.key"
    path.write_bytes(bytes.fromhex(SPEC_KEY_VECTORS[name][0]))
    path.chmod(0o600)
    ident = Identity.load_or_create(path)
    assert ident.public_key.to_protobuf() == bytes.fromhex(SPEC_KEY_VECTORS[name][1])


GOOD_KEY = Ed25519PrivateKey.from_seed(b"\x11" * 32).to_protobuf()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello, this is not a key\n",
        GOOD_KEY[:-1],  # truncated
        GOOD_KEY[:10],
        encode_key_protobuf(KeyType.ED25519, b"\x00" * 63),
        b"\x08\x07\x12\x40" + b"\x00" * 64,  # unsupported key type
        Ed25519PrivateKey.from_seed(b"\x11" * 32).public_key().to_protobuf(),  # a public key
        b"\x00" * (MAX_KEY_FILE_SIZE + 1),
    ],
    ids=["empty", "text", "truncated", "short", "bad-ed25519", "type7", "public", "huge"],
)
def test_corrupt_key_file_raises_key_file_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match=str(path).replace("\\", "\\\\")):
        Identity.load_or_create(path)
    assert path.read_bytes() == content  # a bad file is never replaced


def test_key_file_error_is_a_usage_error() -> None:
    assert issubclass(KeyFileError, UsageError)


@posix_only
def test_group_readable_key_file_warns_but_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "open.key"
    path.write_bytes(GOOD_KEY)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="peerwire.identity.identity"):
        ident = Identity.load_or_create(path)
    assert str(ident.peer_id) == "12D3KooWPqT2nMDSiXUSx5D7fasaxhxKigVhcqfkKqrLghCq9jxz"
    assert any(str(path) in rec.getMessage() for rec in caplog.records)
    assert _mode(path) == 0o644  # permissions are reported, never changed


@posix_only
def test_private_key_file_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ok.key"
    Identity.load_or_create(path)
    with caplog.at_level(logging.WARNING, logger="peerwire.identity.identity"):
        Identity.load_or_create(path)
    assert not caplog.records


def test_missing_directory_and_directory_path(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="missing"):
        Identity.load_or_create(tmp_path / "missing" / "node.key")
    with pytest.raises(KeyFileError):
        Identity.load_or_create(tmp_path)


def test_create_does_not_clobber_existing_file(tmp_path: Path) -> None:
    """The final step is link(), so a file another process created first wins."""
    path = tmp_path / "node.key"
    path.write_bytes(GOOD_KEY)
    other = Ed25519PrivateKey.from_seed(b"\x22" * 32).to_protobuf()
    assert _create_key_file(path, other) is False
    assert path.read_bytes() == GOOD_KEY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]
