"""Errors specific to the Kademlia DHT, slotted into peerwire's exception tree.

Only two are new: what a remote sent that breaks the kad protocol is still a
:class:`~peerwire.errors.ProtocolError` (so the host resets the stream and logs
it like any other protocol violation), and "the DHT does not have it" needs its
own type because it is neither the caller's fault nor a timeout.
"""

from __future__ import annotations

from ...errors import PeerwireError, ProtocolError


class KadProtocolError(ProtocolError):
    """A remote sent a malformed or forbidden ``/ipfs/kad/1.0.0`` message."""


class InvalidRecord(KadProtocolError):
    """A DHT record failed validation (bad ``/pk/`` key, too large, rejected by a validator).

    Raised by the record validators. When *we* are about to publish an invalid
    record, :meth:`KadService.put_value` turns it into a
    :class:`~peerwire.errors.UsageError` instead, since the caller is at fault.
    """


class NotFound(PeerwireError, LookupError):
    """A DHT lookup finished without finding the peer or value asked for."""


__all__ = ["InvalidRecord", "KadProtocolError", "NotFound"]
