"""Alembic migrations of the catalog schema (a package so installed copies can find them)."""
