"""Overlay topologies (Kademlia, Chord) behind one interface."""

from .base import KEY_BYTES, Overlay, key_for, xor_distance

__all__ = ["KEY_BYTES", "Overlay", "key_for", "xor_distance"]
