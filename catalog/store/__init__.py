"""The SQL store: typed models, engine and session setup, query functions."""
