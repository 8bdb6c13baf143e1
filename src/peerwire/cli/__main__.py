"""``python -m peerwire.cli`` (same as the ``peerwire`` script)."""

from .main import main

if __name__ == "__main__":  # not when a spawned worker process imports it
    main()
