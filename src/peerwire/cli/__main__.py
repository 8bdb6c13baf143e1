"""``python -m peerwire.cli`` (same as the ``peerwire`` script)."""

from .main import main

main()
