"""SPDX 2.x JSON: the creators' tools and the streamed ``packages``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


def packages(
    reader: Reader, event: Event, path: str, limits: SbomLimits
) -> Iterator[PackageRecord]:
    """The packages of the ``packages`` array ``event`` opened, one at a time."""
    nodes = reader.node(event) if reader.plain() else None
    if nodes is None:
        for item, item_path in reader.elements(path):
            reader.expect_object(item, item_path)
            yield _package(reader, item_path, limits)
        return
    # A parsed, plain document: each package read straight from its node, with no event or
    # path made for it unless it is not what the fast read takes.
    max_text = limits.max_text
    for index, node in enumerate(nodes):
        record = _parsed_package(node, max_text) if type(node) is dict else None
        if record is None:
            item_path = f"{path}[{index}]"
            reader.expect_object(reader.event(node), item_path)
            record = _package(reader, item_path, limits)
        yield record


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
    get = text.get
    return _record(
        purl,
        get("name"),
        get("versionInfo"),
        get("supplier"),
        get("primaryPackagePurpose"),
        get("licenseConcluded"),
        get("licenseDeclared"),
    )


def _parsed_package(node: dict[str, Any], max_text: int) -> PackageRecord | None:
    """What ``_package`` reads from a package of a parsed, plain document (no string with a NUL
    or a surrogate), with dictionary look-ups; ``None`` when a field is not what ``_package``
    takes (a non-string, an over-long string, an odd ``externalRefs``), for ``_package`` to
    refuse it where and as it does. This runs once per package of every small SBOM: each field
    is read once, and checked in line."""
    get = node.get
    name = get("name")
    version = get("versionInfo")
    supplier = get("supplier")
    purpose = get("primaryPackagePurpose")
    concluded = get("licenseConcluded")
    declared = get("licenseDeclared")
    for value in (name, version, supplier, purpose, concluded, declared):  # _TEXT_FIELDS
        if value is not None and (type(value) is not str or len(value) > max_text):
            return None
    refs = get("externalRefs")
    purl = None
    if refs is not None:
        if type(refs) is not list:
            return None
        for ref in refs:
            if type(ref) is not dict:
                return None
            if purl is None and ref.get("referenceType") == "purl":
                purl = ref.get("referenceLocator")
                if type(purl) is not str or len(purl) > max_text:
                    return None
    return _record(purl, name, version, supplier, purpose, concluded, declared)


def _record(
    purl: str | None,
    name: str | None,
    version: str | None,
    supplier: str | None,
    purpose: str | None,
    concluded: str | None,
    declared: str | None,
) -> PackageRecord:
    """The record of a package with these fields (each a string or ``None``)."""
    return package(
        purl,
        name,
        version,
        _licenses(concluded, declared),
        None if supplier in NOT_A_VALUE else supplier,
        purpose,
    )


def _licenses(concluded: str | None, declared: str | None) -> tuple[str, ...]:
    """The package's distinct licenses, concluded first. (Not cached: a hostile SBOM's strings
    of up to ``max_text`` characters would make a cache hold hundreds of megabytes.)"""
    first = None if concluded in NOT_A_VALUE else concluded
    second = None if declared in NOT_A_VALUE or declared == first else declared
    if first is None:
        return () if second is None else (second,)
    return (first,) if second is None else (first, second)


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
