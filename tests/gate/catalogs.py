"""A catalog with one signed image indexed, as the gate tests start from."""

from __future__ import annotations

import random
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from catalog.app.catalog_service import CatalogService
from catalog.oci.client import RegistryClient
from catalog.principals import SERVER, acting_as
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec
from tests.harness.images import BuiltManifest, build_image
from tests.pushing import push_built
from tests.signing import push_signature


class SignedCatalog(NamedTuple):
    engine: Engine
    sessions: sessionmaker[Session]
    image: BuiltManifest  # {host}/shop/app:1.0
    key: ec.EllipticCurvePrivateKey  # its signature's


async def indexed_catalog(
    host: str, database: Path
) -> tuple[Engine, sessionmaker[Session], CatalogService]:
    """The SQLite catalog ``database`` with ``host`` indexed as registry ``local``."""
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    sessions = session_factory(engine)
    catalog = CatalogService(sessions)
    with acting_as(SERVER):
        catalog.add_registry(RegistrySpec("local", host))
        await catalog.index("local")
    return engine, sessions, catalog


async def signed_image_indexed(host: str, rng: random.Random, database: Path) -> SignedCatalog:
    """``{host}/shop/app:1.0`` signed with a new key, indexed into the SQLite ``database`` as
    registry ``local``."""
    key = ec.generate_private_key(ec.SECP256R1())
    image = build_image(rng, layers=1)
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", image, "1.0")
        await push_signature(client, "shop/app", image.digest, key)
    engine, sessions, _ = await indexed_catalog(host, database)
    return SignedCatalog(engine, sessions, image, key)
