"""Named secrets: layout roots, what a server refuses that the local user's machine allows, and
registries stored before names."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.app.catalog_service import CatalogService
from catalog.errors import ConfigError, InvalidArgument
from catalog.oci.secrets import NamedCredentials, Secrets
from catalog.store.db import make_engine, session_factory, upgrade
from catalog.store.models import Registry
from catalog.store.registries import IndexStatus


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "shop").mkdir(parents=True)
    return tmp_path / "root"


def test_a_layout_is_a_path_below_its_named_root(root: Path) -> None:
    secrets = Secrets.of(layouts=[("layouts", root)])
    assert secrets.layout("oci:layouts/shop") == root / "shop"
    assert secrets.layout("oci:layouts") == root
    secrets.check_registry("oci:layouts/shop/api", None, None)


@pytest.mark.parametrize(
    "host",
    [
        "oci:/etc",
        "oci:./shop",
        "oci:nowhere/shop",
        "oci:layouts/../x",
        "oci:layouts//etc",
        "oci:layouts/a/./b",
        "oci:layouts/a\\..\\b",
    ],
)
def test_a_server_refuses_layouts_outside_its_roots(root: Path, host: str) -> None:
    secrets = Secrets.of(layouts=[("layouts", root)])
    with pytest.raises(InvalidArgument):
        secrets.check_registry(host, None, None)
    with pytest.raises(ConfigError):
        secrets.layout(host)  # a row stored before (or by another process) is refused too


def test_a_symbolic_link_out_of_the_root_is_refused_when_opened(root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    secrets = Secrets.of(layouts=[("layouts", root)])
    secrets.check_registry("oci:layouts/link", None, None)  # the grammar allows it ...
    with pytest.raises(ConfigError, match="leaves its layout root"):
        secrets.layout("oci:layouts/link")  # ... the file system does not


def test_the_local_user_may_name_any_directory(root: Path) -> None:
    local = Secrets.of(layouts=[("layouts", root)], local=True)
    assert local.layout("oci:/srv/elsewhere") == Path("/srv/elsewhere")
    assert local.layout("oci:layouts/shop") == root / "shop"  # a name wins over a path
    local.check_registry("oci:./relative", None, None)


def test_names_are_checked_for_their_hosts() -> None:
    robot = NamedCredentials("robot", env=("U", "P"), hosts=frozenset({"registry.acme.io"}))
    hub = NamedCredentials("hub", docker_config=True)  # docker's config is per host already
    secrets = Secrets.of([robot, hub], [("corp", Path("/etc/corp.pem"))])
    secrets.check_registry("registry.acme.io", "robot", "corp")
    secrets.check_registry("anything.example", "hub", None)
    for host, credentials, ca in [
        ("evil.example", "robot", None),
        ("registry.acme.io", "env:U:P", None),
        ("registry.acme.io", "Robot", None),
        ("registry.acme.io", None, "/etc/corp.pem"),
        ("registry.acme.io", None, "other"),
    ]:
        with pytest.raises(InvalidArgument):
            secrets.check_registry(host, credentials, ca)


async def test_a_row_stored_before_names_is_refused_when_opened(tmp_path: Path) -> None:
    """Rows keep what they stored (env:, file: references, paths): a server refuses to open them
    and says so in the registry's status; nothing is read."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:  # as an earlier version stored them
        session.add(Registry(name="env", host="old.test:5000", credentials_ref="env:U:P"))
        session.add(Registry(name="ca", host="old.test:5000", ca_file="/etc/passwd"))
        session.add(Registry(name="layout", host="oci:/etc"))
    catalog = CatalogService(sessions, secrets=Secrets())
    for name, why in [
        ("env", "credentials 'env:U:P' are not defined"),
        ("ca", "CA file '/etc/passwd' is not defined"),
        ("layout", "secrets.layouts"),
    ]:
        with pytest.raises(ConfigError, match=why):
            await catalog.index(name)
        view = catalog.get_registry(name)
        assert view.last_index_status == IndexStatus.FAILED
        assert why in (view.last_index_error or "")
    engine.dispose()
