"""The error tree drawn in enricher/errors.py is the real one: every EnricherError subclass of every
enricher module has its line, under its parent, with its status; and each lives in errors.py with a
problem type of its own."""

from __future__ import annotations

import importlib
import pkgutil
import re

import enricher
from enricher import errors
from enricher.errors import EnricherError

# "    │   ├── ManifestError         422  not JSON, ...": the name's column gives its depth
_LINE = re.compile(r"^(?P<lead>[ │├└─]*)(?P<name>[A-Z]\w*)\s+(?P<status>\d{3})\s+\S")
_INDENT = 4  # columns per level of the drawing


def drawn_tree() -> dict[str, tuple[str | None, int]]:
    """Name -> (parent name, status) as the module docstring of enricher.errors draws them."""
    tree: dict[str, tuple[str | None, int]] = {}
    path: list[str] = []
    for line in errors.__doc__.splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        depth = len(found["lead"]) // _INDENT - 1
        assert 0 <= depth <= len(path), f"line drawn at the wrong depth: {line!r}"
        del path[depth:]
        tree[found["name"]] = (path[-1] if path else None, int(found["status"]))
        path.append(found["name"])
    return tree


def real_tree() -> dict[str, type[EnricherError]]:
    """Name -> class of EnricherError and every subclass defined in an enricher module."""
    for module in pkgutil.walk_packages(enricher.__path__, "enricher."):
        importlib.import_module(module.name)
    found: dict[str, type[EnricherError]] = {}
    pending = [EnricherError]
    while pending:
        cls = pending.pop()
        if cls.__module__.split(".")[0] == "enricher":
            assert cls.__name__ not in found, f"two error classes named {cls.__name__}"
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def test_the_drawing_holds_every_error_class_with_its_parent_and_status():
    real = {
        name: (cls.__bases__[0].__name__ if cls is not EnricherError else None, cls.status)
        for name, cls in real_tree().items()
    }
    drawn = drawn_tree()
    assert drawn, "no tree drawn in enricher/errors.py"
    assert drawn == real


def test_every_error_class_lives_in_errors_with_a_problem_type_of_its_own():
    classes = real_tree().values()
    assert {cls.__module__ for cls in classes} == {"enricher.errors"}
    assert all("slug" in vars(cls) and "title" in vars(cls) for cls in classes)
    assert len({cls.slug for cls in classes}) == len(classes)

