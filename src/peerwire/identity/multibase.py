"""Text encodings used by PeerIds and multiaddrs: base58btc and a multibase subset.

libp2p prints PeerIds in bare base58btc (the bitcoin alphabet) and parses
CIDv1 text in any multibase; multiaddr ``/certhash`` values are multibase too.
Only the bases those uses need are here. Every decoder is strict (one text per
byte string, no padding, no whitespace, no stray characters) so that two
different texts never alias the same bytes, and raises :class:`ValueError`
on bad input; callers turn that into the error of their own layer.

Decoding base58 and base36 costs time quadratic in the input length, so
callers bound text lengths before calling in here.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = [
    "BASE58_ALPHABET",
    "b58decode",
    "b58encode",
    "multibase_decode",
    "multibase_encode",
]

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
"""The base58btc (bitcoin) alphabet: no 0, O, I or l."""

_B58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}
_B36_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_B36_INDEX = {c: i for i, c in enumerate(_B36_ALPHABET)}

_BASE32_LOWER = re.compile(r"[a-z2-7]*\Z")
_BASE16_LOWER = re.compile(r"[0-9a-f]*\Z")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*\Z")


def _encode_int_alphabet(data: bytes, alphabet: str) -> str:
    """Big-endian base-N with one leading zero digit per leading zero byte."""
    base = len(alphabet)
    zeros = len(data) - len(data.lstrip(b"\x00"))
    num = int.from_bytes(data, "big")
    digits: list[str] = []
    while num:
        num, rem = divmod(num, base)
        digits.append(alphabet[rem])
    return alphabet[0] * zeros + "".join(reversed(digits))


def _decode_int_alphabet(text: str, index: dict[str, int], name: str) -> bytes:
    base = len(index)
    zero = next(c for c, i in index.items() if i == 0)
    zeros = len(text) - len(text.lstrip(zero))
    num = 0
    for ch in text:
        digit = index.get(ch)
        if digit is None:
            raise ValueError(f"invalid {name} character {ch!r}")
        num = num * base + digit
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\x00" * zeros + body


def b58encode(data: bytes) -> str:
    """Encode bytes as base58btc (leading zero bytes become leading ``1``)."""
    return _encode_int_alphabet(bytes(data), BASE58_ALPHABET)


def b58decode(text: str) -> bytes:
    """Decode base58btc text; raises ValueError on any character outside the alphabet."""
    return _decode_int_alphabet(text, _B58_INDEX, "base58btc")


def _b32decode_lower(text: str) -> bytes:
    if not _BASE32_LOWER.match(text):
        raise ValueError("invalid base32 character")
    if len(text) % 8 in (1, 3, 6):
        raise ValueError("invalid base32 length")
    padded = text.upper() + "=" * (-len(text) % 8)
    data = base64.b32decode(padded)
    # Reject non-zero trailing bits, so that only the canonical text decodes.
    if _b32encode_lower(data) != text:
        raise ValueError("non-canonical base32")
    return data


def _b32encode_lower(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _b64url_decode(text: str) -> bytes:
    if not _BASE64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("invalid base64url text")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url_encode(data) != text:
        raise ValueError("non-canonical base64url")
    return data


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def multibase_encode(data: bytes, base: str = "base32") -> str:
    """Encode with a multibase prefix: ``base32`` (``b``), ``base58btc`` (``z``),
    ``base16`` (``f``), ``base36`` (``k``) or ``base64url`` (``u``)."""
    data = bytes(data)
    if base == "base32":
        return "b" + _b32encode_lower(data)
    if base == "base58btc":
        return "z" + b58encode(data)
    if base == "base16":
        return "f" + data.hex()
    if base == "base36":
        return "k" + _encode_int_alphabet(data, _B36_ALPHABET)
    if base == "base64url":
        return "u" + _b64url_encode(data)
    raise ValueError(f"unsupported multibase {base!r}")


def multibase_decode(text: str) -> bytes:
    """Decode multibase text (prefixes ``b B z f F k K u``); ValueError otherwise."""
    if not text:
        raise ValueError("empty multibase text")
    prefix, body = text[0], text[1:]
    try:
        if prefix == "b":
            return _b32decode_lower(body)
        if prefix == "B":
            if body != body.upper():
                raise ValueError("mixed-case base32upper")
            return _b32decode_lower(body.lower())
        if prefix == "z":
            return b58decode(body)
        if prefix in ("f", "F"):
            lowered = body.lower() if prefix == "F" else body
            if prefix == "F" and body != body.upper():
                raise ValueError("mixed-case base16upper")
            if not _BASE16_LOWER.match(lowered) or len(lowered) % 2:
                raise ValueError("invalid base16 text")
            return bytes.fromhex(lowered)
        if prefix in ("k", "K"):
            if prefix == "K" and body != body.upper():
                raise ValueError("mixed-case base36upper")
            return _decode_int_alphabet(body.lower(), _B36_INDEX, "base36")
        if prefix == "u":
            return _b64url_decode(body)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc
    raise ValueError(f"unsupported multibase prefix {prefix!r}")
