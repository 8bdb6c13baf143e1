"""libp2p identify and identify push."""

from .identify import (
    IDENTIFY_PROTOCOL,
    IDENTIFY_PUSH_PROTOCOL,
    IdentifyInfo,
    IdentifyService,
)

__all__ = ["IDENTIFY_PROTOCOL", "IDENTIFY_PUSH_PROTOCOL", "IdentifyInfo", "IdentifyService"]
