"""Direct messaging over ``/peerwire/msg/1.0.0``."""

from .inbox import Inbox
from .message import Message
from .service import MSG_PROTOCOL, MessagingService

__all__ = ["MSG_PROTOCOL", "Inbox", "Message", "MessagingService"]
