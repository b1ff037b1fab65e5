"""The serve configuration file: registries, schedules and the trust section."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.app.config import load_config, schedule_text
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
    credentials: robot
    index: {{interval: 15m}}
  - name: layout
    host: oci:layouts/shop
    index: {{cron: "*/5 * * * *"}}
secrets:
  credentials: [{{name: robot, env: "REG_USER:REG_PASS", hosts: ["localhost:5000"]}}]
  layouts: [{{name: layouts, path: /srv/layouts}}]
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
    assert loaded.registries[0].spec().credentials_ref == "robot"  # the name is stored
    assert loaded.secrets.build().layout("oci:layouts/shop") == Path("/srv/layouts/shop")
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
        (
            "replication: {rules: [{name: m, source: a, destination: b,"
            " tags: {semver: 'not a range'}}]}",
            "replication.rules[0]",
        ),
        (
            "replication: {rules: [{name: m, source: a, destination: a}]}",
            "give a prefix, strip or rename",
        ),
        (
            "replication: {rules: [{name: m, source: a, destination: b,"
            " rename: {pattern: '(', replacement: x}}]}",
            "rename pattern '\\('",
        ),
        (
            "replication: {rules: [{name: m, source: a, destination: b, prefix: p,"
            " rename: {pattern: '(.*)', replacement: 'x/\\1'}}]}",
            "not both",
        ),
        (
            "replication: {rules: [{name: m, source: a, destination: b,"
            " rename: {pattern: '(.*)'}}]}",
            "replication.rules[0].rename.replacement",
        ),
        ("replication: {rules: [{name: M, source: a, destination: b}]}", "invalid name 'M'"),
        ("replication: {rules: [{name: m, source: a, destination: b, kinds: all}]}", "kinds"),
        ("replication: {rules: [{name: m, source: a, destination: b, referrers: x}]}", "kinds"),
        ("replication: {lease: forever}", "invalid duration"),
        # Secrets by name only: a registry names what the secrets section defines, for its host.
        ("registries: [{name: a, host: x:1, credentials: 'env:U:P'}]", "must be the name"),
        ("registries: [{name: a, host: x:1, credentials: 'file:/etc/passwd'}]", "must be the"),
        ("registries: [{name: a, host: x:1, credentials: robot}]", "unknown names are refused"),
        ("registries: [{name: a, host: x:1, ca_file: /etc/ssl/ca.pem}]", "ca_file must be the"),
        ("registries: [{name: a, host: oci:/srv/layout}]", "secrets.layouts"),
        (
            "secrets: {layouts: [{name: l, path: /srv}]}\n"
            "registries: [{name: a, host: 'oci:l/../etc'}]",
            "must stay below the layout root",
        ),
        (
            "secrets: {credentials: [{name: r, env: 'U:P', hosts: ['y:1']}]}\n"
            "registries: [{name: a, host: 'x:1', credentials: r}]",
            "are not for host 'x:1'",
        ),
        ("secrets: {credentials: [{name: r, env: 'U:P'}]}", "need the hosts they are for"),
        ("secrets: {credentials: [{name: r, env: U}]}", "USER_VAR:PASSWORD_VAR"),
        ("secrets: {credentials: [{name: r, hosts: [x.io]}]}", "exactly one of"),
        ("secrets: {credentials: [{name: r, docker_config: true, hosts: ['a b']}]}", "not a reg"),
        (
            "secrets: {credentials: [{name: r, docker_config: true, token_realms: ['http://x']}]}",
            "is not a host",
        ),
        ("secrets: {ca_files: [{name: c, file: /a}, {name: c, file: /b}]}", "must be unique: c"),
        ("registries: [{name: a, host: " + "h" * 300 + "}]", "at most 255 characters, not 300"),
        ("replication: {workers: 0}", "replication.workers"),
        (
            "replication: {rules: [{name: m, source: a, destination: b},"
            " {name: m, source: a, destination: c}]}",
            "rule names must be unique: m",
        ),
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


def test_replication_rules_load_with_their_defaults(tmp_path: Path) -> None:
    config = tmp_path / "xregistry.yaml"
    config.write_text(
        """
replication:
  workers: 4
  lease: 1m
  rules:
    - name: to-eu
      source: local
      destination: eu
      include: ["acme/**"]
      exclude: ["acme/tmp/*"]
      prefix: mirror
      tags: {globs: ["release-*"], newest: 3}
      referrers: signatures,sboms
      conflict: report
      policy: prod
      schedule: {cron: "*/15 * * * *"}
      on_index: true
"""
    )
    settings = load_config(config).replication
    assert (settings.workers, settings.lease_seconds, settings.poll_seconds) == (4, 60, 2)
    (spec,) = settings.rules
    assert spec.schedule_text == "cron:*/15 * * * *"
    rule = spec.rule("a.example", "b.example")
    assert rule.repositories.matches("acme/x/api")
    assert not rule.repositories.matches("acme/tmp/x")
    assert rule.rewrite.apply("acme/api") == "mirror/acme/api"
    assert rule.referrers == {"signature", "sbom"}
    assert rule.conflict.value == "report"


def test_a_replication_rule_renames_by_pattern(tmp_path: Path) -> None:
    config = tmp_path / "xregistry.yaml"
    config.write_text(
        r"""
replication:
  rules:
    - name: teams
      source: local
      destination: local
      include: ["acme/**"]
      rename:
        pattern: acme/(?P<team>[^/]+)/(.*)
        replacement: mirror/\g<team>-\2
"""
    )
    (spec,) = load_config(config).replication.rules
    assert spec.rename is not None
    assert spec.rename.replacement == r"mirror/\g<team>-\2"
    rewrite = spec.rule("a.example", "a.example").rewrite
    assert rewrite.apply("acme/web/api") == "mirror/web-api"


def test_invalid_yaml_is_one_line_with_its_line_number(tmp_path: Path) -> None:
    """PyYAML's own text runs over four lines (problem, mark, snippet, caret)."""
    config = tmp_path / "c.yaml"
    config.write_text("database: sqlite:///a.db\nlisten: [1, 2\nregistries: []\n")
    with pytest.raises(ConfigError) as refused:
        load_config(config)
    assert str(refused.value) == (
        f"{config}:3: not valid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence)"
    )
    config.write_bytes(b"listen: \xff\xfe\n")  # not UTF-8 text: PyYAML's reader error
    with pytest.raises(ConfigError) as unreadable:
        load_config(config)
    assert "\n" not in str(unreadable.value)
    assert str(unreadable.value).startswith(f"{config}:1: not valid YAML: ")
