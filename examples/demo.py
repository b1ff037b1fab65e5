"""``scripts/demo``: xregistry's main job on local data, end to end, in a few seconds.

Starts a throwaway ``docker-registry``, pushes the example image (a multi-platform index with a
cosign SLSA attestation and a BuildKit attestation) byte for byte, attaches an SPDX SBOM as an
OCI referrer, indexes the registry into an SQLite catalog (``xregistry-demo.db``), replicates it
by a stored rule to a second registry (digests and attachments intact) and indexes that too,
then asks the questions users ask: what is this image, who built it from what, which images
contain a package and where they are replicated; and whether it may run: a policy set
(``examples/policy.yaml``: SLSA provenance signed by the SLSA GitHub generator, and an SBOM) is
applied and the image verified with Sigstore, offline. Without ``docker-registry`` the example
layout is indexed directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from shutil import which

from rich.console import Console

from catalog.app.catalog_service import CatalogService
from catalog.cli.artifact import render_artifact
from catalog.cli.output import table
from catalog.oci import mediatypes as mt
from catalog.oci.client import RegistryClient
from catalog.oci.copy import copy_manifest, copy_tag
from catalog.oci.digest import Digest
from catalog.oci.layout import LayoutRepository
from catalog.oci.manifest import parse_manifest
from catalog.oci.repository import RemoteRepository
from catalog.oci.secrets import Secrets
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.registries import RegistrySpec
from replication.service import ReplicationService
from replication.spec import RuleSpec
from replication.statuses import TaskStatus
from replication.worker import Worker

EXAMPLES = Path(__file__).resolve().parent
LAYOUT = EXAMPLES / "slsa-container"
SBOM = EXAMPLES / "sbom" / "syft-image.spdx-2.3.json"
DATABASE = Path("xregistry-demo.db")
POLICY = EXAMPLES / "policy.yaml"
PURL = "pkg:deb/debian/package-2@2.0.1"
_CONFIG = """version: 0.1
log: {{level: info, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http: {{addr: "127.0.0.1:0"}}
"""
# Distribution logs the address it bound at level info; port 0 lets the kernel pick, so no other
# process can take the port between a pick and the registry's bind.
_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


def _start_registry(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    config = workdir / "config.yml"
    config.write_text(_CONFIG.format(root=workdir / "storage"))
    log = workdir / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        found = _LISTENING.search(log.read_bytes())
        if found:
            host = f"127.0.0.1:{int(found[1])}"
            try:
                urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
                return process, host
            except (urllib.error.URLError, ConnectionError):
                pass
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
        raise SystemExit("docker-registry did not start within 10 s")
    last = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
    raise SystemExit(f"docker-registry exited with {process.returncode}: {last[0]}")


async def _push_example(host: str) -> str:
    """The example image and its attachments, as a registry user would have them."""
    layout = LayoutRepository(LAYOUT)
    async with RegistryClient(host) as client:
        remote = RemoteRepository(client, "demo/slsa-container")
        image = await layout.get_manifest(layout.default_ref())
        await copy_manifest(layout, remote, image, "v1")
        async for tag in layout.tags():
            await copy_tag(layout, remote, tag)
        sbom = SBOM.read_bytes()
        empty = b"{}"
        for blob in (sbom, empty):
            await client.push_blob("demo/slsa-container", Digest.of(blob), blob)
        referrer = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2},
            "layers": [
                {
                    "mediaType": "application/spdx+json",
                    "digest": str(Digest.of(sbom)),
                    "size": len(sbom),
                }
            ],
            "subject": image.descriptor().to_json(),
        }
        manifest = parse_manifest(json.dumps(referrer).encode())
        await client.put_manifest("demo/slsa-container", manifest)  # keeps the fallback index
        return str(image.digest)


def _index(console: Console, catalog: CatalogService, name: str) -> None:
    console.rule(f"xregistry index {name}")
    stats = asyncio.run(catalog.index(name))
    console.print(
        f"{stats.tags_seen} tags; new to the catalog: {stats.manifests_new} manifests, "
        f"{stats.attachments_new} attachments, {stats.documents} documents; "
        f"{stats.errors} errors"
    )


def _replicate(console: Console, catalog: CatalogService) -> None:
    """A stored rule demo → mirror, run now as ``xregistry replicate run --wait`` runs it."""
    replication = ReplicationService(catalog.sessions)
    replication.put_rule(
        RuleSpec(name="to-mirror", source="demo", destination="mirror", prefix="mirror")
    )
    console.rule("xregistry replicate rule add to-mirror --from demo --to mirror/mirror")
    run = replication.start_run("to-mirror")
    asyncio.run(Worker(catalog.sessions).finish(run.id))
    done = replication.get_run(run.id)
    counts = done.counters
    console.print(
        f"run {done.id}: {done.status}: {done.outcomes.get(TaskStatus.COPIED, 0)} image(s), "
        f"{counts['manifests_copied']} manifests, {counts['blobs_copied']} blobs "
        f"({counts['bytes_copied']} bytes), {counts['referrers_copied']} referrers copied; "
        "digests unchanged"
    )


def _ask(console: Console, catalog: CatalogService, reference: str) -> None:
    console.rule(f"xregistry artifact show {reference}")
    render_artifact(catalog.artifact(reference))
    console.rule(f"xregistry find {PURL}")
    matches = catalog.find(purl=PURL).items
    table(
        None,
        ["package", "image", "where"],
        [
            (
                m.package.purl,
                m.artifact_digest,
                "; ".join(
                    f"{loc.registry}/{loc.repository}:{','.join(loc.tags)}" for loc in m.locations
                ),
            )
            for m in matches
        ],
    )


def _command() -> list[str]:
    """How to run ``xregistry`` from here: the script beside this Python (``.venv/bin``), which
    works as printed from any directory, else the module."""
    script = Path(sys.executable).with_name("xregistry")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "catalog.cli.main"]


def _verify(console: Console, reference: str) -> None:
    """The gate, as users run it: the CLI on the demo's catalog."""
    database = ["--database", f"sqlite:///{DATABASE.resolve()}"]
    for args in (["policy", "apply", str(POLICY), "--name", "default"], ["verify", reference]):
        console.rule(f"xregistry {' '.join(args)}")
        sys.stdout.flush()
        done = subprocess.run([*_command(), *database, *args], check=False)
        if done.returncode != 0:
            raise SystemExit(f"xregistry {args[0]} failed (exit {done.returncode})")


def main() -> None:
    argparse.ArgumentParser(
        prog="scripts/demo",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        epilog=f"It writes {DATABASE} in the working directory (replaced on every run).",
    ).parse_args()
    console = Console()
    DATABASE.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{DATABASE}")
    upgrade(engine)
    # Layouts are indexed below a named root, as a server's secrets.layouts configures them.
    catalog = CatalogService(
        session_factory(engine), secrets=Secrets.of(layouts=[("examples", EXAMPLES)])
    )
    if which("docker-registry") is None:
        console.print("docker-registry is not installed: indexing the example layout directly")
        catalog.add_registry(RegistrySpec("demo", f"oci:examples/{LAYOUT.name}"))
        stats = asyncio.run(catalog.index("demo"))
        console.print(f"indexed: {stats.as_dict()}")
        digest = (EXAMPLES / "slsa-container.digest").read_text().strip()
        render_artifact(catalog.artifact(digest))
        return
    with tempfile.TemporaryDirectory(prefix="xregistry-demo-") as tmp:
        (Path(tmp) / "demo").mkdir()
        (Path(tmp) / "mirror").mkdir()
        process, host = _start_registry(Path(tmp) / "demo")
        mirror, mirror_host = _start_registry(Path(tmp) / "mirror")
        try:
            digest = asyncio.run(_push_example(host))
            console.print(f"pushed the example image {digest} to {host}/demo/slsa-container:v1")
            catalog.add_registry(RegistrySpec("demo", host))
            _index(console, catalog, "demo")
            catalog.add_registry(RegistrySpec("mirror", mirror_host))
            _replicate(console, catalog)
            _index(console, catalog, "mirror")
            _ask(console, catalog, f"{host}/demo/slsa-container:v1")
            _verify(console, f"{host}/demo/slsa-container:v1")
        finally:
            for registry in (process, mirror):
                registry.terminate()
                registry.wait(timeout=10)
    hint = shlex.join(
        [*_command(), "--database", f"sqlite:///{DATABASE.resolve()}", "artifact", "show", digest]
    )
    console.print(
        f"\nThe catalog is in {DATABASE.resolve()}; ask it more with:\n{hint}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


if __name__ == "__main__":
    main()
