"""How many calls one caller may have running at a server, and how a call refused for that is
marked: one place for the server that refuses and the client that tries again."""

from __future__ import annotations

# Calls one authenticated principal may have running at once (limits.calls_at_once).
CALLS_AT_ONCE = 64
# The trailer of a call refused for that: refused before its handler ran, so the CLI may try
# it again (RESOURCE_EXHAUSTED alone may also be a response over the size limit, after it ran).
REFUSED_TRAILER = ("xregistry-refused", "calls-at-once")
