"""Two OAI-PMH harvesters libraries use, sickle and oaipmh-scythe, against the repository over real
HTTP: a full harvest over several resumption pages, then an incremental one ``from`` the first
harvest's start after a re-run and a curator's rejection; and a resumption token kept while 1,000
annotations are added resumes where it stood."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest
from aggregated import enrich, judge
from factories import make_manifest
from lxml import etree
from oaipmh import check_response, q
from webclient import live_server

from enricher.clock import now

MAX_RECORDS = 3
IMAGES = "https://images.example.org/iiif"
EDM = "{http://www.europeana.eu/schemas/edm/}"
DC = "{http://purl.org/dc/elements/1.1/}"
RDF_RESOURCE = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource"
DETECTIONS = [(0, "dog", 0.9, (0, 0, 40, 40)), (0, "horse", 0.8, (50, 0, 40, 40))]


@dataclass(frozen=True)
class Harvested:
    identifier: str
    datestamp: str
    deleted: bool
    subjects: frozenset[str]


def _harvested(identifier: str, datestamp: str, deleted: bool, xml: etree._Element) -> Harvested:
    subjects = frozenset(e.get(RDF_RESOURCE) for e in xml.iter(f"{DC}subject"))
    return Harvested(identifier, datestamp, deleted, subjects)


def sickle_harvest(endpoint: str, **arguments) -> list[Harvested]:
    from sickle import Sickle
    from sickle.oaiexceptions import NoRecordsMatch

    query = arguments if "resumptionToken" in arguments else {"metadataPrefix": "edm", **arguments}
    try:
        records = list(Sickle(endpoint, max_retries=0).ListRecords(**query))
    except NoRecordsMatch:
        return []
    return [_harvested(r.header.identifier, r.header.datestamp, r.deleted, r.xml) for r in records]


def scythe_harvest(endpoint: str, **arguments) -> list[Harvested]:
    from oaipmh_scythe import Scythe
    from oaipmh_scythe.exceptions import NoRecordsMatch

    renamed = {{"from": "from_", "resumptionToken": "resumption_token"}.get(k, k): v for k, v in arguments.items()}
    with Scythe(endpoint) as scythe:
        try:
            records = list(scythe.list_records(metadata_prefix="edm", **renamed))
        except NoRecordsMatch:
            return []
    return [_harvested(r.header.identifier, r.header.datestamp, r.deleted, r.xml) for r in records]


HARVESTERS = {"sickle": sickle_harvest, "oaipmh-scythe": scythe_harvest}


def next_second() -> str:
    """Wait until a second no change so far was stamped with has begun; return it."""
    started = now()
    while now() == started:
        time.sleep(0.05)
    return now()


def seed(server, names) -> dict[str, str]:
    """Manifests of NAMES with two annotations each; return OAI identifier by name."""
    found = {}
    with server.store() as store:
        for name in names:
            document = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id=f"https://example.org/{name}.json")
            key = enrich(store, document, DETECTIONS, server.config)[0]
            found[name] = f"oai:127.0.0.1:{key}"
    return found


def first_page(server, count: int, verb: str) -> tuple[str, dict[str, str], str, etree._Element]:
    """Seed COUNT manifests, wait for a fresh second and ask VERB's first page; return the endpoint, the
    identifiers by name, that second (for the next incremental harvest) and the page."""
    endpoint = f"{server.url}oai"
    ids = seed(server, [f"m{n}" for n in range(count)])
    start = next_second()
    page = check_response(httpx.get(endpoint, params={"verb": verb, "metadataPrefix": "edm"}).content)
    return endpoint, ids, start, page


def key_of(identifier: str) -> str:
    return identifier.rsplit(":", 1)[1]


@pytest.mark.parametrize("harvester", sorted(HARVESTERS))
def test_a_full_then_an_incremental_harvest(harvester, tmp_path):
    harvest = HARVESTERS[harvester]
    with live_server(tmp_path, oai_max_records=MAX_RECORDS) as server:
        endpoint = f"{server.url}oai"
        ids = seed(server, [f"m{n}" for n in range(8)])
        start = next_second()
        first_page = check_response(httpx.get(endpoint, params={"verb": "ListRecords", "metadataPrefix": "edm"}).content)
        assert first_page.find(f".//{q('resumptionToken')}").get("completeListSize") == "8"  # several pages
        full = harvest(endpoint)
        assert sorted(r.identifier for r in full) == sorted(ids.values())  # each once, every one
        assert not any(r.deleted for r in full) and all(r.subjects for r in full)
        with server.store() as store:
            assert store.harvest_count(store.harvest_position()) == len(full)

        # a re-run finds a bird on m2 too; a curator rejects everything on m5
        with server.store() as store:
            document = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id="https://example.org/m2.json")
            enrich(store, document, [*DETECTIONS, (0, "bird", 0.95, (100, 0, 40, 40))], server.config,
                   created="2026-03-01T00:00:00Z")
            for annotation in store.page(key_of(ids["m5"]), 0, 100):
                judge(store, key_of(ids["m5"]), annotation.id, "rejected")
        incremental = harvest(endpoint, **{"from": start})
        assert sorted(r.identifier for r in incremental) == sorted([ids["m2"], ids["m5"]])
        changed = {r.identifier: r for r in incremental}
        assert changed[ids["m5"]].deleted and not changed[ids["m2"]].deleted
        before = {r.identifier: r for r in full}[ids["m2"]]
        assert len(changed[ids["m2"]].subjects - before.subjects) == 1  # the bird's Iconclass concept
        assert all(r.datestamp >= start for r in incremental)
        assert harvest(endpoint, **{"from": next_second()}) == []  # nothing changed since


def test_a_token_kept_while_a_thousand_annotations_are_added_resumes_where_it_stood(tmp_path):
    with live_server(tmp_path, oai_max_records=MAX_RECORDS) as server:
        endpoint, ids, start, page = first_page(server, 8, "ListRecords")
        token = page.find(f".//{q('resumptionToken')}")
        first = [e.text for e in page.iter(q("identifier"))]
        assert len(first) == MAX_RECORDS and token.get("completeListSize") == "8"

        added = 0
        with server.store() as store:  # 1,000 annotations on ten new manifests
            for n in range(10):
                document = make_manifest(3, [("a", 4000, 3000)], IMAGES, manifest_id=f"https://example.org/new{n}.json")
                detections = [(0, "dog", 0.9, (40 * (i % 90), 40 * (i // 90), 30, 30)) for i in range(100)]
                added += len(enrich(store, document, detections, server.config)[2])
        assert added == 1000
        news = {f"oai:127.0.0.1:{key}" for key in _keys(server)} - set(ids.values())
        assert len(news) == 10

        resumed = sickle_harvest(endpoint, resumptionToken=token.text)
        rest = [r.identifier for r in resumed]
        assert sorted(first + rest) == sorted(ids.values())  # exactly the records of when the list began
        assert len(set(rest)) == len(rest) and not set(rest) & set(first)
        later = sickle_harvest(endpoint, **{"from": start})
        assert {r.identifier for r in later} == news  # the new ones come with the next incremental harvest

        # the token's list keeps its size and its cursor counts on
        again = check_response(httpx.get(endpoint, params={"verb": "ListRecords", "resumptionToken": token.text}).content)
        following = again.find(f".//{q('resumptionToken')}")
        assert (following.get("completeListSize"), following.get("cursor")) == ("8", str(MAX_RECORDS))


def test_a_record_changed_during_a_harvest_comes_with_the_next_one(tmp_path):
    with live_server(tmp_path, oai_max_records=MAX_RECORDS) as server:
        endpoint, ids, start, page = first_page(server, 5, "ListIdentifiers")
        first = [e.text for e in page.iter(q("identifier"))]
        waiting = sorted(set(ids.values()) - set(first))
        with server.store() as store:  # every record still to send changes
            for identifier in waiting:
                annotation = store.page(key_of(identifier), 0, 1)[0]
                judge(store, key_of(identifier), annotation.id, "accepted")
        token = page.findtext(f".//{q('resumptionToken')}")
        resumed = check_response(httpx.get(endpoint, params={"verb": "ListIdentifiers", "resumptionToken": token}).content)
        assert sorted(e.text for e in resumed.iter(q("identifier"))) == waiting  # taken in, not an early end
        assert {r.identifier for r in sickle_harvest(endpoint, **{"from": start})} == set(waiting)


def _keys(server) -> list[str]:
    with server.store() as store:
        return [m.key for m in store.manifests()]
