"""``/peerwire/bcast/1.0.0``: push, pull (IHAVE/IWANT) and tree broadcast.

The service lives in :mod:`.service` (imported by ``peerwire.node``); this
package's ``__init__`` stays import-light because ``peerwire.config`` imports
:class:`BroadcastConfig` from here.
"""

from .config import BroadcastConfig

BCAST_PROTOCOL = "/peerwire/bcast/1.0.0"

__all__ = ["BCAST_PROTOCOL", "BroadcastConfig"]
