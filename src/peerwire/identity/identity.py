"""Identity: this node's own key pair and PeerId, and its key file.

The key file holds the raw libp2p ``PrivateKey`` protobuf, the format go-libp2p
and IPFS tools write, so a key can move between peerwire and those tools and
keep its PeerId.

A key file is a secret. It is created atomically and exclusively: the key is
written to a fresh temporary file opened with ``O_CREAT | O_EXCL`` and mode
0600 (so no other user can ever read it, whatever the umask), flushed to disk
with fsync, then linked into place without replacing anything. A crash leaves
either no key file or a whole one, never a truncated key; two processes
creating the same file at once end up sharing one key. Permissions of an
existing file are never changed, only warned about.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from ..errors import InvalidKeyError, UsageError
from .keys import Ed25519PrivateKey, PrivateKey, PublicKey, private_key_from_protobuf
from .peer_id import PeerId

__all__ = ["MAX_KEY_FILE_SIZE", "Identity", "KeyFileError"]

logger = logging.getLogger(__name__)

MAX_KEY_FILE_SIZE: Final = 16 * 1024
"""Largest key file read. The biggest libp2p key (8192-bit RSA) is under 5 KB;
a larger file is not a key, and the cap avoids reading an arbitrary file whole."""


class KeyFileError(UsageError):
    """A key file could not be read, created, or decoded as a libp2p PrivateKey."""


class Identity:
    """A node's identity: a private key, its public key and its PeerId."""

    __slots__ = ("peer_id", "private_key", "public_key")

    private_key: PrivateKey
    public_key: PublicKey
    peer_id: PeerId

    def __init__(self, private_key: PrivateKey) -> None:
        if not isinstance(private_key, PrivateKey):
            raise UsageError("Identity needs a peerwire PrivateKey")
        self.private_key = private_key
        self.public_key = private_key.public_key()
        self.peer_id = PeerId.from_public_key(self.public_key)

    @classmethod
    def generate(cls) -> Identity:
        """A fresh random Ed25519 identity."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """The Ed25519 identity for a 32-byte seed (same PeerId as libp2p derives)."""
        return cls(Ed25519PrivateKey.from_seed(seed))

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> Identity:
        """Load the key at ``path``, or create a new Ed25519 key file there.

        Raises :class:`KeyFileError`, naming the path, if the file exists but is
        not a supported libp2p PrivateKey, or cannot be read or created.
        """
        key_path = Path(path)
        for _attempt in range(3):
            try:
                return cls(_load_key(key_path))
            except FileNotFoundError:
                pass
            identity = cls.generate()
            if _create_key_file(key_path, identity.private_key.to_protobuf()):
                return identity
            # Another process created the file between our load and create: use theirs.
        raise KeyFileError(f"{key_path}: key file keeps appearing and disappearing")

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with this identity's private key."""
        return self.private_key.sign(data)

    def __repr__(self) -> str:
        return f"Identity(peer_id={self.peer_id!r})"


def _load_key(path: Path) -> PrivateKey:
    """Read and decode a key file; FileNotFoundError if it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open key file: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: key file is not a regular file")
        if os.name == "posix" and st.st_mode & 0o077:
            logger.warning(
                "key file %s is accessible by group or others (mode %o); "
                "it holds a private key, consider chmod 600",
                path,
                stat.S_IMODE(st.st_mode),
            )
        data = _read_at_most(fd, MAX_KEY_FILE_SIZE + 1)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyFileError(f"{path}: larger than {MAX_KEY_FILE_SIZE} bytes, not a key file")
    if not data:
        raise KeyFileError(f"{path}: key file is empty")
    try:
        return private_key_from_protobuf(data, max_size=MAX_KEY_FILE_SIZE)
    except InvalidKeyError as exc:
        raise KeyFileError(f"{path}: not a usable libp2p PrivateKey protobuf: {exc}") from exc


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _create_key_file(path: Path, data: bytes) -> bool:
    """Atomically create ``path`` holding ``data`` (mode 0600); False if it already exists."""
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file: {exc.strerror or exc}") from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link() never replaces an existing file, unlike rename().
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # Filesystems without hard links: fall back to rename, checking first.
            if path.exists():
                return False
            os.replace(tmp, path)
        _fsync_directory(directory)
        return True
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file: {exc.strerror or exc}") from exc
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        except OSError as exc:  # pragma: no cover - best effort cleanup
            logger.debug("could not remove temporary key file %s: %s", tmp, exc)


def _fsync_directory(directory: Path) -> None:
    """Persist the new directory entry (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
