"""``scripts/demo``: xregistry's main job on local data, end to end, in a few seconds.

Inspects the example image layout (a multi-platform image with an in-index BuildKit attestation
and a cosign SLSA attestation), then pushes it, digests unchanged, to a throwaway local
``docker-registry`` and inspects it there, where the attestation is found by its cosign tag.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console

from catalog.cli.inspect import render
from catalog.oci.client import RegistryClient
from catalog.oci.copy import copy_manifest, copy_tag
from catalog.oci.inspect import inspect
from catalog.oci.layout import LayoutRepository
from catalog.oci.reference import parse_reference
from catalog.oci.repository import RemoteRepository

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "slsa-container"
_CONFIG = """version: 0.1
log: {{level: error}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http: {{addr: 127.0.0.1:{port}}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_registry(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    config = workdir / "config.yml"
    config.write_text(_CONFIG.format(root=workdir / "storage", port=port))
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
            return process, f"127.0.0.1:{port}"
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    process.kill()
    raise SystemExit("docker-registry did not start within 10 s")


async def _push_example(host: str) -> None:
    layout = LayoutRepository(EXAMPLE)
    async with RegistryClient(host) as client:
        remote = RemoteRepository(client, "demo/slsa-container")
        await copy_manifest(layout, remote, await layout.get_manifest(layout.default_ref()), "v1")
        async for tag in layout.tags():
            await copy_tag(layout, remote, tag)


def main() -> None:
    console = Console()
    console.rule(f"xregistry inspect oci:{EXAMPLE}")
    render(asyncio.run(inspect(parse_reference(f"oci:{EXAMPLE}"))), console)
    if shutil.which("docker-registry") is None:
        console.print("(install Debian's docker-registry to see the registry half of the demo)")
        return
    with tempfile.TemporaryDirectory(prefix="xregistry-demo-") as tmp:
        process, host = _start_registry(Path(tmp))
        try:
            asyncio.run(_push_example(host))
            ref = f"{host}/demo/slsa-container:v1"
            console.rule(f"pushed byte for byte; xregistry inspect {ref}")
            render(asyncio.run(inspect(parse_reference(ref))), console)
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
