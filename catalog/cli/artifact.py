"""``xregistry artifact show``, ``xregistry find``, ``xregistry tag history``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from catalog.cli.context import Reader, with_reader
from catalog.cli.errors import reports_errors
from catalog.cli.hosts import all_registries, by_catalog_host, catalog_registry
from catalog.cli.output import echo_json, fields, output_option, table
from catalog.cli.pages import PAGE_MAX
from catalog.errors import InvalidArgument
from catalog.oci.reference import parse_image_reference

if TYPE_CHECKING:
    from catalog.store.views import ArtifactView


def render_artifact(view: ArtifactView) -> None:
    summary: list[tuple[str, object]] = [("digest", view.digest), ("mediaType", view.media_type)]
    if view.artifact_type:
        summary.append(("artifactType", view.artifact_type))
    summary.append(("size", view.size))
    if view.platform:
        p = view.platform
        summary.append(("platform", "/".join(x for x in (p.os, p.architecture, p.variant) if x)))
    fields(summary)
    if view.children:
        table(
            "platforms",
            ["os", "architecture", "variant", "digest"],
            [(c.os, c.architecture, c.variant, c.digest) for c in view.children],
        )
    table(
        "locations",
        ["registry", "repository", "tags", "last seen", "gone"],
        [
            (loc.registry, loc.repository, ",".join(loc.tags), loc.last_seen, loc.gone)
            for loc in view.locations
        ],
    )
    if view.signatures:
        table(
            "signatures",
            ["format", "identity", "issuer", "tlog index", "attachment"],
            [
                (s.format, s.identity or s.key_id, s.issuer, s.log_index, s.attachment_digest)
                for s in view.signatures
            ],
        )
    for a in view.attestations:
        rows: list[tuple[str, str | None]] = [("predicate type", a.predicate_type)]
        if a.provenance:
            prov = a.provenance
            rows += [
                ("builder id", prov.builder_id),
                ("build type", prov.build_type),
                ("source", prov.source_uri),
                ("commit", prov.source_digest),
                ("ref", prov.source_ref),
                ("entry point", prov.entry_point),
            ]
        table(f"attestation {a.attachment_digest}", ["field", "value"], rows)
    if view.sboms:
        table(
            "SBOMs",
            ["format", "spec", "tool", "packages", "attachment"],
            [
                (s.format, s.spec_version, s.tool, s.package_count, s.attachment_digest)
                for s in view.sboms
            ],
        )
    if view.attachments:
        table(
            "attachments",
            ["kind", "scheme", "artifactType", "digest"],
            [(a.kind, a.scheme, a.artifact_type, a.digest) for a in view.attachments],
        )


@click.group("artifact")
def artifact_group() -> None:
    """Artifacts in the catalog."""


@artifact_group.command("show")
@click.argument("reference")
@output_option
@reports_errors
@with_reader
def show(catalog: Reader, reference: str, output: str) -> None:
    """Everything the catalog knows of REFERENCE (HOST/REPO:TAG, or a digest sha256:…):
    platforms, where it lives, signatures, attestations with provenance, SBOMs.

    \b
    Examples:
      xregistry artifact show localhost:5000/demo/app:v1
      xregistry artifact show "$(xregistry digest localhost:5000/demo/app:v1)"   # by digest
      xregistry artifact show localhost:5000/demo/app:v1 -o json | jq '.signatures'
    """
    view = by_catalog_host(catalog.artifact, lambda: all_registries(catalog), reference)
    if output == "json":
        echo_json(view)
    else:
        render_artifact(view)


@click.command("find")
@click.argument("purl", required=False)
@click.option("--name", help="Package name (instead of a purl).")
@click.option("--version", "version", help="Package version, with --name.")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=PAGE_MAX),  # one page: more would be cut without a word
    default=100,
    show_default=True,
    help="At most this many matches.",
)
@output_option
@reports_errors
@with_reader
def find_command(
    catalog: Reader,
    purl: str | None,
    name: str | None,
    version: str | None,
    limit: int,
    output: str,
) -> None:
    """Which images contain a package: by PURL (with or without @version) or --name/--version.

    \b
    Examples:
      xregistry find pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1
      xregistry find --name openssl --version 3.0.2
    """
    if not purl and not name:
        raise click.UsageError("give a PURL or --name")
    page = catalog.find(purl=purl, name=name, version=version, size=limit)
    if output == "json":
        echo_json(page.items)
        return
    table(
        None,
        ["package", "version", "image digest", "where"],
        [
            (
                m.package.purl or m.package.name,
                m.package.version,
                m.artifact_digest,
                "; ".join(
                    f"{loc.registry}/{loc.repository}:{','.join(loc.tags) or '-'}"
                    for loc in m.locations
                ),
            )
            for m in page.items
        ],
    )


@click.group("tag")
def tag_group() -> None:
    """Tags in the catalog."""


@tag_group.command("history")
@click.argument("reference")
@output_option
@reports_errors
@with_reader
def history(catalog: Reader, reference: str, output: str) -> None:
    """What tag REFERENCE (HOST/REPO:TAG) pointed to over time, as the indexer observed it.

    \b
    Example:
      xregistry tag history localhost:5000/demo/app:v1
    """
    ref = parse_image_reference(reference, "latest")
    if ref.digest is not None:
        raise InvalidArgument("tag history needs a tag, not a digest")
    # The registry found as `tags --catalog` finds it, on the database and through a server.
    view = catalog_registry(catalog, ref.registry)
    page = catalog.tag_events(view.name, ref.repository, ref.tag or "latest", size=1000)
    if output == "json":
        echo_json(page.items)
        return
    table(
        None,
        ["observed", "from", "to"],
        [(e.observed_at, e.old_digest or "(new)", e.new_digest or "(gone)") for e in page.items],
    )
