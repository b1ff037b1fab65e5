"""What a replication copies: plain rules, validated when built.

A rule selects source repositories by include/exclude globs, rewrites their names for the
destination, filters image tags, and says which referrer kinds travel with the images and what
to do when a destination tag already points elsewhere.
"""

from enum import StrEnum
from typing import TYPE_CHECKING, Literal, NamedTuple

from catalog.errors import InvalidArgument
from catalog.oci.errors import InvalidReference
from catalog.oci.globs import check_repository_glob, is_glob, matcher
from catalog.oci.reference import validate_repository
from catalog.values import Value

if TYPE_CHECKING:
    from catalog.formats.classify import AttachmentKind
    from catalog.regex import LinearRegex, Template
    from replication.versions import VersionRange

ALL_KINDS: "frozenset[AttachmentKind]" = frozenset({"signature", "attestation", "sbom", "other"})
_KIND_NAMES: "dict[str, AttachmentKind]" = {
    "signature": "signature",
    "signatures": "signature",
    "attestation": "attestation",
    "attestations": "attestation",
    "sbom": "sbom",
    "sboms": "sbom",
    "other": "other",
    "others": "other",
}

NewestBy = Literal["tag", "created"]
# The distribution spec's limits: a tag is at most 128 characters, and registries cap a
# repository name at 255; longer strings from a registry are never matched against a pattern.
MAX_TAG_LENGTH = 128
MAX_NAME_LENGTH = 255


class ConflictPolicy(StrEnum):
    """What to do when the destination tag points to another digest than the source's."""

    OVERWRITE = "overwrite"  # the destination mirrors the source
    REPORT = "report"  # leave the destination tag alone and report the image as a conflict


def parse_kinds(text: str) -> "frozenset[AttachmentKind]":
    """``all``, ``none``, or a comma list of signatures, attestations, sboms, other."""
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return ALL_KINDS
    if words == ["none"]:
        return frozenset()
    unknown = [w for w in words if w not in _KIND_NAMES]
    if unknown or not words:
        raise InvalidArgument(
            f"referrer kinds {text!r}: use all, none, or a comma list of "
            "signatures, attestations, sboms, other"
        )
    return frozenset(_KIND_NAMES[w] for w in words)


# Every name RE2's ``.*`` (the glob ``**``) matches: any without a line break.
_EVERY_NAME = None


class RepositoryFilter(Value):
    __slots__ = ("_exclude", "_include", "exclude", "include")
    _FIELDS = ("include", "exclude")
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    _include: "LinearRegex | None"  # None: ``**`` alone, matched without RE2
    _exclude: "LinearRegex | None"  # None: no exclude

    def __init__(self, include: tuple[str, ...] = ("**",), exclude: tuple[str, ...] = ()) -> None:
        if not include:
            raise InvalidArgument("a rule needs at least one repository include pattern")
        for pattern in (*include, *exclude):
            try:
                check_repository_glob(pattern)
            except ValueError as exc:
                raise InvalidArgument(str(exc)) from None
        try:
            self._set(
                include=include,
                exclude=exclude,
                # The common rule (``**``, no exclude) needs no pattern: a command copying a
                # whole registry starts without loading RE2.
                _include=_EVERY_NAME if include == ("**",) else matcher(include),
                _exclude=matcher(exclude) if exclude else None,
            )
        except ValueError as exc:  # so many globs that RE2's memory budget is exceeded
            raise InvalidArgument(f"repository globs: {exc}") from None

    def matches(self, repository: str) -> bool:
        if self._include is None:
            included = "\n" not in repository  # what ``.*`` matches
        else:
            included = self._include.fullmatches(repository)
        return included and not (
            self._exclude is not None and self._exclude.fullmatches(repository)
        )

    def named(self) -> list[str] | None:
        """The repositories when every include names one outright: no catalog listing needed
        (many registries refuse ``_catalog``)."""
        if any(is_glob(p) for p in self.include):
            return None
        return [r for r in self.include if self.matches(r)]


class Rewrite(Value):
    """How a source repository is named at the destination: one of two ways.

    * ``prefix``/``strip``: ``prefix`` + "/" + the source name without a leading ``strip``
      (a name that does not start with ``strip`` keeps it).
    * ``pattern``/``replacement``: a regular expression (RE2 syntax, see ``catalog.regex``)
      that must match the whole source name, and a replacement with its groups (``\\1``,
      ``\\g<name>``, ``\\\\`` for a backslash; nothing else is an escape): pattern
      ``acme/(?P<team>[^/]+)/(.*)`` with ``mirror/\\g<team>-\\2`` copies ``acme/web/api`` to
      ``mirror/web-api``. A selected repository the pattern does not match is an error for that
      repository (its run reports it failed), never copied under its own name.

    Either way the result must be a valid repository name.
    """

    __slots__ = ("_pattern", "_replacement", "pattern", "prefix", "replacement", "strip")
    _FIELDS = ("prefix", "strip", "pattern", "replacement")
    prefix: str
    strip: str
    pattern: str | None
    replacement: str
    _pattern: "LinearRegex | None"
    _replacement: "Template | None"

    def __init__(
        self, prefix: str = "", strip: str = "", pattern: str | None = None, replacement: str = ""
    ) -> None:
        compiled = expanded = None
        if pattern is not None:
            if not pattern:
                raise InvalidArgument("a rename needs a pattern")
            if prefix or strip:
                raise InvalidArgument(
                    "a rename pattern names the whole destination repository: "
                    "give it or prefix/strip, not both"
                )
            if not replacement:
                raise InvalidArgument(f"rename pattern {pattern!r} needs a replacement")
            from catalog.regex import compile_linear, template  # (a plain prefix needs no RE2)

            try:
                compiled = compile_linear(pattern)
            except ValueError as exc:
                raise InvalidArgument(f"rename pattern {pattern!r}: {exc}") from None
            try:
                expanded = template(replacement, compiled)
            except ValueError as exc:
                raise InvalidArgument(f"rename replacement {replacement!r}: {exc}") from None
        elif replacement:
            raise InvalidArgument("a rename replacement needs a pattern")
        self._set(
            prefix=prefix,
            strip=strip,
            pattern=pattern,
            replacement=replacement,
            _pattern=compiled,
            _replacement=expanded,
        )

    @property
    def identity(self) -> bool:
        """Whether every name stays as it is (no prefix, strip or pattern)."""
        return self.pattern is None and not (self.prefix or self.strip)

    def apply(self, repository: str) -> str:
        if self._pattern is not None and self._replacement is not None:
            if len(repository) > MAX_NAME_LENGTH:
                raise InvalidArgument(
                    f"a repository name of {len(repository)} characters is not renamed "
                    f"(at most {MAX_NAME_LENGTH})"
                )
            found = self._pattern.fullmatch(repository)
            if found is None:
                raise InvalidArgument(
                    f"{repository} does not match the rename pattern {self.pattern!r}"
                )
            target = self._replacement.expand(found)
        else:
            name = repository
            if self.strip and name.startswith(self.strip):
                name = name[len(self.strip) :].lstrip("/")
            target = "/".join(p for p in (self.prefix.strip("/"), name) if p)
        try:
            return validate_repository(target)
        except InvalidReference as exc:
            raise InvalidArgument(f"{repository} rewrites to an invalid name: {exc}") from None


class TagFilter(Value):
    """Image tags to copy: every given condition must hold (globs: any of them)."""

    __slots__ = ("_globs", "_range", "_regex", "globs", "newest", "newest_by", "regex", "semver")
    _FIELDS = ("globs", "regex", "semver", "newest", "newest_by")
    globs: tuple[str, ...]
    regex: str | None
    semver: str | None
    newest: int | None  # then keep only the newest N of what passed
    newest_by: NewestBy  # version order of the tags, or the image's creation time
    _regex: "LinearRegex | None"
    _range: "VersionRange | None"
    _globs: "LinearRegex | None"

    def __init__(
        self,
        globs: tuple[str, ...] = (),
        regex: str | None = None,
        semver: str | None = None,
        newest: int | None = None,
        newest_by: NewestBy = "tag",
    ) -> None:
        for glob in globs:  # RE2 globs (catalog.oci.globs), as the README says
            if "[" in glob or "]" in glob:
                raise InvalidArgument(
                    f"tag glob {glob!r}: globs have * and ?, no [...] classes (use a tag regex)"
                )
        compiled = None
        if regex is not None:
            from catalog.regex import compile_linear  # (a rule without a tag regex needs no RE2)

            try:
                compiled = compile_linear(regex)
            except ValueError as exc:
                raise InvalidArgument(f"tag regex {regex!r}: {exc}") from None
        parsed = None
        if semver is not None:
            # Imported by the rules that use versions only (node-semver, its ranges).
            from replication.versions import VersionRange

            parsed = VersionRange.parse(semver)
        if newest is not None and newest < 1:
            raise InvalidArgument("newest N needs N >= 1")
        self._set(
            globs=globs,
            regex=regex,
            semver=semver,
            newest=newest,
            newest_by=newest_by,
            _globs=matcher(globs) if globs else None,
            _regex=compiled,
            _range=parsed,
        )

    def admits(self, tag: str) -> bool:
        """The per-tag conditions (all but newest N); a tag longer than the distribution
        spec's 128 characters is not a tag and passes none."""
        if len(tag) > MAX_TAG_LENGTH:
            return False
        if self._globs is not None and not self._globs.fullmatches(tag):
            return False
        if self._regex is not None and not self._regex.fullmatches(tag):
            return False
        if self._range is not None:
            from replication.versions import tag_version

            version = tag_version(tag)
            return version is not None and version in self._range
        return True


class Rule(NamedTuple):
    source: str  # registry host[:port]
    destination: str
    repositories: RepositoryFilter = RepositoryFilter()
    rewrite: Rewrite = Rewrite()
    tags: TagFilter = TagFilter()
    referrers: "frozenset[AttachmentKind]" = ALL_KINDS
    conflict: ConflictPolicy = ConflictPolicy.OVERWRITE
