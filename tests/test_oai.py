"""OAI-PMH over real HTTP: every verb answers what the protocol's schema allows for it, lists page with
resumption tokens (cursor, completeListSize) and never exceed the configured number of records, sets
hold source collections and manifest groups, a manifest whose annotations were all rejected or removed
becomes a deleted record and stays one, dates select by datestamp, and each error condition returns its
code. (noMetadataFormats never applies: every record comes in both formats.)"""

from __future__ import annotations

import time

import pytest
from aggregated import enrich, judge
from factories import make_manifest
from lxml import etree
from oaipmh import OAI, check_oai_dc, check_response, error_code, q
from webclient import Client, live_server

from enricher.annotate import enriched_manifest
from enricher.clock import now
from enricher.edm import MEDIA_TYPE as EDM_MEDIA_TYPE
from enricher.harvest import collection_set, record_links
from enricher.manifest import parse_manifest

MAX_RECORDS = 2
IMAGES = "https://images.example.org/iiif"
COLLECTION = "https://example.org/collection.json"
MANIFESTS = [f"https://example.org/iiif/{kind}{n}.json" for n, kind in enumerate(["even", "odd"] * 3)]


def groups_file(folder) -> str:
    path = folder / "aggregation.toml"
    path.write_text("\n".join([
        "[[sets]]", 'spec = "even"', 'name = "Even manifests"', r"""manifests = ['/even\d\.json$']""",
        "[[sets]]", 'spec = "odd:all"', 'name = "Odd manifests"', r"""manifests = ['/odd\d\.json$']""",
    ]))
    return str(path)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oai")
    with live_server(folder, oai_max_records=MAX_RECORDS, oai_admin_email="oai@example.org",
                     aggregation_file=groups_file(folder)) as server:
        with server.store() as store:
            job = store.create_job({"manifest": COLLECTION})
            keys = []
            for manifest_id in MANIFESTS:
                document = make_manifest(3, [("a", 800, 600)], IMAGES, manifest_id=manifest_id)
                detections = [(0, "dog", 0.9, (0, 0, 40, 40)), (0, "cup", 0.8, (50, 0, 40, 40))]
                keys.append(enrich(store, document, detections, server.config)[0])
            store.set_job(job.id, manifests=keys[:3])
        server.keys = keys
        yield server


def get(client: Client, **arguments) -> etree._Element:
    response = client.get("oai", params=arguments)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/xml; charset=utf-8"
    return check_response(response.content)


def identifiers(root: etree._Element) -> list[str]:
    return [e.text for e in root.iter(q("identifier"))]


def walk(client: Client, **arguments) -> list[etree._Element]:
    """Every response of a list, following its resumption tokens."""
    pages = [get(client, **arguments)]
    while token := pages[-1].findtext(f".//{q('resumptionToken')}"):
        pages.append(get(client, verb=arguments["verb"], resumptionToken=token))
    return pages


def test_identify_names_the_repository_and_its_deletes(client, server):
    root = get(client, verb="Identify")
    identify = root.find(q("Identify"))
    assert identify.findtext(q("baseURL")) == f"{server.url}oai"
    assert identify.findtext(q("adminEmail")) == "oai@example.org"
    assert identify.findtext(q("deletedRecord")) == "persistent"
    assert identify.findtext(q("granularity")) == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.findtext(q("earliestDatestamp")) <= root.findtext(q("responseDate"))
    assert root.find(q("request")).attrib == {"verb": "Identify"}


def test_metadata_formats_are_oai_dc_and_edm(client, server):
    formats = get(client, verb="ListMetadataFormats")
    assert [e.text for e in formats.iter(q("metadataPrefix"))] == ["oai_dc", "edm"]
    one = get(client, verb="ListMetadataFormats", identifier=f"oai:127.0.0.1:{server.keys[0]}")
    assert [e.text for e in one.iter(q("metadataPrefix"))] == ["oai_dc", "edm"]


def test_lists_page_by_token_with_cursor_and_size_and_each_record_once(client, server):
    for verb in ("ListIdentifiers", "ListRecords"):
        seen, cursors, arguments = [], [], {"verb": verb, "metadataPrefix": "oai_dc"}
        while True:
            root = get(client, **arguments)
            page = identifiers(root)
            assert 1 <= len(page) <= MAX_RECORDS
            seen += page
            token = root.find(f".//{q('resumptionToken')}")
            if token is None:
                break
            cursors.append(int(token.get("cursor")))
            assert int(token.get("completeListSize")) == len(MANIFESTS)
            if not token.text:
                break
            arguments = {"verb": verb, "resumptionToken": token.text}
        assert sorted(seen) == sorted(f"oai:127.0.0.1:{key}" for key in server.keys) and len(set(seen)) == len(seen)
        assert cursors == [0, 2, 4]
    for record in get(client, verb="ListRecords", metadataPrefix="oai_dc").iter(q("metadata")):
        check_oai_dc(record[0])


def test_get_record_gives_each_format(client, server):
    identifier = f"oai:127.0.0.1:{server.keys[1]}"
    dc = get(client, verb="GetRecord", identifier=identifier, metadataPrefix="oai_dc")
    check_oai_dc(dc.find(f".//{q('metadata')}")[0])
    rdf = get(client, verb="GetRecord", identifier=identifier, metadataPrefix="edm").find(f".//{q('metadata')}")[0]
    assert rdf.tag == "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"
    assert rdf.find("{http://www.europeana.eu/schemas/edm/}ProvidedCHO") is not None


def test_post_gives_what_get_gives(client, server):
    arguments = {"verb": "ListIdentifiers", "metadataPrefix": "edm", "set": "group:even"}
    posted = client.request("POST", "oai", data=arguments)
    assert posted.status_code == 200
    assert identifiers(check_response(posted.content)) == identifiers(get(client, **arguments))


def test_sets_hold_the_source_collection_and_the_groups(client, server):
    pages = walk(client, verb="ListSets")
    assert all(len(page.findall(f".//{q('set')}")) <= MAX_RECORDS for page in pages)
    sets = {s.findtext(q("setSpec")): s.findtext(q("setName")) for page in pages for s in page.iter(q("set"))}
    collection, name = collection_set(COLLECTION)
    assert sets == {collection: name, "collection": "Source collections", "group": "Manifest groups",
                    "group:even": "Even manifests", "group:odd": "group:odd", "group:odd:all": "Odd manifests"}
    ids = {key: f"oai:127.0.0.1:{key}" for key in server.keys}

    def members(spec: str) -> set[str]:
        return {i for page in walk(client, verb="ListIdentifiers", metadataPrefix="edm", set=spec)
                for i in identifiers(page)}

    assert members(collection) == {ids[k] for k in server.keys[:3]}
    assert members("collection") == members(collection)
    assert members("group:even") == {ids[k] for k in server.keys[0::2]}
    assert members("group:odd") == members("group:odd:all") == {ids[k] for k in server.keys[1::2]}
    assert members("group") == set(ids.values())
    headers = get(client, verb="GetRecord", identifier=ids[server.keys[0]], metadataPrefix="edm").iter(q("setSpec"))
    assert sorted(e.text for e in headers) == [collection, "group:even"]


def test_a_manifest_whose_annotations_are_all_rejected_or_removed_is_a_deleted_record(client, server):
    with server.store() as store:
        rejected, removed = server.keys[4], server.keys[5]
        for annotation in store.page(rejected, 0, 100):
            judge(store, rejected, annotation.id, "rejected")
        for annotation in store.page(removed, 0, 100):
            store.delete(annotation.id, None)
    for key in (rejected, removed):
        identifier = f"oai:127.0.0.1:{key}"
        for prefix in ("edm", "oai_dc"):
            record = get(client, verb="GetRecord", identifier=identifier, metadataPrefix=prefix).find(f".//{q('record')}")
            assert record.find(q("header")).get("status") == "deleted" and record.find(q("metadata")) is None
        assert client.get(f"{key}/edm.xml").status_code == 410
    listed = {h.findtext(q("identifier")): h.get("status")
              for page in walk(client, verb="ListIdentifiers", metadataPrefix="edm") for h in page.iter(q("header"))}
    assert len(listed) == len(MANIFESTS)  # not silently absent
    assert {i for i, status in listed.items() if status == "deleted"} == {f"oai:127.0.0.1:{k}" for k in (rejected, removed)}


def test_from_and_until_select_by_datestamp(client, server):
    time.sleep(1.1)  # a later second than every record so far
    since = now()
    assert error_code(client.get("oai", params={"verb": "ListIdentifiers", "metadataPrefix": "edm",
                                                "from": since}).content) == "noRecordsMatch"
    with server.store() as store:
        first = store.page(server.keys[0], 0, 1)[0]
        judge(store, server.keys[0], first.id, "accepted")
    changed = get(client, verb="ListIdentifiers", metadataPrefix="edm", **{"from": since})
    assert identifiers(changed) == [f"oai:127.0.0.1:{server.keys[0]}"]
    day = changed.findtext(f".//{q('datestamp')}")[:10]
    that_day = walk(client, verb="ListIdentifiers", metadataPrefix="edm", **{"from": day, "until": day})
    assert f"oai:127.0.0.1:{server.keys[0]}" in [i for page in that_day for i in identifiers(page)]


def test_the_enriched_manifest_links_its_records(client, server):
    key = server.keys[1]
    links = {entry["profile"]: entry for entry in client.get(f"{key}/manifest.json").json()["seeAlso"]
             if "profile" in entry}
    edm_link, oai_link = links["http://www.europeana.eu/schemas/edm/"], links[OAI]
    assert edm_link["format"] == EDM_MEDIA_TYPE and oai_link["format"] == "text/xml"
    response = client.get(edm_link["id"].removeprefix(server.url))
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(EDM_MEDIA_TYPE)
    record = check_response(client.get(oai_link["id"].removeprefix(server.url)).content)
    assert record.find(f".//{q('metadata')}")[0].tag == etree.fromstring(response.content).tag


ERRORS = [
    ({}, "badVerb"),
    ({"verb": "Harvest"}, "badVerb"),
    ({"verb": "Identify", "set": "x"}, "badArgument"),
    ({"verb": "ListRecords"}, "badArgument"),
    ({"verb": "GetRecord", "metadataPrefix": "edm"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
    ({"verb": "GetRecord", "metadataPrefix": "lido", "identifier": "oai:127.0.0.1:0000000000000000"}, "cannotDisseminateFormat"),
    ({"verb": "GetRecord", "metadataPrefix": "edm", "identifier": "oai:127.0.0.1:0000000000000000"}, "idDoesNotExist"),
    ({"verb": "GetRecord", "metadataPrefix": "edm", "identifier": "oai:elsewhere.org:1"}, "idDoesNotExist"),
    ({"verb": "ListMetadataFormats", "identifier": "oai:127.0.0.1:nope"}, "idDoesNotExist"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "from": "2026-13-01"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "from": "2026-1-01"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "from": "2026-01-01T00:00:00"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "from": "2026-01-01", "until": "2026-02-01T00:00:00Z"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "from": "2026-02-01", "until": "2026-01-01"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "from": "2999-01-01"}, "noRecordsMatch"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "until": "2000-01-01"}, "noRecordsMatch"),
    ({"verb": "ListIdentifiers", "metadataPrefix": "edm", "set": "group:none"}, "noRecordsMatch"),
    ({"verb": "ListRecords", "resumptionToken": "not-a-token"}, "badResumptionToken"),
    ({"verb": "ListSets", "resumptionToken": "eyJ2ZXJiIjoiTGlzdFJlY29yZHMifQ"}, "badResumptionToken"),
    ({"verb": "ListRecords", "resumptionToken": "x", "metadataPrefix": "edm"}, "badArgument"),
    ({"verb": "Identify", "resumptionToken": "x"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "edm", "set": "a\x01b"}, "badArgument"),
]


@pytest.mark.parametrize(("arguments", "code"), ERRORS, ids=[f"{c}-{n}" for n, (_, c) in enumerate(ERRORS)])
def test_each_error_condition_returns_its_code(client, arguments, code):
    assert error_code(client.get("oai", params=arguments).content) == code


def test_repeated_arguments_and_a_token_of_another_verb_are_refused(client):
    repeated = client.get("oai?verb=ListRecords&metadataPrefix=edm&metadataPrefix=edm")
    assert error_code(repeated.content) == "badArgument"
    assert error_code(client.get("oai?verb=Identify&verb=Identify").content) == "badVerb"
    token = get(client, verb="ListIdentifiers", metadataPrefix="edm").findtext(f".//{q('resumptionToken')}")
    assert token and error_code(client.get("oai", params={"verb": "ListRecords", "resumptionToken": token}).content) \
        == "badResumptionToken"


def test_a_repository_without_sets_says_so(tmp_path):
    with live_server(tmp_path) as bare, Client(bare) as client:
        assert error_code(client.get("oai", params={"verb": "ListSets"}).content) == "noSetHierarchy"
        arguments = {"verb": "ListRecords", "metadataPrefix": "edm", "set": "group:x"}
        assert error_code(client.get("oai", params=arguments).content) == "noSetHierarchy"
        assert error_code(client.get("oai", params={"verb": "ListRecords", "metadataPrefix": "edm"}).content) \
            == "noRecordsMatch"


def test_a_v2_manifest_links_its_records_in_its_own_terms():
    document = make_manifest(2, [("a", 800, 600)], IMAGES, manifest_id="https://example.org/v2.json")
    links = record_links("https://enricher.example/", "0123456789abcdef")
    enriched = enriched_manifest(parse_manifest(document, document["@id"]), {}, "https://enricher.example/x", links)
    assert enriched["seeAlso"][:2] == [{"@id": link["id"], "format": link["format"], "profile": link["profile"]}
                                       for link in links]
    assert links[1]["id"].endswith("identifier=oai:enricher.example:0123456789abcdef")
