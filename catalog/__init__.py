"""xregistry: supply-chain artifact catalog and replication service for OCI registries."""

__version__ = "0.1.0"
