"""CycloneDX JSON (1.4 to 1.7): metadata tools and name, and the streamed, nested ``components``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from catalog.formats import _json as j
from catalog.formats._limits import SbomLimits
from catalog.formats._reader import Event, Reader
from catalog.formats.packages import package
from catalog.formats.records import PackageRecord

_TEXT_FIELDS = frozenset({"name", "version", "purl", "type", "group"})
_WANTED = _TEXT_FIELDS | {"licenses", "supplier", "components"}


def metadata(
    reader: Reader, event: Event, path: str, limits: SbomLimits
) -> tuple[tuple[str, ...], str | None]:
    """(tools, the described component's name) from ``metadata``."""
    reader.expect_object(event, path)
    tools: tuple[str, ...] = ()
    name = None
    for key, value in reader.fields(path):
        key_path = f"{path}.{key}"
        if key == "tools" and value[0] != "null":
            tools = _tools(reader, value, key_path, limits)
        elif key == "component" and value[0] != "null":
            name = _component_name(reader, value, key_path, limits)
        else:
            reader.skip(value, key_path)
    return tools, name


def components(
    reader: Reader, event: Event, path: str, limits: SbomLimits
) -> Iterator[PackageRecord]:
    """Every component of the ``components`` array ``event`` opened, nested ones included.

    A component is yielded after its children: its own fields may follow its ``components``.
    """
    nodes = reader.node(event) if reader.plain() else None
    if nodes is None:
        yield from _elements(reader, path, limits, 1)
        return
    # A parsed, plain document: each top-level component, its nested ones with it, read straight
    # from its node; one that is not what the reads take goes to them (to be refused where and
    # as they do). As SPDX's packages: 2.8 -> 1.8 ms a 200-component SBOM's rows.
    for index, node in enumerate(nodes):
        found: list[PackageRecord] = []
        if _parsed(found, node, limits, 1):
            yield from found
        else:
            yield from _component(reader, reader.event(node), f"{path}[{index}]", limits, 1)


def _elements(
    reader: Reader, path: str, limits: SbomLimits, nesting: int
) -> Iterator[PackageRecord]:
    for event, item_path in reader.elements(path):
        yield from _component(reader, event, item_path, limits, nesting)


def _component(
    reader: Reader, event: Event, item_path: str, limits: SbomLimits, nesting: int
) -> Iterator[PackageRecord]:
    if nesting > limits.max_component_nesting:
        reader.fail(item_path, f"components nested deeper than {limits.max_component_nesting}")
    reader.expect_object(event, item_path)
    text: dict[str, str | None] = {}
    licenses: tuple[str, ...] = ()
    supplier = None
    for key, value in reader.fields(item_path):
        if key not in _WANTED or value[0] == "null":
            # The hot path: most of a component is skipped; a syntax error in it is reported
            # at the component, which is close enough.
            reader.skip(value, item_path)
            continue
        key_path = f"{item_path}.{key}"
        if key in _TEXT_FIELDS:
            text[key] = reader.text(value, key_path, max_len=limits.max_text)
        elif key == "licenses":
            licenses = _licenses(reader.value(value, key_path), key_path, limits)
        elif key == "supplier":
            entity = j.as_object(reader.value(value, key_path), key_path)
            supplier = j.opt_str(entity, "name", key_path, max_len=limits.max_text)
        else:
            reader.expect_array(value, key_path)
            yield from _elements(reader, key_path, limits, nesting + 1)
    get = text.get
    yield package(
        get("purl"), get("name"), get("version"), licenses, supplier, get("type"), get("group")
    )


def _parsed(found: list[PackageRecord], node: Any, limits: SbomLimits, nesting: int) -> bool:
    """What ``_component`` yields for a component of a parsed, plain document (no string with a
    NUL or a surrogate), added to ``found``, children first; ``False`` when anything in it is
    not what ``_component`` takes (a non-string, an over-long string, an odd licence, too deep),
    for ``_component`` to refuse it. Runs once per component of every small CycloneDX SBOM."""
    if nesting > limits.max_component_nesting or type(node) is not dict:
        return False
    get, max_text = node.get, limits.max_text
    purl, name, version = get("purl"), get("name"), get("version")
    kind, group = get("type"), get("group")
    for value in (purl, name, version, kind, group):  # _TEXT_FIELDS
        if value is not None and (type(value) is not str or len(value) > max_text):
            return False
    licenses: tuple[str, ...] = ()
    if (listed := get("licenses")) is not None:
        if (read := _parsed_licenses(listed, limits)) is None:
            return False
        licenses = read
    supplier = get("supplier")
    if supplier is not None:
        if type(supplier) is not dict:
            return False
        supplier = supplier.get("name")
        if supplier is not None and (type(supplier) is not str or len(supplier) > max_text):
            return False
    if (children := get("components")) is not None:
        if type(children) is not list:
            return False
        for child in children:
            if not _parsed(found, child, limits, nesting + 1):
                return False
    found.append(package(purl, name, version, licenses, supplier, kind, group))
    return True


def _parsed_licenses(items: Any, limits: SbomLimits) -> tuple[str, ...] | None:
    """What :func:`_licenses` gives for a parsed, plain value, or ``None`` where it would refuse
    it: its checks in line, as lazy as it is (an ``expression`` leaves the ids unread)."""
    if type(items) is not list or len(items) > limits.max_licenses:
        return None
    max_text = limits.max_text
    found = []
    for choice in items:
        if type(choice) is not dict:
            return None
        license_ = choice.get("license")
        if license_ is None:
            license_ = {}
        elif type(license_) is not dict:
            return None
        for value in (choice.get("expression"), license_.get("id"), license_.get("name")):
            if value is None:
                continue
            if type(value) is not str or len(value) > max_text:
                return None
            if value:
                found.append(value)
                break
    return tuple(dict.fromkeys(found))


def _licenses(value: Any, path: str, limits: SbomLimits) -> tuple[str, ...]:
    """``[{"license": {"id"|"name"}}, {"expression"}]`` → SPDX ids, names or expressions."""
    items = j.as_list(value, path)
    if len(items) > limits.max_licenses:
        j.fail(path, f"more than {limits.max_licenses} licenses")
    found = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        choice = j.as_object(item, where)
        expression = j.opt_str(choice, "expression", where, max_len=limits.max_text)
        license_ = j.opt_object(choice, "license", where) or {}
        found.append(
            expression
            or j.opt_str(license_, "id", f"{where}.license", max_len=limits.max_text)
            or j.opt_str(license_, "name", f"{where}.license", max_len=limits.max_text)
        )
    return tuple(dict.fromkeys(x for x in found if x))


def _tools(reader: Reader, event: Event, path: str, limits: SbomLimits) -> tuple[str, ...]:
    # 1.4 writes an array of tools; 1.5+ an object of "components" and "services" arrays.
    if event[0] == "start_array":
        arrays: Iterator[tuple[Event, str]] = iter([(event, path)])
    else:
        reader.expect_object(event, path)
        arrays = _tool_arrays(reader, path)
    found: list[str] = []
    for array, array_path in arrays:
        reader.expect_array(array, array_path)
        for item, item_path in reader.elements(array_path):
            tool = j.as_object(reader.value(item, item_path), item_path)
            name = j.opt_str(tool, "name", item_path, max_len=limits.max_text)
            version = j.opt_str(tool, "version", item_path, max_len=limits.max_text)
            if name:
                if len(found) == limits.max_tools:
                    reader.fail(array_path, f"more than {limits.max_tools} tools")
                found.append(f"{name} {version}" if version else name)
    return tuple(found)


def _tool_arrays(reader: Reader, path: str) -> Iterator[tuple[Event, str]]:
    for key, value in reader.fields(path):
        key_path = f"{path}.{key}"
        if key in ("components", "services") and value[0] != "null":
            yield value, key_path
        else:
            reader.skip(value, key_path)


def _component_name(reader: Reader, event: Event, path: str, limits: SbomLimits) -> str | None:
    reader.expect_object(event, path)
    name = None
    for key, value in reader.fields(path):
        key_path = f"{path}.{key}"
        if key == "name":
            name = reader.text(value, key_path, max_len=limits.max_text)
        else:
            reader.skip(value, key_path)
    return name
