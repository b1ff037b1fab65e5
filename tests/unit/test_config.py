"""The serve configuration file: registries, schedules and the trust section."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.config import load_config, schedule_text
from catalog.errors import ConfigError


def test_full_configuration_loads_and_builds_trust(tmp_path: Path, fixtures_dir: Path) -> None:
    legacy = fixtures_dir / "cosign-legacy"
    config = tmp_path / "xregistry.yaml"
    config.write_text(
        f"""
database: postgresql://xr@db/xregistry
listen: 0.0.0.0:50051
registries:
  - name: local
    host: localhost:5000
    repositories: ["acme/*"]
    credentials: env:REG_USER:REG_PASS
    index: {{interval: 15m}}
  - name: layout
    host: oci:/srv/layout
    index: {{cron: "*/5 * * * *"}}
trust:
  sigstore: [production, staging]
  trustedRoots: [{{name: pgi, file: {fixtures_dir / "cosign-bundle" / "trusted_root_pgi.json"}}}]
  keys: [{{name: release, file: {legacy / "cosign.pub"}}}]
  pki:
    - name: corp
      roots: {legacy / "pki_root_crts.pem"}
      intermediates: {legacy / "pki_intermediate_crts.pem"}
"""
    )
    loaded = load_config(config)
    assert [r.spec().index_schedule for r in loaded.registries] == [
        "interval:15m",
        "cron:*/5 * * * *",
    ]
    trust = loaded.trust.build()
    assert trust.root_ids == (
        "sigstore:production",
        "sigstore:staging",
        "trusted-root:pgi",
        "key:release",
        "pki:corp",
    )
    assert len(trust.version) == 16


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("registries: [{name: a, host: x:1, index: {interval: soon}}]", "invalid duration"),
        ("registries: [{name: a, host: x:1, index: {}}]", "exactly one of"),
        ("registries: [{name: a, host: x:1}, {name: a, host: y:1}]", "must be unique: a"),
        ("trust: {sigstore: [nightly]}", "trust.sigstore[0]"),
        ("listen: [1, 2", "not valid YAML"),
    ],
)
def test_bad_configuration_says_where(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(body)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(config)


def test_schedule_text() -> None:
    assert schedule_text("90s", None) == "interval:90s"
    assert schedule_text(None, "0 * * * *") == "cron:0 * * * *"
    with pytest.raises(ConfigError, match="exactly one"):
        schedule_text("1m", "0 * * * *")
