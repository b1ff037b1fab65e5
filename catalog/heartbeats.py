"""How often a server stream speaks while it works, and how long a client waits for it: one
place, so that a client's patience is derived from the servers' heartbeat, never set apart."""

from __future__ import annotations

# Seconds: the longest silence of a working server stream (an empty message when there is no
# news: EvaluateCatalog judging, WatchRun on an unchanged run).
HEARTBEAT = 15.0
# Seconds a client waits for a stream's next message before it gives up: four heartbeats, room
# for a busy server's late ones.
CLIENT_IDLE = 4 * HEARTBEAT
