"""Validate output against the shared W3C Web Annotation and IIIF Presentation 3 schemas.

Every helper takes the conformance folder (the ``conformance_dir`` fixture) as an argument.
``w3c_failures``/``iiif3_errors`` return what failed; the ``assert_*`` helpers fail with that list.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Mapping

from jsonschema import Draft4Validator, Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

IIIF3_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
# Stricter than media fragments on purpose: integers, no ``pixel:`` unit (viewers do not parse it).
XYWH = re.compile(r"^xywh=(\d+),(\d+),(\d+),(\d+)$")
# Assertion files of each W3C MUST set, relative to web-annotation/ (see its README).
W3C_SETS = {
    "annotation": "annotations/**/*.json", "page": "collections/pages/*.json", "collection": "collections/*.json"
}


def _require_format_checks() -> None:
    # Without rfc3987 / rfc3339-validator jsonschema skips uri and date-time checks silently.
    missing = {"uri", "date-time"} - set(Draft4Validator.FORMAT_CHECKER.checkers)
    if missing:
        raise RuntimeError(f"format checks {sorted(missing)} inactive: pip install rfc3987 rfc3339-validator")


@lru_cache(maxsize=None)
def _w3c_assertions(conformance_dir: str, kind: str) -> tuple[tuple[str, dict, Draft4Validator], ...]:
    _require_format_checks()
    root = Path(conformance_dir) / "web-annotation"
    definitions = [json.loads(p.read_text()) for p in sorted((root / "definitions").glob("*.json"))]
    registry = Registry().with_resources((d["id"], DRAFT4.create_resource(d)) for d in definitions)
    assertions = []
    for path in sorted(root.glob(W3C_SETS[kind])):
        schema = json.loads(path.read_text())
        if schema.get("assertionType") == "must":
            validator = Draft4Validator(schema, registry=registry, format_checker=Draft4Validator.FORMAT_CHECKER)
            assertions.append((path.stem, schema, validator))
    if not assertions:
        raise RuntimeError(f"no MUST assertions for {kind} under {root}")
    return tuple(assertions)


def w3c_failures(instance: dict, conformance_dir: str | Path, kind: str = "annotation") -> dict[str, str]:
    """Run every MUST assertion of ``kind`` (annotation, page, collection); return failed name -> title."""
    failed = {}
    for name, schema, validator in _w3c_assertions(str(conformance_dir), kind):
        valid = validator.is_valid(instance)
        if valid != (schema.get("expectedResult", "valid") == "valid") and schema.get(
            "onUnexpectedResult", "failAndContinue"
        ).startswith("fail"):
            failed[name] = schema.get("title", name)
    return failed


def _assert_w3c(instance: dict, conformance_dir: str | Path, kind: str) -> None:
    failed = w3c_failures(instance, conformance_dir, kind)
    assert not failed, f"W3C {kind} MUST assertions failed:\n" + "\n".join(f"  {n}: {t}" for n, t in failed.items())


def assert_w3c_annotation(annotation: dict, conformance_dir: str | Path) -> None:
    """Fail unless the annotation passes every MUST assertion of the W3C test suite."""
    _assert_w3c(annotation, conformance_dir, "annotation")


def assert_w3c_page(page: dict, conformance_dir: str | Path) -> None:
    """Fail unless a W3C AnnotationPage passes every MUST assertion for pages."""
    _assert_w3c(page, conformance_dir, "page")


def assert_w3c_collection(collection: dict, conformance_dir: str | Path) -> None:
    """Fail unless a W3C AnnotationCollection passes every MUST assertion for collections."""
    _assert_w3c(collection, conformance_dir, "collection")


@lru_cache(maxsize=None)
def _iiif3_validator(conformance_dir: str) -> Draft7Validator:
    schema = json.loads((Path(conformance_dir) / "iiif" / "iiif_3_0.json").read_text())
    return Draft7Validator(schema)  # as the official validator: no format checker


def _messages(error) -> list[str]:
    """Flatten a oneOf/anyOf error to the reasons of the branches meant for this object's ``type``."""
    if not error.context:
        return [f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message[:300]}"]
    branches: dict = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    wrong_type = {
        branch for branch, subs in branches.items()
        if any(list(s.relative_path) == ["type"] and s.validator in ("pattern", "const", "enum") for s in subs)
    }
    kept = [subs for branch, subs in branches.items() if branch not in wrong_type] or list(branches.values())
    return list(dict.fromkeys(m for subs in kept for sub in subs for m in _messages(sub)))


def _walk(node) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _fragments(target) -> Iterator[tuple[str | None, str]]:
    """Yield (canvas id, xywh fragment) of each region a target names."""
    for item in target if isinstance(target, list) else [target]:
        if isinstance(item, str) and "#xywh=" in item:
            source, fragment = item.split("#", 1)
            yield source, fragment
        elif isinstance(item, dict):
            source = item.get("source")
            source = source.get("id") if isinstance(source, dict) else source
            selectors = item.get("selector", [])
            for selector in selectors if isinstance(selectors, list) else [selectors]:
                if isinstance(selector, dict) and selector.get("type") == "FragmentSelector":
                    yield source, selector.get("value")


def _motivations(annotation: dict) -> list:
    motivation = annotation.get("motivation", [])
    return motivation if isinstance(motivation, list) else [motivation]


def _extra_errors(doc: dict, canvas_sizes: Mapping[str, tuple[int, int]]) -> list[str]:
    """The checks the schema misses (see iiif/README.md): context order, xywh, bounds, motivations."""
    errors = []
    context = doc.get("@context")
    if isinstance(context, list) and context[-1:] != [IIIF3_CONTEXT]:
        errors.append(f"@context: the IIIF context must be last, got {context}")
    sizes = dict(canvas_sizes)
    for node in _walk(doc):
        if node.get("type") == "Canvas" and "width" in node and "height" in node:
            sizes[node.get("id")] = (node["width"], node["height"])
            for page in node.get("items", []):
                for anno in page.get("items", []):
                    if _motivations(anno) != ["painting"]:
                        errors.append(f"{anno.get('id')}: canvas items must be painting annotations")
            for page in node.get("annotations", []):
                for anno in page.get("items", []):
                    if "painting" in _motivations(anno):
                        errors.append(f"{anno.get('id')}: painting annotation in canvas annotations")
    for node in _walk(doc):
        if node.get("type") != "Annotation":
            continue
        for source, fragment in _fragments(node.get("target")):
            match = XYWH.match(fragment) if isinstance(fragment, str) else None
            if match is None:
                errors.append(f"{node.get('id')}: {fragment!r} is not xywh=x,y,w,h in whole pixels")
                continue
            x, y, w, h = map(int, match.groups())
            size = sizes.get(source)
            if w == 0 or h == 0:
                errors.append(f"{node.get('id')}: empty region {fragment}")
            elif size and (x + w > size[0] or y + h > size[1]):
                errors.append(f"{node.get('id')}: {fragment} exceeds the {size[0]}x{size[1]} canvas {source}")
    return errors


def iiif3_errors(
    doc: dict, conformance_dir: str | Path, canvas_sizes: Mapping[str, tuple[int, int]] | None = None
) -> list[str]:
    """Validate with iiif_3_0.json (as the official validator) plus the extra checks; return the errors.

    ``canvas_sizes`` (canvas id -> width, height) bounds regions on canvases the document does not embed.
    """
    found = [m for e in _iiif3_validator(str(conformance_dir)).iter_errors(doc) for m in _messages(e)]
    return found + _extra_errors(doc, canvas_sizes or {})


def assert_iiif3(
    doc: dict, conformance_dir: str | Path, canvas_sizes: Mapping[str, tuple[int, int]] | None = None
) -> None:
    """Fail unless the document is valid IIIF Presentation 3 (schema and extra checks)."""
    errors = iiif3_errors(doc, conformance_dir, canvas_sizes)
    assert not errors, "IIIF Presentation 3 errors:\n" + "\n".join(f"  {e}" for e in errors)
