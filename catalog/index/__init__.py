"""The indexer: walks a registry or an image layout and records what it finds, incrementally."""
