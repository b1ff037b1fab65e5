"""SPDX 2.x JSON: the creators' tools and the streamed ``packages``."""

from __future__ import annotations

from collections.abc import Iterator

from catalog.formats import _json as j
from catalog.formats._limits import SbomLimits
from catalog.formats._reader import Event, Reader
from catalog.formats.packages import NOT_A_VALUE, package
from catalog.formats.records import PackageRecord

_TEXT_FIELDS = frozenset(
    {
        "name",
        "versionInfo",
        "supplier",
        "primaryPackagePurpose",
        "licenseConcluded",
        "licenseDeclared",
    }
)
_TOOL = "Tool:"


def tools(reader: Reader, event: Event, path: str, limits: SbomLimits) -> tuple[str, ...]:
    """``creationInfo.creators`` entries ``"Tool: name-version"``, without the prefix."""
    reader.expect_object(event, path)
    found: list[str] = []
    for key, value in reader.fields(path):
        key_path = f"{path}.{key}"
        if key != "creators" or value[0] == "null":
            reader.skip(value, key_path)
            continue
        reader.expect_array(value, key_path)
        for item, item_path in reader.elements(key_path):
            creator = reader.text(item, item_path, max_len=limits.max_text)
            if creator is not None and creator.startswith(_TOOL):
                if len(found) == limits.max_tools:
                    reader.fail(key_path, f"more than {limits.max_tools} tools")
                found.append(creator.removeprefix(_TOOL).strip())
    return tuple(found)


def packages(reader: Reader, path: str, limits: SbomLimits) -> Iterator[PackageRecord]:
    """The packages of the ``packages`` array just opened, one at a time."""
    for event, item_path in reader.elements(path):
        reader.expect_object(event, item_path)
        yield _package(reader, item_path, limits)


def _package(reader: Reader, path: str, limits: SbomLimits) -> PackageRecord:
    text: dict[str, str | None] = {}
    purl = None
    for key, event in reader.fields(path):
        if key in _TEXT_FIELDS:
            text[key] = reader.text(event, f"{path}.{key}", max_len=limits.max_text)
        elif key == "externalRefs" and event[0] != "null":
            purl = _purl(reader, event, f"{path}.{key}", limits)
        else:
            reader.skip(event, path)  # a syntax error in it is reported at the package
    licenses = (text.get("licenseConcluded"), text.get("licenseDeclared"))
    return package(
        raw_purl=purl,
        name=text.get("name"),
        version=text.get("versionInfo"),
        licenses=tuple(
            dict.fromkeys(x for x in licenses if x is not None and x not in NOT_A_VALUE)
        ),
        supplier=None if text.get("supplier") in NOT_A_VALUE else text.get("supplier"),
        kind=text.get("primaryPackagePurpose"),
    )


def _purl(reader: Reader, event: Event, path: str, limits: SbomLimits) -> str | None:
    """The first ``externalRefs`` entry of type ``purl`` (SPDX 2.2 and 2.3 spell the category
    differently; the type is the same)."""
    reader.expect_array(event, path)
    found = None
    for item, item_path in reader.elements(path):
        ref = j.as_object(reader.value(item, item_path), item_path)
        if found is None and ref.get("referenceType") == "purl":
            found = j.req_str(ref, "referenceLocator", item_path, max_len=limits.max_text)
    return found
