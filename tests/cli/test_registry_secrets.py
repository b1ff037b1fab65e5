"""Local CLI mode (no server): the user's own machine. Registries still name their secrets; the
names come from the config file given with --config or $XREGISTRY_CONFIG."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from catalog.oci.client import RegistryClient
from catalog.oci.credentials import Credentials, CredentialStore
from catalog.oci.options import RegistryOptions
from tests.cli.test_catalog_cli import ok, run
from tests.harness.images import build_image
from tests.harness.registry import run_registry
from tests.pushing import push_built


def test_local_registry_add_refuses_what_is_not_a_name(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    for args in (
        ["--credentials", "env:REG_USER:REG_PASS"],
        ["--credentials", "file:/etc/passwd"],
        ["--credentials", "robot"],  # no config file: no names
        ["--ca", "/etc/ssl/certs/ca-certificates.crt"],
    ):
        done = run("registry", "add", "x", "localhost:5000", *args, db=db)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1
        assert "/etc" not in done.stderr
    assert json.loads(ok(run("registry", "list", "-o", "json", db=db))) == []


async def test_local_names_come_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rng: random.Random
) -> None:
    with run_registry(tmp_path, auth="htpasswd") as reg:
        assert reg.username
        assert reg.password
        store = CredentialStore(ambient=False)
        async with RegistryClient(
            reg.host, RegistryOptions(credentials=Credentials(reg.username, reg.password)), store
        ) as client:
            await push_built(client, "shop/api", build_image(rng, layers=1), "1.0")
        config = tmp_path / "xregistry.yaml"
        robot = {"name": "robot", "env": "LOCAL_USER:LOCAL_PASS", "hosts": [reg.host]}
        config.write_text(yaml.safe_dump({"secrets": {"credentials": [robot]}}))
        monkeypatch.setenv("LOCAL_USER", reg.username)
        monkeypatch.setenv("LOCAL_PASS", reg.password)
        monkeypatch.setenv("XREGISTRY_CONFIG", str(config))
        db = tmp_path / "catalog.db"
        ok(run("registry", "add", "private", reg.host, "--credentials", "robot", db=db))
        (listed,) = json.loads(ok(run("registry", "list", "-o", "json", db=db)))
        assert listed["credentialsRef"] == "robot"
        ok(run("index", "private", db=db))
        (listed,) = json.loads(ok(run("registry", "list", "-o", "json", db=db)))
        assert listed["lastIndexStatus"] == "succeeded"
        # The name is bound to its host here too.
        done = run("registry", "add", "other", "other.test:5000", "--credentials", "robot", db=db)
        assert done.returncode == 2
        assert "not for host 'other.test:5000'" in done.stderr


async def test_ad_hoc_commands_send_credentials_to_listed_token_servers_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rng: random.Random
) -> None:
    with run_registry(tmp_path, auth="token") as reg:
        assert reg.username
        assert reg.password
        assert reg.token_server is not None
        realm = f"127.0.0.1:{reg.token_server.port}"  # another port: not the registry's own
        robot = Credentials(reg.username, reg.password)
        options = RegistryOptions(credentials=robot, token_realms=frozenset({realm}))
        async with RegistryClient(reg.host, options, CredentialStore(ambient=False)) as client:
            await push_built(client, "tok/app", build_image(rng, layers=1), "v1")
        monkeypatch.setenv("XREGISTRY_PASSWORD", reg.password)
        image = f"{reg.host}/tok/app:v1"
        refused = run("inspect", image, "--username", reg.username)
        assert refused.returncode == 5, refused.stderr
        assert "credentials are not sent there" in refused.stderr
        ok(run("inspect", image, "--username", reg.username, "--token-realm", realm))
