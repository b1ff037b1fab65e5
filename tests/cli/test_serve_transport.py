"""`xregistry serve` as shipped: where it agrees to listen, one server per port, and the CLI
reaching it over TLS and mTLS with --ca-file/--cert/--key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from catalog.app.config import ServeConfig
from catalog.app.tls_config import INSECURE_SERVE_WORDS, exposure_warnings, is_loopback
from catalog.errors import ConfigError
from tests.api.peer import Pki, make_pki
from tests.harness.ports import free_port, lan_address
from tests.harness.registry import RunningRegistry

CLIENT_VARIABLES = ("CA_FILE", "CERT", "KEY", "TOKEN", "TOKEN_FILE", "SERVER", "DATABASE")


def environment(**extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k.removeprefix("XREGISTRY_") not in CLIENT_VARIABLES
    }
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def xregistry(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catalog.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env or environment(),
    )


def write_config(path: Path, **config: object) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@contextmanager
def serving(config: Path, cwd: Path, ready: tuple[str, ...]) -> Iterator[subprocess.Popen[str]]:
    """`serve --config` until ``xregistry <ready…>`` succeeds; SIGTERM after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog.cli.main", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=environment(),
    )
    try:
        deadline = time.monotonic() + 30
        while xregistry(*ready, cwd=cwd).returncode != 0:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "xregistry serve did not come up"
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def log_of(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    return output


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def refused_listen_addresses() -> list[str]:
    port = free_port()
    addresses = [f"0.0.0.0:{port}", f"[::]:{port}", f":{port}"]
    lan = lan_address()
    return addresses + ([f"{lan}:{port}"] if lan else [])


# Named without the port, which is picked at collection: pytest-xdist's workers must collect alike.
@pytest.mark.parametrize(
    "address", refused_listen_addresses(), ids=lambda address: address.rsplit(":", 1)[0] or "none"
)
def test_serve_refuses_a_network_address_without_tls_and_auth(tmp_path: Path, address: str) -> None:
    done = xregistry("serve", "--listen", address, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"xregistry: error: refusing to listen on {address} (not loopback)")
    assert "without TLS and authentication" in line
    assert not (tmp_path / "xregistry.db").exists()  # refused before anything was opened


def test_tls_alone_is_not_enough_and_near_miss_words_are_refused(tmp_path: Path, pki: Pki) -> None:
    tls = {"cert_file": str(pki.server.cert_file), "key_file": str(pki.server.key_file)}
    config = write_config(tmp_path / "tls.yaml", listen=f"0.0.0.0:{free_port()}", tls=tls)
    done = xregistry("serve", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "without authentication:" in line
    near = INSECURE_SERVE_WORDS.replace("unencrypted", "encrypted")
    config = write_config(tmp_path / "near.yaml", listen="0.0.0.0:1", insecure_serve=near)
    done = xregistry("serve", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "insecure_serve: must be exactly" in line
    assert not (tmp_path / "xregistry.db").exists()


@pytest.mark.parametrize(
    "words", [INSECURE_SERVE_WORDS.lower(), INSECURE_SERVE_WORDS + ".", " yes", True, 1, ""]
)
def test_only_the_exact_words_are_consent(words: object) -> None:
    with pytest.raises(ValidationError, match="insecure_serve"):
        ServeConfig.model_validate({"insecure_serve": words})
    assert ServeConfig(insecure_serve=INSECURE_SERVE_WORDS).insecure_serve == INSECURE_SERVE_WORDS


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.0.0.2:50051", True),
        ("[::1]:50051", True),
        ("localhost:50051", True),
        ("[::ffff:127.0.0.1]:50051", True),
        ("unix:/run/xregistry.sock", True),
        ("unix-abstract:xregistry", False),  # any process in the network namespace
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("192.0.2.2:50051", False),
        ("10.0.0.1", False),
    ],
)
def test_what_counts_as_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize(
    ("auth", "authenticated"),
    [
        (None, False),
        ({"tokens": [{"name": "ci", "sha256": "00" * 32}]}, True),
        ({"oidc": [{"issuer": "https://issuer.example", "audience": "xregistry"}]}, True),
        ({"certificates": True}, True),
    ],
)
def test_authentication_is_configured_when_auth_names_a_way_in(
    auth: dict[str, object] | None, authenticated: bool, tmp_path: Path
) -> None:
    tls: dict[str, object] = {"cert_file": tmp_path / "c", "key_file": tmp_path / "k"}
    if auth and auth.get("certificates"):  # principals from certificates need them required
        tls.update(client_ca_file=tmp_path / "ca", require_client_cert=True)
    config = ServeConfig.model_validate({"listen": "0.0.0.0:50051", "tls": tls, "auth": auth})
    assert config.authenticated is authenticated
    if authenticated:
        assert config.exposure_warnings() == []
    else:
        with pytest.raises(ConfigError, match="without authentication:"):
            config.exposure_warnings()


def test_tls_and_authentication_may_listen_anywhere_quietly() -> None:
    quiet = exposure_warnings("0.0.0.0:50051", tls=True, authenticated=True, insecure_serve=None)
    assert quiet == []
    with pytest.raises(ConfigError, match="without TLS:"):
        exposure_warnings("0.0.0.0:50051", tls=False, authenticated=True, insecure_serve=None)


def test_the_exact_words_let_it_listen_on_every_interface(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "open.yaml",
        database=f"sqlite:///{tmp_path / 'open.db'}",
        listen=f"0.0.0.0:{port}",
        insecure_serve=INSECURE_SERVE_WORDS,
    )
    ready = ("--server", f"127.0.0.1:{port}", "registry", "list")
    with serving(config, tmp_path, ready) as process:
        lan = lan_address()
        if lan is not None:
            assert (
                xregistry("--server", f"{lan}:{port}", "registry", "list", cwd=tmp_path).returncode
                == 0
            )
        output = log_of(process)
    assert (
        f"listening on 0.0.0.0:{port} without TLS or authentication, as insecure_serve accepts"
        in output
    )


def test_loopback_serves_unauthenticated_and_says_so_and_a_taken_port_fails(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "dev.yaml", database=f"sqlite:///{tmp_path / 'a.db'}", listen=f"127.0.0.1:{port}"
    )
    ready = ("--server", f"127.0.0.1:{port}", "registry", "list")
    with serving(config, tmp_path, ready) as first:
        xregistry(
            "--server",
            f"127.0.0.1:{port}",
            "registry",
            "add",
            "only-a",
            "localhost:5000",
            cwd=tmp_path,
        )
        second = write_config(
            tmp_path / "second.yaml",
            database=f"sqlite:///{tmp_path / 'b.db'}",
            listen=f"127.0.0.1:{port}",
        )
        done = xregistry("serve", "--config", str(second), cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last == (
            f"xregistry: error: cannot listen on 127.0.0.1:{port}: the address is in use "
            "(is another xregistry serve running?)"
        )
        assert "add_port" not in done.stderr  # no grpc log lines around it
        assert not (tmp_path / "b.db").exists()  # failed before opening its database
        # Every answer still comes from the first server's catalog.
        for _ in range(2):
            listed = xregistry(
                "--server", f"127.0.0.1:{port}", "registry", "list", "-o", "json", cwd=tmp_path
            )
            assert [r["name"] for r in json.loads(listed.stdout)] == ["only-a"]
        output = log_of(first)
    assert (
        f"listening on 127.0.0.1:{port} without TLS or authentication: for development only"
        in output
    )


def test_the_cli_reaches_an_mtls_server_with_its_options(
    tmp_path: Path, pki: Pki, fresh_registry: RunningRegistry
) -> None:
    port = free_port()
    server = f"127.0.0.1:{port}"
    config = write_config(
        tmp_path / "mtls.yaml",
        database=f"sqlite:///{tmp_path / 'served.db'}",
        listen=server,
        tls={
            "cert_file": str(pki.server.cert_file),
            "key_file": str(pki.server.key_file),
            "client_ca_file": str(pki.ca.cert_file),
            "require_client_cert": True,
        },
        registries=[{"name": "local", "host": fresh_registry.host}],
    )
    options = (
        "--server", server,
        "--ca-file", str(pki.ca.cert_file),
        "--cert", str(pki.client.cert_file),
        "--key", str(pki.client.key_file),
    )  # fmt: skip
    with serving(config, tmp_path, (*options, "registry", "list")) as process:
        listed = xregistry(*options, "registry", "list", "-o", "json", cwd=tmp_path)
        assert [r["name"] for r in json.loads(listed.stdout)] == ["local"]
        # A streamed call: the asyncio channel carries the same credentials.
        indexed = xregistry(*options, "index", "local", "-o", "json", cwd=tmp_path)
        assert indexed.returncode == 0, indexed.stderr
        assert json.loads(indexed.stdout)["errors"] == 0
        # The same through the environment.
        env = environment(
            XREGISTRY_SERVER=server,
            XREGISTRY_CA_FILE=str(pki.ca.cert_file),
            XREGISTRY_CERT=str(pki.client.cert_file),
            XREGISTRY_KEY=str(pki.client.key_file),
        )
        assert xregistry("registry", "list", cwd=tmp_path, env=env).returncode == 0
        # Without a client certificate, or in plain text, the server is out of reach.
        for refused in (
            ("--server", server, "--ca-file", str(pki.ca.cert_file)),
            ("--server", server),
        ):
            done = xregistry(*refused, "registry", "list", cwd=tmp_path)
            assert done.returncode == 7  # a handshake refused is a server out of reach
            (line,) = done.stderr.strip().splitlines()
            assert line.startswith(
                f"xregistry: error: cannot reach the xregistry server at {server}:"
            )
        half = xregistry(
            *options[:4], "--cert", str(pki.client.cert_file), "registry", "list", cwd=tmp_path
        )
        assert half.returncode == 2
        assert "--cert and --key go together" in half.stderr
        output = log_of(process)
    assert f"xregistry serving on port {port} (mTLS)" in output
    assert not (tmp_path / "xregistry.db").exists()


def test_files_that_are_not_pem_are_bad_input_in_one_line(tmp_path: Path) -> None:
    """gRPC takes any bytes as a certificate or key, then fails every call as a server out of
    reach and logs its own lines: the CLI reads them first."""
    pki = make_pki(tmp_path)
    text = tmp_path / "hostname"
    text.write_text("not a certificate\n")
    good = (pki.ca.cert_file, pki.client.cert_file, pki.client.key_file)
    for n, (what, says) in enumerate(
        (
            ("--ca-file", "not PEM certificates"),
            ("--cert", "not PEM certificates"),
            ("--key", "not an unencrypted PEM private key"),
        )
    ):
        files = [str(path) for path in good]
        files[n] = str(text)
        ca, cert, key = files
        done = xregistry(
            *("--server", "127.0.0.1:1", "--ca-file", ca, "--cert", cert, "--key", key),
            *("registry", "list"),
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [f"xregistry: error: {what} {text}: {says}"]


def test_the_image_starts_only_from_a_mounted_config(tmp_path: Path) -> None:
    """The Dockerfile's command names no address of its own: without the config it stops."""
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    (command,) = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    args = json.loads(command.removeprefix("CMD "))
    assert args[:2] == ["serve", "--config"]
    assert not any("0.0.0.0" in arg or arg == "--listen" for arg in args)
    if Path(args[2]).exists():
        pytest.skip(f"{args[2]} exists on this machine")
    done = xregistry(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "does not exist" in done.stderr


def test_certificate_principals_need_required_client_certificates(tmp_path: Path) -> None:
    """grpc asks for a client certificate only when it requires one, so `auth.certificates`
    without a required client CA would authenticate nobody: refused when the config loads."""
    tls = {"cert_file": tmp_path / "c", "key_file": tmp_path / "k"}
    with pytest.raises(ValueError, match=r"auth\.certificates needs tls\.client_ca_file"):
        ServeConfig.model_validate({"tls": tls, "auth": {"certificates": True}})
    # An `auth` naming no way in is refused too, so "authenticated" cannot be a bare section.
    with pytest.raises(ValueError, match="auth needs at least one of"):
        ServeConfig.model_validate({"auth": {"bindings": [{"role": "admin", "principals": []}]}})
