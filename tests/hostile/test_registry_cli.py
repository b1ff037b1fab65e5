"""``xregistry`` against hostile registries, as a user runs it: a subprocess whose time, exit code,
stderr and peak RSS are measured. Each ends in seconds with one line, a typed exit code (4: the
registry misbehaved or is unavailable; 5: authentication; 6: invalid content), no traceback, no
secret, and memory near what the CLI needs anyway (about 40 MB for an `inspect`)."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from pathlib import Path

from tests.hostile.measure import Run, run_cli
from tests.hostile.registry_fakes import (
    MANIFEST_DIGEST,
    Request,
    endless,
    head,
    image_then,
    send,
    send_json,
    serve,
)
from tests.hostile.test_registry_client import TOKEN_PIECE, token_registry

# Bounds with room over what was measured on the 2-core reference machine (in the report of
# each test's docstring): memory stays near the CLI's own, whatever the registry sends.
INSPECT_RSS = 96 * 1024 * 1024  # measured 38-47 MiB
INDEX_RSS = 192 * 1024 * 1024  # measured about 95 MiB: the store and its migrations come in
TIME_BOUND = 30.0


def one_line_error(run: Run, code: int, says: str, rss: int = INSPECT_RSS) -> str:
    assert run.code == code, run.stderr
    assert len(run.lines) == 1, run.stderr
    line = run.lines[0]
    assert line.startswith("xregistry: error: ")
    assert says in line
    assert "Traceback" not in run.stderr
    assert run.seconds < TIME_BOUND
    assert 0 < run.peak_rss < rss
    return line


def inspect(host: str, tmp: Path) -> Run:
    return run_cli(["inspect", f"{host}/app:v1"], tmp, TIME_BOUND + 10)


def test_inspect_with_an_endless_referrers_body(tmp_path: Path) -> None:
    """Measured: about 1 s and 50 MB; before: the whole stream was buffered."""

    async def hostile(req: Request, writer: asyncio.StreamWriter) -> None:
        await endless(writer, b'{"schemaVersion": 2, "manifests": [', b'{"x": 1}, ')

    with serve(image_then(hostile)) as fake:
        run = inspect(fake.host, tmp_path)
    one_line_error(run, 4, "the referrers index is larger than the 8388608-byte limit")


def test_inspect_with_a_gzip_bomb_for_referrers(tmp_path: Path) -> None:
    """Never inflated: the raw bytes are not an index, the registry misbehaves (exit 4)."""
    bomb = gzip.compress(b"[" * (64 * 1024 * 1024), compresslevel=9)

    async def hostile(req: Request, writer: asyncio.StreamWriter) -> None:
        encoded = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        await send(writer, 200, bomb, encoded)

    with serve(image_then(hostile)) as fake:
        run = inspect(fake.host, tmp_path)
    one_line_error(run, 4, "the referrers index is unusable: manifest refused: not valid JSON")


def test_inspect_with_a_100_mb_token(tmp_path: Path) -> None:
    size = 100 * 1024 * 1024

    async def answer(req: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(head(200, {"Content-Type": "application/json"}, size + 13))
        writer.write(b'{"token": "')
        block = TOKEN_PIECE.encode() * (64 * 1024 // len(TOKEN_PIECE))
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    with serve(token_registry(answer)) as fake:
        run = inspect(fake.host, tmp_path)
    one_line_error(run, 5, "answered more than 135168 bytes; refused")
    assert TOKEN_PIECE not in run.stderr


def test_inspect_with_a_token_the_registry_rejects(tmp_path: Path) -> None:
    secret = TOKEN_PIECE + "0123456789abcdef"

    async def answer(req: Request, writer: asyncio.StreamWriter) -> None:
        await send_json(writer, {"token": secret})

    with serve(token_registry(answer)) as fake:
        run = inspect(fake.host, tmp_path)
    one_line_error(run, 5, "UNAUTHORIZED: refused Bearer ***")
    assert TOKEN_PIECE not in run.stderr
    assert any(r.headers.get("authorization") == f"Bearer {secret}" for r in fake.requests)


def test_inspect_with_a_redirect_loop(tmp_path: Path) -> None:
    async def loop(req: Request, writer: asyncio.StreamWriter) -> None:
        await send(writer, 302, headers={"Location": req.target})

    with serve(loop) as fake:
        run = inspect(fake.host, tmp_path)
    one_line_error(run, 4, "redirect loop")


def index(host: str, tmp: Path) -> Run:
    """``registry add`` then ``index`` on a fresh SQLite catalog in ``tmp``."""
    env = {"XREGISTRY_DATABASE": f"sqlite:///{tmp / 'catalog.db'}"}
    added = run_cli(["registry", "add", "hostile", host], tmp, TIME_BOUND, env)
    assert added.code == 0, added.stderr
    return run_cli(["index", "hostile", "--output", "json"], tmp, TIME_BOUND + 10, env)


def test_index_with_an_endless_catalog(tmp_path: Path) -> None:
    """The issue's case: the server buffered 1.4 GB (peak RSS 6 GB)."""

    async def hostile(req: Request, writer: asyncio.StreamWriter) -> None:
        await endless(writer, b'{"repositories": [', b'"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ')

    with serve(image_then(hostile)) as fake:
        run = index(fake.host, tmp_path)
    says = "the repository list is larger than the 8388608-byte limit"
    one_line_error(run, 4, says, INDEX_RSS)
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        [(status, error)] = db.execute("select last_index_status, last_index_error from registries")
    assert status.lower() == "failed"
    assert says in error


def test_index_with_one_endless_tag_list_indexes_the_neighbour(tmp_path: Path) -> None:
    async def hostile(req: Request, writer: asyncio.StreamWriter) -> None:
        if req.path == "/v2/_catalog":
            await send_json(writer, {"repositories": ["app", "bad"]})
        elif req.path == "/v2/app/tags/list":
            await send_json(writer, {"name": "app", "tags": ["v1"]})
        elif req.path == "/v2/bad/tags/list":
            await endless(writer, b'{"name": "bad", "tags": [', b'"t", ')
        else:
            await send(writer, 404, b'{"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]}')

    with serve(image_then(hostile)) as fake:
        run = index(fake.host, tmp_path)
    assert run.code == 0, run.stderr
    assert run.seconds < TIME_BOUND
    assert 0 < run.peak_rss < INDEX_RSS
    assert "Traceback" not in run.stderr
    assert json.loads(run.stdout)["errors"] == 1
    with sqlite3.connect(tmp_path / "catalog.db") as db:
        tags = db.execute(
            "select r.name, t.name, t.digest from tags t"
            " join repositories r on r.id = t.repository_id"
        ).fetchall()
        errors = db.execute("select repository, reason from index_errors").fetchall()
    assert tags == [("app", "v1", MANIFEST_DIGEST)]
    [(repository, reason)] = errors
    assert repository == "bad"
    assert "the tag list is larger than the 8388608-byte limit" in reason
    assert "\n" not in reason
