"""peerwire: a fast, secure, asyncio-native peer-to-peer network stack."""
