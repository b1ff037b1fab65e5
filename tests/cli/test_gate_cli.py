"""``xregistry verify`` and ``xregistry policy`` as users run them."""

from __future__ import annotations

import json
import random
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from catalog.oci.client import RegistryClient
from tests.cli.test_catalog_cli import ok, run
from tests.harness.images import build_image
from tests.harness.registry import RunningRegistry
from tests.pushing import push_built
from tests.signing import key_policy, push_signature


async def test_verify_exit_codes_and_json(
    fresh_registry: RunningRegistry, tmp_path: Path, rng: random.Random
) -> None:
    host = fresh_registry.host
    key = ec.generate_private_key(ec.SECP256R1())
    signed, unsigned = build_image(rng, layers=1), build_image(rng, layers=1)
    async with RegistryClient(host) as client:
        await push_built(client, "shop/app", signed, "signed")
        await push_built(client, "shop/app", unsigned, "unsigned")
        await push_signature(client, "shop/app", signed.digest, key)
    db = tmp_path / "catalog.db"
    policy = tmp_path / "policy.yaml"
    policy.write_text(key_policy(host, key))

    # Not indexed yet: the gate resolves the tag live and fetches the signature itself.
    allowed = run("verify", f"{host}/shop/app:signed", "--policy", str(policy), "-o", "json", db=db)
    assert allowed.returncode == 0, allowed.stderr
    doc = json.loads(allowed.stdout)
    assert set(doc) >= {"allowed", "digest", "reasons", "evidence"}
    assert doc["allowed"] is True
    assert doc["digest"] == signed.digest
    assert doc["evidence"][0]["method"] == "key"

    denied = run("verify", f"{host}/shop/app:unsigned", "--policy", str(policy), db=db)
    assert denied.returncode == 1
    assert "DENIED" in denied.stdout
    assert "release-key" in denied.stdout

    offline = run(
        "verify", f"{host}/shop/app@{signed.digest}", "--policy", str(policy), "--offline", db=db
    )
    assert offline.returncode == 0, offline.stderr  # the signature is in the catalog now

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nimages: ['**']\nauthorities:\n  - name: a\n    keyless: {}\n")
    error = run("verify", f"{host}/shop/app:signed", "--policy", str(broken), db=db)
    assert error.returncode == 2
    assert "broken.yaml:5" in error.stderr

    applied = json.loads(ok(run("policy", "apply", str(policy), "-o", "json", db=db)))
    assert (applied["name"], applied["version"], applied["created"]) == ("default", 1, True)
    again = json.loads(ok(run("policy", "apply", str(policy), "-o", "json", db=db)))
    assert again["created"] is False
    bad_name = run("policy", "apply", str(policy), "--name", "Prod!", db=db)
    assert (bad_name.returncode, bad_name.stderr.strip()) == (
        2,
        "xregistry: error: invalid policy name 'Prod!': 1-63 of lower-case letters, digits and "
        "'-', starting with a letter",
    )
    listed = json.loads(ok(run("policy", "list", "-o", "json", db=db)))
    assert [(p["name"], p["version"]) for p in listed] == [("default", 1)]
    stored = run("verify", f"{host}/shop/app@{signed.digest}", "--offline", db=db)
    assert stored.returncode == 0, stored.stderr
