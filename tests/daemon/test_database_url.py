"""$XREGISTRY_DATABASE_URL overrides the config's `database:` (the container's way, from a
Secret); set but empty is refused; the URL's password never reaches an error line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from catalog.app.config import ServeConfig, load_config, with_database_from
from catalog.errors import ConfigError
from tests.daemon.serving import PASSWORD, serve


def test_the_variable_overrides_the_file(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text("database: sqlite:///a.db\n")
    config = load_config(config_file)
    assert with_database_from({}, config) is config
    url = "postgresql://xregistry@db:5432/catalog"
    assert with_database_from({"XREGISTRY_DATABASE_URL": f" {url}\n"}, config).database == url
    with pytest.raises(ConfigError, match=r"\$XREGISTRY_DATABASE_URL is empty"):
        with_database_from({"XREGISTRY_DATABASE_URL": " "}, ServeConfig())


def test_unreachable_database_one_line_without_the_password(tmp_path: Path) -> None:
    # Bound, never listening: connections are refused for as long as the test holds it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        done = serve(tmp_path, f"postgresql://xregistry:{PASSWORD}@127.0.0.1:{port}/catalog")
    assert done.returncode == 7, done.stderr  # as the CLI on the same database (README)
    errors = [line for line in done.stderr.splitlines() if line.startswith("xregistry: error:")]
    assert errors == [errors[0]]
    assert errors[0].startswith("xregistry: error: the database cannot be reached: ")
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    assert not (tmp_path / "from-config.db").exists()  # the variable won over the file


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{PASSWORD}@[::1/db",
        f"mysql://u:{PASSWORD}@h/db",
        f"postgresql://u:{PASSWORD}@h:port/db",
    ],
)
def test_invalid_url_refused_without_echoing_it(tmp_path: Path, url: str) -> None:
    done = serve(tmp_path, url)
    assert done.returncode == 2, done.stderr
    assert "\nxregistry: error: " in f"\n{done.stderr}"
    assert PASSWORD not in done.stderr + done.stdout
