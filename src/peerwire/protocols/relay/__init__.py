"""``/peerwire/relay/1.0.0``: messages routed to the node responsible for a key.

The service lives in :mod:`.service` (imported by ``peerwire.node``); this
package's ``__init__`` stays import-light because ``peerwire.config`` imports
:class:`RelayConfig` from here.
"""

from .config import RelayConfig

RELAY_PROTOCOL = "/peerwire/relay/1.0.0"

__all__ = ["RELAY_PROTOCOL", "RelayConfig"]
