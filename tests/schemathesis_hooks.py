"""Schemathesis hooks for tests/test_fuzz_openapi.py (loaded through SCHEMATHESIS_HOOKS): a check that no
response body shows Python internals, a stack trace or a source file's path."""

from __future__ import annotations

import re

import schemathesis

INTERNALS = re.compile(r'Traceback \(most recent call last\)|File "[^"]+\.py"|site-packages/|/enricher/[\w/]+\.py')


@schemathesis.check
def no_python_internals(ctx, response, case) -> bool:
    """The body names no Python internals."""
    found = INTERNALS.search(response.content.decode("utf-8", "replace"))  # gzip dumps are bytes
    if found:
        raise AssertionError(f"the body shows Python internals: {found.group(0)!r}")
    return True
