"""The replication engine: rules, planning, digest-preserving copies, scheduling, workers."""
