"""Domain exceptions above the OCI layer (store, indexer, queries, trust, replication).

The gRPC edge (``catalog/api``) and the CLI (``catalog/cli/errors.py``) map these, together with
``catalog.oci.errors``, to status codes and exit codes, each in one place.
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of the catalog's domain errors."""


class NotFound(CatalogError):
    """A registry, repository, artifact or tag the catalog does not know."""


class AlreadyExists(CatalogError):
    """Creating something whose name is taken."""


class InvalidArgument(CatalogError, ValueError):
    """A request that can never succeed as written (bad name, bad page token, bad purl…)."""


class FailedPrecondition(CatalogError):
    """The request is valid but the catalog's state does not allow it now."""


class DeadlineExceeded(CatalogError):
    """Work given a deadline (an admission review's) that could not finish before it."""


class CatalogUnreachable(CatalogError):
    """The database cannot be opened: the catalog cannot be reached (the CLI's ``--database``
    as ``serve``'s), as with a server that does not answer."""


class ConfigError(CatalogError):
    """A configuration file that is missing, malformed or inconsistent."""


class FormatError(CatalogError):
    """A signature, attestation or SBOM document that cannot be decoded; says why."""
