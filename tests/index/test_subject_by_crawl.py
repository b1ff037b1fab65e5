"""An SBOM pushed by the real ORAS client (PyPI `oras`) with a `subject`, to a real Distribution
2.8 registry: found by crawling tags, recorded as a referrer of its subject.

Why this registry shows the case by itself: Debian's `docker-registry` 2.8.2 has no referrers API
(`GET /v2/<name>/referrers/<digest>` answers 404, checked below), and oras-py's `push` writes the
manifest with its `subject` but maintains no fallback tag (`sha256-<hex>`, also checked). So the
only trace of the link is the `subject` field of the tagged SBOM manifest.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import oras.client
import oras.oci

from catalog.api.v1 import catalog_pb2 as pb
from catalog.api.v1 import catalog_pb2_grpc
from catalog.app.config import ServeConfig
from catalog.daemon import Server
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.index.conftest import SPDX_PURL
from tests.pushing import push_built

SPDX = "application/spdx+json"


def run(*args: str, db: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XREGISTRY_")}
    env["XREGISTRY_DATABASE"] = f"sqlite:///{db}"
    env["XREGISTRY_FIXTURES"] = os.environ.get("XREGISTRY_FIXTURES", "")
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli.main", *args],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=cwd,
    )  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def oras_push_sbom(host: str, target: str, sbom: Path, subject: oras.oci.Subject) -> str:
    """`oras push --subject` as a user's script does it; returns the pushed manifest's digest."""
    client = oras.client.OrasClient(hostname=host, insecure=True)
    response = client.push(
        target=f"{host}/{target}",
        files=[f"{sbom}:{SPDX}"],
        manifest_config=f"{sbom.parent / 'config.json'}:application/vnd.example.sbom.config+json",
        subject=subject,
        disable_path_validation=True,
        quiet=True,
    )
    digest = response.headers["Docker-Content-Digest"]
    assert isinstance(digest, str)
    return digest


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())


async def test_an_oras_sbom_with_a_subject_is_a_referrer(
    registry: RunningRegistry, fixtures_dir: Path, tmp_path: Path, rng: random.Random
) -> None:
    from catalog.oci.client import RegistryClient

    image = build_image(rng, layers=1, layer_size=2048)
    async with RegistryClient(registry.host) as client:
        await push_built(client, "shop/app", image, "1.0.0")
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_bytes((fixtures_dir / "sbom" / "syft-image.spdx-2.3.json").read_bytes())
    (tmp_path / "config.json").write_text("{}")
    subject = oras.oci.Subject(mediaType=image.media_type, digest=image.digest, size=len(image.raw))
    sbom_digest = await asyncio.to_thread(
        oras_push_sbom, registry.host, "shop/app:sbom", sbom, subject
    )

    # The case: no referrers API, no fallback tag, only the subject field of a tagged manifest.
    referrers = f"{registry.url}/v2/shop/app/referrers/{image.digest}"
    assert await asyncio.to_thread(http_get, referrers) == (404, b"404 page not found\n")
    listed = await asyncio.to_thread(http_get, f"{registry.url}/v2/shop/app/tags/list")
    assert listed[0] == 200
    assert sorted(json.loads(listed[1])["tags"]) == ["1.0.0", "sbom"]  # no sha256-<hex> tag

    db = tmp_path / "catalog.db"
    ok(run("registry", "add", "local", registry.host, db=db))
    ok(run("index", "local", db=db))

    shown = ok(run("artifact", "show", f"{registry.host}/shop/app:1.0.0", "-o", "json", db=db))
    assert sbom_digest in shown  # the SBOM among the image's referrers
    document = json.loads(shown)
    assert document["digest"] == image.digest
    (attachment,) = document["attachments"]
    assert (attachment["digest"], attachment["kind"], attachment["scheme"]) == (
        sbom_digest, "sbom", "subject-field"
    )  # fmt: skip
    # Its packages are the image's: `find` by a purl from the SBOM answers the image.
    assert image.digest in ok(run("find", SPDX_PURL, "-o", "json", db=db))

    # Through the API as well: ListReferrers names the scheme it was found by.
    config = ServeConfig(database=f"sqlite:///{db}", listen="127.0.0.1:0")
    server = Server(config)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            answer = await stub.ListReferrers(
                pb.ListReferrersRequest(parent=f"artifacts/{image.digest}")
            )
    finally:
        await server.stop()
    assert [(r.digest, r.scheme, r.kind) for r in answer.referrers] == [
        (sbom_digest, pb.ATTACHMENT_SCHEME_SUBJECT_FIELD, pb.ATTACHMENT_KIND_SBOM)
    ]

    # The gate sees it: a policy requiring an SBOM allows the image (and denies one without).
    policy = tmp_path / "sbom.yaml"
    policy.write_text("name: sbom\nimages: ['**']\nrequireSbom: true\n")
    allowed = run("verify", f"{registry.host}/shop/app:1.0.0", "--policy", str(policy),
                  "--offline", db=db)  # fmt: skip
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    bare = build_image(rng, layers=1, layer_size=1024)
    async with RegistryClient(registry.host) as client:
        await push_built(client, "shop/bare", bare, "1.0.0")
    ok(run("index", "local", db=db))
    denied = run("verify", f"{registry.host}/shop/bare:1.0.0", "--policy", str(policy),
                 "--offline", db=db)  # fmt: skip
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert "no SBOM attached" in denied.stdout
