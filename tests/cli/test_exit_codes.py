"""README's exit-code table is the code's: every code the CLI can exit with is a row, each
``EXIT_*`` of catalog/cli/errors.py is the row that names it, every domain error exits as its
gRPC status code says (catalog/api/errors.py), and exits alike on the database and through a
real gRPC server that maps it (status code and ``xregistry-error-kind``)."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from catalog import errors as domain
from catalog.api.errors import STATUS_CODES, ErrorMappingInterceptor, status_code_for
from catalog.cli import errors as cli
from catalog.cli.call_errors import call_error
from catalog.oci import errors as oci

README = Path(__file__).resolve().parents[2] / "README.md"

# What each code's row says first (README: "| `N` | meaning |").
MEANINGS = {
    0: "done",
    cli.EXIT_ERROR: "`verify`: denied",
    cli.EXIT_USAGE: "bad input",
    cli.EXIT_NOT_FOUND: "not found",
    cli.EXIT_UNAVAILABLE: "a registry unreachable or failing",
    cli.EXIT_AUTH: "authentication or permission refused",
    cli.EXIT_INVALID_CONTENT: "content that does not match its digest, or is invalid",
    cli.EXIT_SERVER_UNREACHABLE: "the catalog cannot be reached",
    cli.EXIT_CONFLICT: "conflict",
}
# A status code that means one thing means one exit code (FAILED_PRECONDITION covers several:
# invalid content, a config, a missing layout; UNKNOWN and DEADLINE_EXCEEDED are "any error").
BY_STATUS = {
    grpc.StatusCode.NOT_FOUND: cli.EXIT_NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: cli.EXIT_CONFLICT,
    grpc.StatusCode.INVALID_ARGUMENT: cli.EXIT_USAGE,
    grpc.StatusCode.PERMISSION_DENIED: cli.EXIT_AUTH,
    grpc.StatusCode.UNAVAILABLE: cli.EXIT_UNAVAILABLE,
}


def readme_table() -> dict[int, str]:
    text = README.read_text()
    table = text.split("\n| code | meaning |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows = [re.fullmatch(r"\| `(\d+)` \| (.+) \|", line) for line in table.splitlines()]
    assert all(rows), table
    return {int(row.group(1)): row.group(2) for row in rows if row}


def error_classes() -> list[type[Exception]]:
    """Every exception class of the two domain modules."""
    return [
        cls
        for module in (domain, oci)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == module.__name__
    ]


def an_error(cls: type[Exception]) -> Exception:
    made: dict[type[Exception], Callable[[], Exception]] = {
        oci.DigestMismatch: lambda: oci.DigestMismatch("sha256:" + "a" * 64, "sha256:" + "b" * 64),
        oci.SizeMismatch: lambda: oci.SizeMismatch(10, 11),
        oci.ManifestTooLarge: lambda: oci.ManifestTooLarge(4 << 20),
    }
    return made.get(cls, lambda: cls("what went wrong"))()


def test_the_readme_table_has_every_code_and_names_it_as_the_code_does() -> None:
    table = readme_table()
    codes = {v for k, v in vars(cli).items() if k.startswith("EXIT_")}
    assert set(table) == codes | {0}
    for code, meaning in MEANINGS.items():
        assert table[code].startswith(meaning), (code, table[code])


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_exits_with_a_code_of_the_table_as_its_status_says(
    cls: type[Exception],
) -> None:
    code = cli.exit_code(an_error(cls))
    assert code in readme_table()
    if cls in (domain.CatalogError, oci.OCIError):
        return  # bases, raised as themselves by no servicer (INTERNAL if one did)
    status = status_code_for(cls)
    assert status is not None, f"{cls.__name__} has no gRPC status code"
    expected = BY_STATUS.get(status, code)
    if cls is domain.CatalogUnreachable:  # UNAVAILABLE (retry later), but the server's database
        expected = cli.EXIT_SERVER_UNREACHABLE  # is the catalog itself: 7, as on the database
    assert code == expected, (cls.__name__, status, code)


class _Raising(grpc.GenericRpcHandler):
    """``/test.Raise/NAME`` raises an error of the domain class NAME (bytes in, bytes out)."""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any] | None:
        name = details.method.rpartition("/")[2]
        classes = {cls.__name__: cls for cls in error_classes()}
        if name not in classes:
            return None

        async def behave(request: bytes, context: Any) -> bytes:
            raise an_error(classes[name])

        return grpc.unary_unary_rpc_method_handler(behave)


@pytest.fixture
async def raising() -> AsyncIterator[str]:
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
    server.add_generic_rpc_handlers([_Raising()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(grace=None)


async def test_every_error_exits_alike_through_a_server(raising: str) -> None:
    assert {cls for cls, _ in STATUS_CODES} <= set(error_classes())
    async with grpc.aio.insecure_channel(raising) as channel:
        for cls in error_classes():
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                f"/test.Raise/{cls.__name__}"
            )
            with pytest.raises(grpc.RpcError) as failed:
                await call(b"", timeout=10)
            relayed = call_error(raising, failed.value, answers=True)
            assert cli.exit_code(relayed) == cli.exit_code(an_error(cls)), cls.__name__
