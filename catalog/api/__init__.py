"""The gRPC edge of the catalog: servicers, server assembly, error mapping, paging.

``catalog.api.v1`` is generated from ``protos/`` by ``scripts/gen-protos``; do not edit it.
"""
