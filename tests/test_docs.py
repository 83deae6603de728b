"""The README documents every setting and every route the service answers."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from enricher.config import ENV_PREFIX, SETTINGS

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
OPENAPI = Path(__file__).parents[1] / "enricher" / "web" / "openapi.yaml"


def test_every_setting_is_in_the_readme_table():
    rows = set(re.findall(r"^\| `(ENRICHER_[A-Z0-9_]+)` \|", README, re.MULTILINE))
    missing = [s.name for s in SETTINGS if ENV_PREFIX + s.name.upper() not in rows]
    assert not missing, f"settings missing from the README table: {missing}"
    unknown = set(rows) - {ENV_PREFIX + s.name.upper() for s in SETTINGS}
    assert not unknown, f"README documents settings that do not exist: {sorted(unknown)}"


def test_every_route_is_in_the_readme():
    paths = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))["paths"]
    missing = [path for path in paths if f"`{path}`" not in README]
    assert not missing, f"routes missing from the README: {missing}"
