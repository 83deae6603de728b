"""The provider's object behind an enriched manifest, as aggregators must name it.

An aggregator merges what we send with what the provider sent, so the object URI is the provider's,
never one of ours: a rule of the aggregation file (setting ``aggregation_file``), else a ``seeAlso`` of
the manifest with the EDM profile, else its ``homepage`` (``related`` in 2.1). Title, description,
rights, the data provider and the links to the object come from the manifest; where it lacks one, the
aggregation file's value is used, and the record says so (``notes``). What neither has is not
invented: the rights become rightsstatements.org's "Copyright Not Evaluated", the data provider the
host that serves the manifest, the object URI the manifest's own id, each stated in the notes.

The aggregation file (TOML, or JSON with the same keys)::

    provider = "Example Aggregator"          # edm:provider (default: setting oai_repository_name)
    data_provider = "Example Museum"         # where a manifest names none
    rights = "http://rightsstatements.org/vocab/InC/1.0/"   # where a manifest states none

    [[objects]]                              # the first rule whose pattern matches the manifest id
    manifest = '^https://example\\.org/iiif/(?P<id>[^/]+)/manifest\\.json$'
    object = "https://example.org/objects/{id}"
    europeana = "http://data.europeana.eu/item/2048128/{id}"
    data_provider = "Example Museum"         # optional, as rights

    [[sets]]                                 # OAI-PMH set group:paintings
    spec = "paintings"
    name = "Paintings"
    manifests = ['^https://example\\.org/iiif/p']
"""

from __future__ import annotations

import json
import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .jsonld import as_list
from .manifest import Manifest

EDM_NAMESPACE = "http://www.europeana.eu/schemas/edm/"
NOT_EVALUATED = "http://rightsstatements.org/vocab/CNE/1.0/"
EUROPEANA_ITEM = "http://data.europeana.eu/item/"
_EUROPEANA_PAGE = re.compile(r"^https?://(?:www\.europeana\.eu/(?:[a-z]{2}/)?item|data\.europeana\.eu/item)/([^/?#]+)/([^/?#]+)")
_LEVEL = re.compile(r"^(?:level[012]|https?://iiif\.io/api/image/[23]/level[012]\.json)$")
_SET_SPEC = re.compile(r"^[A-Za-z0-9\-_.!~*'()]+(?::[A-Za-z0-9\-_.!~*'()]+)*$")
# the rights statements Europeana takes: Creative Commons licences and marks, rightsstatements.org
_RIGHTS = re.compile(
    r"^http://(?:creativecommons\.org/(?:licenses/by(?:-nc)?(?:-sa|-nd)?(?:-nc)?/[1-4]\.[05]/(?:[a-z]{2}/|scotland/|igo/)?"
    r"|publicdomain/(?:zero|mark)/1\.0/)|rightsstatements\.org/vocab/(?:InC|InC-EDU|InC-OW-EU|NoC-NC|NoC-OKLR|CNE)/1\.0/)$"
)

Text = tuple[str, str | None]  # a value and its language (None: none given)


@dataclass(frozen=True)
class Rule:
    """Manifest ids matching PATTERN map to these URIs (templates over the pattern's named groups)."""

    pattern: re.Pattern
    object: str | None = None
    europeana: str | None = None
    data_provider: str | None = None
    rights: str | None = None


@dataclass(frozen=True)
class Group:
    """An OAI-PMH set of the manifests whose ids match one of PATTERNS."""

    spec: str
    name: str
    patterns: tuple[re.Pattern, ...]


@dataclass(frozen=True)
class Aggregation:
    """The rules of the aggregation file (empty without one)."""

    rules: tuple[Rule, ...] = ()
    groups: tuple[Group, ...] = ()
    provider: str | None = None
    data_provider: str | None = None
    rights: str | None = None

    @classmethod
    def load(cls, path: str | Path | None) -> Aggregation:
        """Read the aggregation file at PATH (nothing: no rules).

        Raises ConfigError naming the file and the entry for a file that cannot be read, a pattern that
        is not a regular expression, a template naming a group its pattern lacks, a bad set spec.
        """
        if not path:
            return cls()
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
            data = json.loads(text) if str(path).endswith(".json") else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the aggregation file: {exc}", where=where) from None
        rules = tuple(_rule(entry, n, where) for n, entry in enumerate(as_list(data.get("objects"))))
        groups = tuple(_group(entry, n, where) for n, entry in enumerate(as_list(data.get("sets"))))
        rights = _optional(data, "rights", where)
        if rights is not None:
            _check_rights(rights, where)
        return cls(rules, groups, _optional(data, "provider", where), _optional(data, "data_provider", where), rights)

    def match(self, manifest_id: str) -> tuple[Rule, dict[str, str]] | None:
        """The first rule whose pattern matches MANIFEST_ID, with the matched groups."""
        for rule in self.rules:
            found = rule.pattern.search(manifest_id)
            if found:
                return rule, {k: v or "" for k, v in found.groupdict().items()}
        return None

    def sets_of(self, manifest_id: str) -> dict[str, str]:
        """The OAI-PMH sets (spec -> name) the groups put MANIFEST_ID in."""
        return {f"group:{g.spec}": g.name for g in self.groups if any(p.search(manifest_id) for p in g.patterns)}


@dataclass(frozen=True)
class ProvidedObject:
    """What aggregators are told about the object an enriched manifest shows."""

    uri: str
    europeana_item: str | None
    titles: tuple[Text, ...]
    descriptions: tuple[Text, ...]
    rights: str
    data_provider: str
    provider: str
    shown_at: str | None
    images: tuple[tuple[str, str | None, str | None], ...]  # (image URL, IIIF service id, its level's URI)
    notes: tuple[str, ...] = field(default=())  # where a value came from because the manifest lacks it


def provided_object(manifest: Manifest, aggregation: Aggregation, repository_name: str) -> ProvidedObject:
    """Say what MANIFEST shows, by the manifest and the aggregation file (see the module docstring)."""
    document, notes = manifest.document, []
    matched = aggregation.match(manifest.id)
    rule, groups = matched or (Rule(re.compile("")), {})
    homepage = _homepage(document, manifest.version)
    edm_record = _edm_see_also(document)
    if rule.object:
        uri = rule.object.format(**groups)
    elif edm_record or homepage:
        uri = edm_record or homepage
    else:
        uri = manifest.id
        notes.append("The manifest names no homepage and no EDM record, and no aggregation rule maps it: "
                     "the object is named by the manifest's id.")
    europeana = rule.europeana.format(**groups) if rule.europeana else _europeana_item(edm_record, homepage)
    rights = _manifest_rights(document, manifest.version)
    if rights is None:
        fallback = rule.rights or aggregation.rights
        rights = fallback or NOT_EVALUATED
        source = "the aggregation file's" if fallback else "rightsstatements.org's Copyright Not Evaluated"
        notes.append(f"The manifest states no rights Europeana accepts: edm:rights is {source} ({rights}).")
    data_provider = _provider_label(document, manifest.version)
    if data_provider is None:
        data_provider = rule.data_provider or aggregation.data_provider
        if data_provider is None:
            data_provider = urlsplit(manifest.id).hostname or manifest.id
            notes.append(f"Neither the manifest nor the aggregation file names the data provider: "
                         f"edm:dataProvider is the host that serves the manifest ({data_provider}).")
        else:
            notes.append("The manifest names no provider: edm:dataProvider is the aggregation file's.")
    titles = tuple(language_values(document.get("label"))) or ((manifest.label or manifest.id, None),)
    summary = document.get("summary") if manifest.version == 3 else document.get("description")
    profiles = _service_profiles(document)
    images = tuple((c.image_url, c.service_id, profiles.get(c.service_id or "")) for c in manifest.canvases if c.image_url)
    if not images:
        notes.append("No canvas of the manifest paints an image.")
    return ProvidedObject(
        uri=uri, europeana_item=europeana, titles=titles, descriptions=tuple(language_values(summary)),
        rights=rights, data_provider=data_provider, provider=aggregation.provider or repository_name,
        shown_at=homepage, images=images, notes=tuple(notes),
    )


def language_values(value: Any) -> list[Text]:
    """The texts of a 3.0 language map or a 2.1 value (string, ``@value`` object or a list of them)."""
    if isinstance(value, str):
        return [(value, None)] if value.strip() else []
    if isinstance(value, list):
        return [text for item in value for text in language_values(item)]
    if isinstance(value, dict):
        if "@value" in value:
            language = value.get("@language")
            return [(str(value["@value"]), language if isinstance(language, str) else None)]
        return [(str(text), None if language == "none" else language)
                for language, texts in value.items() for text in as_list(texts) if str(text).strip()]
    return []


def europeana_rights(uri: str) -> str | None:
    """URI as Europeana writes the rights statement (http, with the trailing slash), None if Europeana
    does not take it."""
    text = re.sub(r"^https://", "http://", uri.strip())
    text = re.sub(r"(legalcode|deed\.[a-zA-Z-]+)$", "", text)
    text = text if text.endswith("/") else text + "/"
    return text if _RIGHTS.match(text) else None


def _check_rights(uri: str, where: str) -> None:
    if europeana_rights(uri) != uri:
        raise ConfigError(f"{uri!r} is not a rights statement Europeana takes, as it writes them "
                          "(http://creativecommons.org/... or http://rightsstatements.org/vocab/.../1.0/)", where=where)


def _manifest_rights(document: dict, version: int) -> str | None:
    for value in as_list(document.get("rights" if version == 3 else "license")):
        uri = value if isinstance(value, str) else value.get("@id") if isinstance(value, dict) else None
        if isinstance(uri, str) and (usable := europeana_rights(uri)):
            return usable
    return None


def _provider_label(document: dict, version: int) -> str | None:
    if version == 3:
        for provider in as_list(document.get("provider")):
            if isinstance(provider, dict) and (texts := language_values(provider.get("label"))):
                return texts[0][0]
        return None
    texts = language_values(document.get("attribution"))
    return texts[0][0] if texts else None


def _homepage(document: dict, version: int) -> str | None:
    for page in as_list(document.get("homepage" if version == 3 else "related")):
        uri = page if isinstance(page, str) else (page.get("id") or page.get("@id")) if isinstance(page, dict) else None
        if isinstance(uri, str) and uri.startswith(("http://", "https://")):
            return uri
    return None


def _edm_see_also(document: dict) -> str | None:
    for entry in as_list(document.get("seeAlso")):
        if not isinstance(entry, dict):
            continue
        uri = entry.get("id") or entry.get("@id")
        profiles = [p for p in as_list(entry.get("profile")) if isinstance(p, str)]
        if isinstance(uri, str) and any(p.rstrip("/#") == EDM_NAMESPACE.rstrip("/") for p in profiles):
            return uri
    return None


def _europeana_item(*uris: str | None) -> str | None:
    for uri in uris:
        found = _EUROPEANA_PAGE.match(uri or "")
        if found:
            return f"{EUROPEANA_ITEM}{found.group(1)}/{found.group(2)}"
    return None


def _service_profiles(document: Any) -> dict[str, str]:
    """Image service id -> the compliance level it states, as a URI (``level2`` in 3.0 is
    http://iiif.io/api/image/3/level2.json), from every service block of a manifest."""
    found: dict[str, str] = {}
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            service_id = node.get("id") or node.get("@id")
            for profile in as_list(node.get("profile")):
                if isinstance(profile, str) and isinstance(service_id, str):
                    level = _LEVEL.match(profile)
                    if level:
                        uri = profile if profile.startswith("http") else f"http://iiif.io/api/image/3/{profile}.json"
                        found.setdefault(service_id.removesuffix("/info.json").rstrip("/"), uri)
            stack.extend(node.values())
    return found


def _optional(entry: dict, name: str, where: str) -> str | None:
    value = entry.get(name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{name} must be a non-empty string, not {value!r}", where=where)
    return value


def _pattern(text: Any, where: str) -> re.Pattern:
    if not isinstance(text, str):
        raise ConfigError(f"a manifest pattern must be a string, not {text!r}", where=where)
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(f"{text!r} is not a regular expression: {exc}", where=where) from None


def _rule(entry: Any, n: int, file: str) -> Rule:
    where = f"{file} objects[{n}]"
    if not isinstance(entry, dict):
        raise ConfigError("an object rule is a table with manifest, object, europeana ...", where=where)
    pattern = _pattern(entry.get("manifest"), where)
    templates = {name: _optional(entry, name, where) for name in ("object", "europeana")}
    for name, template in templates.items():
        fields = {f for _, f, _, _ in string.Formatter().parse(template or "") if f is not None}
        if missing := fields - set(pattern.groupindex):
            raise ConfigError(f"{name} names {sorted(missing)}, which the pattern does not capture", where=where)
    rights = _optional(entry, "rights", where)
    if rights is not None:
        _check_rights(rights, where)
    return Rule(pattern, templates["object"], templates["europeana"], _optional(entry, "data_provider", where), rights)


def _group(entry: Any, n: int, file: str) -> Group:
    where = f"{file} sets[{n}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("spec"), str) or not _SET_SPEC.match(entry["spec"]):
        raise ConfigError("a set has a spec of letters, digits and -_.!~*'() (':' between levels)", where=where)
    patterns = tuple(_pattern(p, where) for p in as_list(entry.get("manifests")))
    if not patterns:
        raise ConfigError("a set lists the manifest patterns it holds", where=where)
    return Group(entry["spec"], _optional(entry, "name", where) or entry["spec"], patterns)
