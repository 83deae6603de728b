"""What OAI-PMH harvests: a record per enriched manifest, derived from the store's change log.

``Catalogue`` says what a manifest gives aggregators (enricher.aggregation for the object,
enricher.subjects for the concepts) and writes it as EDM or Dublin Core (enricher.edm).
``HarvestRecords`` is the change-log follower (enricher.follow) that keeps, per manifest, the record's
place in the harvest order, its datestamp (the time of the manifest's last change), whether it is
deleted (it gives no subject any more: every annotation rejected, removed or below the threshold; a
record once published stays, as a deleted one) and its sets: one per source collection a job enriched
it from (``collection:…``) and the aggregation file's groups (``group:…``). The threshold and the
aggregation file's groups apply to a record from its next change on. Reads only read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree

from .aggregation import EDM_NAMESPACE, Aggregation, ProvidedObject, provided_object
from .config import Config
from .edm import MEDIA_TYPE as EDM_MEDIA_TYPE
from .edm import edm_record, oai_dc_record
from .follow import StoredPosition, follow
from .manifest import Manifest, parse_stored
from .store import Change, Store
from .subjects import Subject, Subjects
from .urls import edm_url, oai_identifier, oai_url, public_base
from .vocab import Vocabulary

BATCH = 1000  # change-log entries per transaction of the follower
OAI_PROFILE = "http://www.openarchives.org/OAI/2.0/"


@dataclass(frozen=True)
class Described:
    """What one enriched manifest gives aggregators."""

    key: str
    manifest: Manifest
    object: ProvidedObject
    subjects: list[Subject]


def record_links(base: str, key: str) -> list[dict]:
    """The ``seeAlso`` references an enriched manifest gives to its EDM record and its OAI-PMH record,
    so a Change Discovery harvester finds them too."""
    query = f"verb=GetRecord&metadataPrefix=edm&identifier={oai_identifier(base, key)}"
    return [
        {"id": edm_url(base, key), "type": "Dataset", "format": EDM_MEDIA_TYPE, "profile": EDM_NAMESPACE},
        {"id": f"{oai_url(base)}?{query}", "type": "Dataset", "format": "text/xml", "profile": OAI_PROFILE},
    ]


def collection_set(source: str) -> tuple[str, str]:
    """The set (spec, name) of the manifests a job enriched from collection SOURCE."""
    return f"collection:{hashlib.sha256(source.encode('utf-8')).hexdigest()[:16]}", f"Collection {source}"


class Catalogue:
    """The records of one configuration: settings base_url, vocab, aggregation_file,
    aggregation_threshold and oai_repository_name."""

    def __init__(self, config: Config):
        self.base = public_base(config.base_url)
        self.aggregation = Aggregation.load(config.aggregation_file)
        self.subjects = Subjects(Vocabulary.load(config.vocab), config.aggregation_threshold, self.base)
        self.repository_name = config.oai_repository_name
        self.host = urlsplit(self.base).hostname or "localhost"

    def identifier(self, key: str) -> str:
        """The OAI-PMH identifier of manifest KEY's record."""
        return oai_identifier(self.base, key)

    def key_of(self, identifier: str) -> str | None:
        """The manifest key an OAI-PMH identifier names, or None when it names none of ours."""
        prefix = oai_identifier(self.base, "")
        key = identifier[len(prefix):] if identifier.startswith(prefix) else ""
        return key if len(key) == 16 and all(c in "0123456789abcdef" for c in key) else None

    def describe(self, store: Store, key: str) -> Described | None:
        """What manifest KEY gives aggregators; None when it is not stored or cannot be read."""
        manifest = parse_stored(store.manifest(key), "OAI-PMH")
        if manifest is None:
            return None
        obj = provided_object(manifest, self.aggregation, self.repository_name)
        return Described(key, manifest, obj, self.subjects.of(store, key))

    def metadata(self, described: Described, prefix: str) -> etree._Element:
        """The record of DESCRIBED in metadata format PREFIX (``edm`` or ``oai_dc``)."""
        if prefix == "edm":
            aggregation = f"{edm_url(self.base, described.key)}#aggregation"
            return edm_record(described.object, described.subjects, self.subjects.tree, described.manifest.id,
                              aggregation)
        return oai_dc_record(described.object, described.subjects, described.manifest.id)

    def sets(self, manifest_id: str, collections: dict[str, dict[str, str]], key: str) -> dict[str, str]:
        """The sets (spec -> name) of manifest KEY: its source collections and the aggregation groups."""
        return {**collections.get(key, {}), **self.aggregation.sets_of(manifest_id)}


def source_collections(store: Store) -> dict[str, dict[str, str]]:
    """Manifest key -> the collection sets of the jobs that enriched it from a collection (a job's
    source that is not the manifest itself)."""
    found: dict[str, dict[str, str]] = {}
    for job in store.jobs():
        source = job.params.get("manifest")
        if not isinstance(source, str):
            continue
        for key in job.manifests:
            stored = store.manifest(key)
            if stored is not None and source not in (stored.url, stored.manifest_id):
                spec, name = collection_set(source)
                found.setdefault(key, {})[spec] = name
    return found


class HarvestRecords(StoredPosition):
    """The change-log consumer that keeps the records (see the module docstring)."""

    name = "oai"

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue

    def apply(self, store: Store, changes: Sequence[Change]) -> None:
        """Bring the records of the manifests CHANGES touch up to date and move the stored position,
        in one transaction (re-reading the position: another process may have followed meanwhile)."""
        with store.transaction():
            position = self.position(store)
            fresh = [change for change in changes if change.seq > position]
            if not fresh:
                return
            touched: dict[str, str] = {}
            for change in fresh:  # in the order of each manifest's last change
                touched.pop(change.key, None)
                touched[change.key] = change.time
            collections = source_collections(store)
            for key, time in touched.items():
                stored = store.manifest(key)
                if stored is None:
                    continue  # nothing to describe: a container without its manifest
                live = bool(self.catalogue.subjects.of(store, key))
                if live or store.harvest_record(key) is not None:
                    store.save_harvest_record(key, time, not live, self.catalogue.sets(stored.manifest_id, collections, key))
            store.move_cursor(self.name, fresh[-1].seq)


def sync(store: Store, catalogue: Catalogue) -> int:
    """Bring the records up to date with the change log; return how many changes that took."""
    return follow(store, HarvestRecords(catalogue), BATCH)
