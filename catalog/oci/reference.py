"""Image references: the docker reference grammar, Docker Hub normalisation, and ``oci:`` layouts.

Grammar (distribution/reference)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]
    path-component := [a-z0-9]+ (separator [a-z0-9]+)*    separator := [_.] | "__" | "-"+
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}   (ASCII only: OCI distribution spec)
"""

import re
from pathlib import Path
from typing import NamedTuple

from catalog.oci.digest import Digest
from catalog.oci.errors import InvalidDigest, InvalidReference

DOCKER_HUB = "docker.io"
# Where a location names a directory of image layouts rather than a registry: ``oci:PATH``.
LAYOUT_PREFIX = "oci:"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
# ASCII only, matched whole (``$`` would let a trailing newline through, ``\w`` any letter).
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
# These two compiled at their first use (re's cache keeps them): a run between registries that
# parses no reference nor tag starts without compiling them (~3M instructions).
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
_MAX_NAME = 255


# Named tuples, not frozen dataclasses: a dataclass's generated methods are compiled in every
# process that imports it (~4M instructions each at a command's start).
class ImageReference(NamedTuple):
    """A reference to a manifest in a registry: by tag, by digest, or both."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def ref(self) -> str:
        """What goes in ``/v2/<name>/manifests/<ref>``: the digest when known, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


class LayoutReference(NamedTuple):
    """A reference into an OCI image-layout directory (``oci:PATH[:tag|@digest]``)."""

    path: Path
    tag: str | None = None
    digest: Digest | None = None

    def __str__(self) -> str:
        text = f"oci:{self.path}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


Reference = ImageReference | LayoutReference


def validate_tag(tag: str) -> str:
    if not re.fullmatch(_TAG, tag):
        raise InvalidReference(
            f"invalid tag {tag!r}: 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )
    return tag


def validate_repository(repository: str) -> str:
    if not repository:
        raise InvalidReference("empty repository name")
    if len(repository) > _MAX_NAME:
        raise InvalidReference(f"repository name longer than {_MAX_NAME} characters")
    for component in repository.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                f"invalid path component {component!r} in {repository!r}: use lower-case "
                "letters and digits, separated by '.', '_', '__' or '-'"
            )
    return repository


def _split_digest(text: str, original: str) -> tuple[str, Digest | None]:
    if "@" not in text:
        return text, None
    rest, _, digest_text = text.partition("@")
    try:
        return rest, Digest.parse(digest_text)
    except InvalidDigest as exc:
        raise InvalidReference(f"invalid reference {original!r}: {exc}") from None


def _is_domain(component: str) -> bool:
    return (
        "." in component
        or ":" in component
        or component == "localhost"
        or (component.lower() != component)
    )


def parse_image_reference(text: str, default_tag: str | None = None) -> ImageReference:
    """Parse a registry image reference, normalising Docker Hub names.

    ``ubuntu`` → ``docker.io/library/ubuntu``; ``default_tag`` fills in when there is neither a
    tag nor a digest.
    """
    original = text
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference {original!r}: empty or surrounded by spaces")
    if "://" in text:
        raise InvalidReference(
            f"invalid reference {original!r}: give HOST/REPOSITORY[:TAG], not a URL"
        )
    text, digest = _split_digest(text, original)
    first, slash, remainder = text.partition("/")
    if slash and _is_domain(first):
        registry, path = first, remainder
        if not re.match(_HOST, registry):
            raise InvalidReference(f"invalid reference {original!r}: bad registry host {first!r}")
    else:
        registry, path = DOCKER_HUB, text
    tag: str | None = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        validate_tag(tag)
    if registry.lower() in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    try:
        validate_repository(path)
    except InvalidReference as exc:
        raise InvalidReference(f"invalid reference {original!r}: {exc}") from None
    if tag is None and digest is None:
        tag = default_tag
    return ImageReference(registry, path, tag, digest)


def parse_layout_reference(text: str) -> LayoutReference:
    """Parse ``oci:PATH``, ``oci:PATH:TAG`` or ``oci:PATH@DIGEST``."""
    original = text
    body = text.removeprefix("oci:")
    if not body:
        raise InvalidReference(f"invalid reference {original!r}: oci: needs a directory path")
    body, digest = _split_digest(body, original)
    tag: str | None = None
    colon = body.rfind(":")
    if colon > body.rfind("/") and colon != -1:
        body, tag = body[:colon], body[colon + 1 :]
        validate_tag(tag)
    if not body:
        raise InvalidReference(f"invalid reference {original!r}: oci: needs a directory path")
    return LayoutReference(Path(body), tag, digest)


def parse_reference(text: str, default_tag: str | None = "latest") -> Reference:
    """Parse any reference the CLI accepts: a registry image or an ``oci:`` layout."""
    if text.startswith("oci:"):
        return parse_layout_reference(text)
    return parse_image_reference(text, default_tag)
