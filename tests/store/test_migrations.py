"""Migrations: the models and the migrations agree, and upgrades keep the data in them."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.orm import Session

import replication.models  # noqa: F401 (its tables join the catalog's on the one Base)
from catalog.errors import CatalogUnreachable
from catalog.store import queries
from catalog.store.db import HEAD_REVISION, alembic_config, exclusive, make_engine, upgrade
from catalog.store.models import Base
from catalog.store.package_keys import package_key

# Rows written at a revision, read back after upgrading to head: one entry per revision.
SEED = {
    "0001": [
        "INSERT INTO registries (id, name, host, insecure, repositories_filter, created_at)"
        " VALUES (1, 'r', 'localhost:5000', false, '[]', '2026-01-01 00:00:00+00')",
        "INSERT INTO repositories (id, registry_id, name, first_seen)"
        " VALUES (1, 1, 'acme/api', '2026-01-01 00:00:00+00')",
        "INSERT INTO manifests (digest, media_type, size, raw, first_seen) VALUES"
        " ('sha256:" + "a" * 64 + "', 'application/vnd.oci.image.manifest.v1+json', 2, :raw,"
        " '2026-01-01 00:00:00+00')",
        "INSERT INTO tags (id, repository_id, name, digest, updated_at)"
        " VALUES (1, 1, 'v1', 'sha256:" + "a" * 64 + "', '2026-01-01 00:00:00+00')",
    ],
    "0002": [
        "INSERT INTO policies (id, name, version, digest, source, created_at)"
        " VALUES (1, 'prod', 1, 'sha256:"
        + "b" * 64
        + "', 'policies: []', '2026-01-02 00:00:00+00')",
        "INSERT INTO decisions (id, reference, digest, policy_name, policy_version, trust_version,"
        " allowed, reasons, evidence, cached, decided_at) VALUES (1, 'r/a:v1', 'sha256:"
        + "a" * 64
        + "', 'prod', 1, 'abc', false, '[]', '[]', false, '2026-01-02 00:00:00+00')",
    ],
    "0003": [
        "INSERT INTO replication_rules (id, name, source_registry, spec, origin, created_at,"
        " updated_at) VALUES (1, 'mirror', 'r', '{}', 'api', '2026-01-03 00:00:00+00',"
        " '2026-01-03 00:00:00+00')",
        "INSERT INTO replication_runs (id, rule_id, trigger, spec, status, created_at)"
        " VALUES (1, 1, 'manual', '{}', 'running', '2026-01-03 00:00:00+00')",
        "INSERT INTO replication_tasks (id, run_id, source_repository, destination_repository,"
        " tag, status, attempts, manifests_copied, manifests_skipped, manifests_failed,"
        " blobs_copied, blobs_skipped, blobs_failed, blobs_mounted, bytes_copied, bytes_skipped,"
        " bytes_failed, referrers_copied, referrers_skipped, referrers_failed)"
        " VALUES (1, 1, 'acme/api', 'm/acme/api', 'v1', 'pending', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,"
        " 0, 0, 0, 0)",
        # Before 0004 a finished run left a sentence as the registry's index status.
        "INSERT INTO registries (id, name, host, insecure, repositories_filter, created_at,"
        " last_index_at, last_index_status) VALUES (2, 's', 'localhost:5001', false, '[]',"
        " '2026-01-03 00:00:00+00', '2026-01-03 01:00:00+00', '3 repositories, 2 errors')",
    ],
    "0004": [
        "INSERT INTO registries (id, name, host, insecure, repositories_filter, created_at,"
        " last_index_status, last_index_started_at, last_index_at, last_index_error) VALUES"
        " (3, 't', 'localhost:5002', false, '[]', '2026-01-04 00:00:00+00', 'failed',"
        " '2026-01-04 01:00:00+00', '2026-01-04 01:00:01+00', 'connection refused')",
    ],
    "0005": [
        "INSERT INTO audit_events (id, occurred_at, principal, kind, resource, before, after)"
        " VALUES (1, '2026-01-05 00:00:00+00', 'token:ci', 'policy.applied', 'policies/prod',"
        " NULL, '1')",
        "INSERT INTO decisions (id, reference, digest, policy_name, policy_version, trust_version,"
        " allowed, reasons, evidence, cached, decided_at, principal) VALUES (2, 'r/a:v1', 'sha256:"
        + "a" * 64
        + "', 'prod', 1, 'abc', true, '[]', '[]', false, '2026-01-05 00:00:00+00', 'oidc:ci')",
    ],
    "0006": [
        "INSERT INTO undecodable_documents (digest, reason, observed_at) VALUES ('sha256:"
        + "c" * 64
        + "', 'layer x: JSON nested deeper than 64 levels', '2026-01-06 00:00:00+00')",
    ],
    "0007": [
        "INSERT INTO decisions (id, reference, digest, policy_name, policy_version, trust_version,"
        " allowed, reasons, evidence, cached, decided_at, principal, namespace, object_ref,"
        " operation, requester, dry_run) VALUES (3, 'r/a:v1', 'sha256:"
        + "a"
        * 64
        + "', 'prod', 1, 'abc', true, '[]', '[]', false, '2026-01-07 00:00:00+00',"
        " 'cert:kube-apiserver', 'shop', 'Deployment/web', 'CREATE', 'alice', true)",
    ],
    "0008": [
        "INSERT INTO policies (id, name, version, digest, source, canonical, created_at)"
        " VALUES (2, 'prod', 2, 'sha256:"
        + "d" * 64
        + "', 'policies: []', '{}', '2026-01-08 00:00:00+00')",
        "INSERT INTO attachments (id, subject_digest, attachment_digest, kind, scheme, first_seen)"
        " VALUES (1, 'sha256:" + "a" * 64 + "', 'sha256:" + "e" * 64 + "', 'sbom',"
        " 'referrers-api', '2026-01-08 00:00:00+00')",
        "INSERT INTO sboms (id, attachment_digest, layer_digest, format, package_count)"
        " VALUES (1, 'sha256:" + "e" * 64 + "', 'sha256:" + "e" * 64 + "', 'spdx', 2)",
        "INSERT INTO sbom_packages (id, sbom_id, purl, purl_base, type, name, version, licenses)"
        " VALUES (1, 1, 'pkg:npm/left-pad@1.3.0', 'pkg:npm/left-pad', 'npm', 'left-pad', '1.3.0',"
        " '[]'), (2, 1, NULL, NULL, NULL, 'bare', NULL, '[]')",
    ],
    "0009": [],  # keys for 0008's package rows: checked after upgrading
    "0010": [],  # 0008's package rows, no longer referencing their SBOM: found after upgrading
}


def seed_through(engine: Engine, last: str) -> None:
    """Each revision up to ``last`` in turn, with the rows ``SEED`` writes at it."""
    for revision in sorted(SEED):
        if revision > last:
            break
        upgrade(engine, revision)
        with engine.begin() as connection:
            for statement in SEED[revision]:
                connection.execute(text(statement), {"raw": b"{}"})


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_each_revision_upgrades_with_data(database_url: str) -> None:
    engine = make_engine(database_url)
    script = ScriptDirectory.from_config(alembic_config(engine))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions[0] == "0001"
    assert set(SEED) == set(revisions), "add seed rows for every new revision"
    seed_through(engine, revisions[-1])
    upgrade(engine, "head")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM tags")).scalars().all() == ["v1"]
        raw = connection.execute(text("SELECT raw FROM manifests")).scalar_one()
        assert bytes(raw) == b"{}"
        stored = connection.execute(text("SELECT version, canonical FROM policies ORDER BY id"))
        # A set applied before 0008 has no canonical JSON: the gate parses its source.
        assert [tuple(row) for row in stored] == [(1, None), (2, "{}")]
        tasks = connection.execute(text("SELECT tag FROM replication_tasks")).scalars().all()
        assert tasks == ["v1"]
        statuses = connection.execute(
            text(
                "SELECT name, last_index_status, last_index_errors, last_index_error"
                " FROM registries ORDER BY name"
            )
        ).all()
        assert [tuple(row) for row in statuses] == [
            ("r", None, None, None),  # never indexed
            ("s", "succeeded", 2, None),  # the sentence, read once
            ("t", "failed", None, "connection refused"),
        ]
        askers = connection.execute(text("SELECT id, principal FROM decisions ORDER BY id")).all()
        assert [tuple(row) for row in askers] == [
            (1, None),  # 0002's: unknown
            (2, "oidc:ci"),
            (3, "cert:kube-apiserver"),
        ]
        admitted = connection.execute(
            text(
                "SELECT id, namespace, object_ref, operation, requester, dry_run"
                " FROM decisions ORDER BY id"
            )
        ).all()
        assert [tuple(row) for row in admitted] == [
            (1, None, None, None, None, None),  # asked before admission existed
            (2, None, None, None, None, None),
            (3, "shop", "Deployment/web", "CREATE", "alice", True),
        ]
        events = connection.execute(text("SELECT principal, resource FROM audit_events")).all()
        assert [tuple(row) for row in events] == [("token:ci", "policies/prod")]
        refused = connection.execute(text("SELECT digest FROM undecodable_documents")).all()
        assert [tuple(row) for row in refused] == [("sha256:" + "c" * 64,)]
        keys = connection.execute(text("SELECT purl_key, name_key FROM sbom_packages ORDER BY id"))
        assert [tuple(row) for row in keys] == [
            (package_key("pkg:npm/left-pad", "1.3.0"), package_key("left-pad", "1.3.0")),
            (None, package_key("bare", None)),
        ]
        # 0010: a package row's SBOM is neither checked nor indexed.
        assert inspect(connection).get_foreign_keys("sbom_packages") == []
        indexes = {i["name"] for i in inspect(connection).get_indexes("sbom_packages")}
        assert "ix_sbom_packages_sbom_id" not in indexes
    with Session(engine) as session:
        found = queries.search_packages(session, purl="pkg:npm/left-pad")
        assert [(m.package.name, m.artifact_digest) for m in found.items] == [
            ("left-pad", "sha256:" + "a" * 64)
        ]
        assert [m.package.name for m in queries.search_packages(session, name="bare").items] == [
            "bare"
        ]
    command.check(alembic_config(engine))
    engine.dispose()


def test_processes_started_together_migrate_once(database_url: str) -> None:
    """Replicas booting side by side on an empty database: one migrates, the others wait for it
    and find the schema current."""
    script = (
        f"from catalog.store.db import make_engine, upgrade; upgrade(make_engine({database_url!r}))"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE) for _ in range(4)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, "\n".join(errors)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        assert version.all() == [
            ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        ]
    engine.dispose()


def test_a_current_schema_does_not_wait_for_writers(engine: Engine) -> None:
    """Opening a current database takes no lock: a command starts while a server writes."""
    with engine.connect() as writer:
        exclusive(writer)  # a long write transaction elsewhere, holding the writer lock
        started = time.monotonic()
        opened = make_engine(engine.url.render_as_string(hide_password=False))
        upgrade(opened)
        assert time.monotonic() - started < 5  # SQLite's busy timeout is 10 s
        writer.rollback()
        opened.dispose()


def test_package_keys_fill_a_large_catalog_and_go_back(database_url: str) -> None:
    """0009 keys rows in batches (more rows than one batch here); downgrading restores the
    string indexes (and 0010's, the SBOM's foreign key and index) and keeps the rows."""
    engine = make_engine(database_url)
    upgrade(engine, "0008")
    rows = 25_001  # 0009 reads 10,000 rows a batch
    with engine.begin() as connection:
        for statement in SEED["0008"][1:3]:
            connection.execute(text(statement))
        connection.execute(
            text(
                "INSERT INTO sbom_packages (sbom_id, purl, purl_base, name, version, licenses)"
                " VALUES (1, :purl, :base, :name, :version, '[]')"
            ),
            [
                {
                    "purl": f"pkg:pypi/p{n % 500}@{n % 7}",
                    "base": f"pkg:pypi/p{n % 500}",
                    "name": f"p{n % 500}",
                    "version": str(n % 7),
                }
                for n in range(rows)
            ],
        )
    upgrade(engine, "head")
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT purl_base, name, version, purl_key, name_key FROM sbom_packages")
        ).all()
    assert len(stored) == rows
    assert all(
        (r.purl_key, r.name_key)
        == (package_key(r.purl_base, r.version), package_key(r.name, r.version))
        for r in stored
    )
    with Session(engine) as session:
        found = queries.search_packages(session, purl="pkg:pypi/p42@0", size=1000)
        assert len(found.items) == len([n for n in range(rows) if n % 500 == 42 and n % 7 == 0])
    command.downgrade(alembic_config(engine), "0008")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM sbom_packages")).scalar() == rows
        indexes = {i["name"] for i in inspect(connection).get_indexes("sbom_packages")}
        foreign_keys = inspect(connection).get_foreign_keys("sbom_packages")
    assert {"ix_sbom_packages_purl_base_version", "ix_sbom_packages_name_version"} <= indexes
    assert not indexes & {"ix_sbom_packages_purl_key", "ix_sbom_packages_name_key"}
    # 0010's downgrade: the SBOM referenced and indexed again, over the rows already there.
    assert "ix_sbom_packages_sbom_id" in indexes
    assert [(k["referred_table"], k["options"].get("ondelete")) for k in foreign_keys] == [
        ("sboms", "CASCADE")
    ]
    upgrade(engine, "head")
    engine.dispose()


def test_a_schema_newer_than_this_version_is_refused_in_one_line(engine: Engine) -> None:
    """A rollback to an older image after a migration: said in words, not Alembic's traceback."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    with pytest.raises(CatalogUnreachable) as refused:
        upgrade(engine)
    assert str(refused.value) == (
        f"the database's schema is at 0999, newer than this version of xregistry knows (its"
        f" newest is {HEAD_REVISION}): run the version that migrated it, or restore the backup"
        " taken before that upgrade"
    )
