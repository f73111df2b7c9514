"""Rule modules of the inferops CrossGuard policy pack.

Nothing here builds a ``PolicyPack``: ``policies/__main__.py`` does, so the rules stay importable
from tests without starting a gRPC server.
"""
