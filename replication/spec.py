"""A stored replication rule as users write it: in the config file, through gRPC, on the CLI.

Registries are named as the catalog knows them (``xregistry registry add``), so a rule uses
their hosts, TLS settings and credentials; :meth:`RuleSpec.rule` turns it into the engine's
:class:`replication.rules.Rule` once those hosts are known.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from catalog.errors import CatalogError, InvalidArgument
from catalog.oci.errors import InvalidReference
from catalog.oci.reference import validate_repository
from catalog.schedules import IndexSchedule
from catalog.store.registries import PATTERN_MAX, SCHEDULE_MAX, validate_name
from replication.rules import (
    ConflictPolicy,
    RepositoryFilter,
    Rewrite,
    Rule,
    TagFilter,
    parse_kinds,
)

# Caps on what a rule may hold: a stored rule is listed back, and a full page of ListRules
# (RULES_PAGE_MAX of them) must stay under the server's 4 MiB response limit. A rule at every
# cap is about 24 KiB once serialized, and RULE_BYTES_MAX bounds the whole in UTF-8 (characters
# outside ASCII take up to 4 bytes); tests/api/test_stored_limits.py lists a full page of them.
RULE_BYTES_MAX = 32 * 1024
GLOBS_MAX = 32  # of include, of exclude, of tag globs: each
TAG_GLOB_MAX = 128  # a tag is at most 128 characters
PATH_MAX = 255  # prefix, strip, rename replacement: repository paths
SEMVER_MAX = 255
RULES_PAGE_MAX = 100

_Glob = Annotated[str, StringConstraints(max_length=PATTERN_MAX)]
_TagGlob = Annotated[str, StringConstraints(max_length=TAG_GLOB_MAX)]
_Path = Annotated[str, StringConstraints(max_length=PATH_MAX)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TagSpec(_Strict):
    globs: list[_TagGlob] = Field(default_factory=list, max_length=GLOBS_MAX)
    regex: str | None = None  # catalog.regex caps patterns (MAX_PATTERN_LENGTH)
    semver: Annotated[str, StringConstraints(max_length=SEMVER_MAX)] | None = None
    newest: int | None = None
    newest_by: Literal["tag", "created"] = "tag"

    def filter(self) -> TagFilter:
        return TagFilter(
            globs=tuple(self.globs),
            regex=self.regex,
            semver=self.semver,
            newest=self.newest,
            newest_by=self.newest_by,
        )


class RenameSpec(_Strict):
    """Destination names by regular expression: ``pattern`` must match the whole source
    repository name; ``replacement`` uses its groups (``\\1``, ``\\g<name>``)."""

    pattern: str  # capped as a regex is
    replacement: _Path


class RuleSpec(_Strict):
    name: str
    source: str = Field(description="the source registry's name in the catalog")
    destination: str = Field(description="the destination registry's name in the catalog")
    include: list[_Glob] = Field(default_factory=lambda: ["**"], max_length=GLOBS_MAX)
    exclude: list[_Glob] = Field(default_factory=list, max_length=GLOBS_MAX)
    prefix: _Path = ""
    strip: _Path = ""
    rename: RenameSpec | None = Field(
        default=None, description="name destination repositories by pattern (not with prefix/strip)"
    )
    tags: TagSpec = Field(default_factory=TagSpec)
    referrers: str = "all"
    conflict: Literal["overwrite", "report"] = "overwrite"
    policy: str | None = Field(default=None, description="copy only images this policy allows")
    schedule: IndexSchedule | None = None
    on_index: bool = Field(default=False, description="run when indexing sees a tag move")

    @field_validator("name", "policy")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_name(value, "name")
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None

    @field_validator("source", "destination")
    @classmethod
    def _registries(cls, value: str) -> str:
        return validate_name(value)

    @model_validator(mode="after")
    def _rule(self) -> RuleSpec:
        try:
            self.rule("source.invalid", "destination.invalid")
        except CatalogError as exc:
            raise ValueError(str(exc)) from None
        if self.prefix:
            try:
                validate_repository(self.prefix.strip("/"))
            except InvalidReference as exc:
                raise ValueError(f"prefix {self.prefix!r}: {exc}") from None
        if self.schedule is not None and len(self.schedule.as_text()) > SCHEDULE_MAX:
            raise ValueError(f"a schedule has at most {SCHEDULE_MAX} characters")
        if self.source == self.destination and self.rewrite().identity:
            raise ValueError("source and destination are the same: give a prefix, strip or rename")
        size = len(self.model_dump_json().encode())
        if size > RULE_BYTES_MAX:
            raise ValueError(
                f"the rule is {size} bytes as JSON, over the limit of {RULE_BYTES_MAX}"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Without a rename, stored rules stay as they were before it existed, so a replica
        # not yet upgraded still reads them.
        data = handler(self)
        if self.rename is None and isinstance(data, dict):
            data.pop("rename", None)
        return data

    def rule(self, source_host: str, destination_host: str) -> Rule:
        return Rule(
            source=source_host,
            destination=destination_host,
            repositories=RepositoryFilter(include=tuple(self.include), exclude=tuple(self.exclude)),
            rewrite=self.rewrite(),
            tags=self.tags.filter(),
            referrers=parse_kinds(self.referrers),
            conflict=ConflictPolicy(self.conflict),
        )

    def rewrite(self) -> Rewrite:
        if self.rename is None:
            return Rewrite(prefix=self.prefix, strip=self.strip)
        return Rewrite(
            prefix=self.prefix,
            strip=self.strip,
            pattern=self.rename.pattern,
            replacement=self.rename.replacement,
        )

    @property
    def schedule_text(self) -> str | None:
        return self.schedule.as_text() if self.schedule is not None else None


def parse_spec(data: object) -> RuleSpec:
    """A rule from plain data (stored JSON, a request); problems → InvalidArgument."""
    try:
        return RuleSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise InvalidArgument(f"replication rule: {problems}") from None
