"""Moving up: ``enricher migrate --to postgresql://...`` copies an embedded instance into PostgreSQL with
every id, seq, ETag, container ETag, Change Discovery page, OAI-PMH record and search index entry
unchanged, so OAI-PMH and Content Search answer as before, and the copy goes on where the original
stopped. The raw-row export and import behind it is checked between every pair of backends."""

from __future__ import annotations

import re
from contextlib import ExitStack

import pytest
from click.testing import CliRunner
from conftest import FRESH_STORES, fresh_postgres_schema
from real_annotations import comment, corrected, machine_annotations, manifest
from reviewed import SHA, fill

from enricher import contentsearch, discovery, harvest, measure
from enricher.annotate import manifest_key
from enricher.cli import main
from enricher.errors import EnricherError
from enricher.oai import Repository
from enricher.search import lexicon
from enricher.store import BACKENDS, Store, open_store
from enricher.store.copy import copy_store
from enricher.store.records import COPIED_TABLES
from enricher.vocab import Vocabulary

BASE = "https://annotations.example.org/"
PAGE_SIZE = 7  # Change Discovery activities per page: several pages


def fresh(stack: ExitStack, backend: str, tmp_path) -> str:
    """The URL of a fresh store of BACKEND, removed when STACK closes."""
    made = FRESH_STORES[backend](tmp_path / backend)
    return made if isinstance(made, str) else stack.enter_context(made)


def populate(store: Store, config) -> list[str]:
    """Fill STORE the way a running instance does: a reviewed manifest with verdicts, the measurement
    of its model (evaluation, calibrations), a second manifest of real machine annotations that people
    commented, corrected and deleted, jobs in every state, Change Discovery and the OAI-PMH records
    synced, a pusher's failure. Return the manifest keys."""
    reviewed_key, _ = fill(store, config)
    record = measure.run(store, config, measure.choose_model(store, [reviewed_key], None), keys=[reviewed_key])
    assert record and store.has_calibrations(reviewed_key)

    parsed = manifest()
    key = manifest_key(parsed.id)
    store.save_manifest(key, parsed.id, parsed.id, "real", parsed.document)
    built = machine_annotations(config, Vocabulary.load(), parsed)
    for canvas in parsed.canvases:
        store.replace_machine_annotations(key, canvas.id, "0123456789abcdef" * 4,
                                          [a for a in built if a["target"]["source"]["id"] == canvas.id])
    store.create(key, comment(parsed, f"{BASE}{key}/annotations/comment"), "curator")
    first = store.get(built[0]["id"])
    store.update(first.id, corrected(first.document), first.etag, "curator")
    store.delete(built[1]["id"], None)

    done, cancelled, failed = (store.create_job({"manifest": parsed.id, "n": n}) for n in range(3))
    store.create_job({"manifest": parsed.id, "waiting": True})
    assert store.claim_job().id == done.id
    store.set_job(done.id, total=2, manifests=[key])
    store.mark_canvas_done(done.id, key, parsed.canvases[0].id, None)
    store.mark_canvas_done(done.id, key, parsed.canvases[1].id, "image server said 500")
    store.set_job(done.id, state="done")
    store.cancel_job(cancelled.id)
    store.set_job(failed.id, state="failed", error="the manifest is gone")

    assert discovery.sync(store, BASE) > 0
    assert harvest.sync(store, harvest.Catalogue(config)) > 0 and store.harvest_position() > 0
    store.cursor_failed("push https://triples.example.org/", "connection refused")
    return [reviewed_key, key]


def everything(store: Store, keys: list[str]) -> dict:
    """What a store answers, through its interface: records, counts, ETags, pages, the log, the stream."""
    ids = {change.anno_id for change in store.changes(0, 100_000)}
    answers: dict = {
        "annotations": {anno_id: store.get(anno_id) for anno_id in sorted(ids)},
        "manifests": store.manifests(),
        "changes": store.changes(0, 100_000),
        "jobs": store.jobs(),
        "done": {job.id: store.done_canvases(job.id) for job in store.jobs()},
        "evaluations": store.evaluations(),
        "calibrations": [store.calibration(SHA, key) for key in (*keys, None)],
        "last calibration": store.last_calibration(),
        "models": store.models(),
        "cursors": [store.cursor(name) for name in ("discovery", "push https://triples.example.org/", "none")],
        "stream": discovery.collection(store, BASE, PAGE_SIZE),
        "stream pages": [discovery.page(store, BASE, n, PAGE_SIZE)
                         for n in range(-(-store.activity_count() // PAGE_SIZE))],
        "exhaustive": list(store.exhaustive_classes()),
        "confirmed": list(store.confirmed_boxes()),
        "detections": sorted(store.machine_detections(SHA)),
        "last change": store.last_change(),
        "harvest": (store.harvest_records(0, store.harvest_position(), 1000), store.harvest_sets(),
                    store.harvest_position(), store.earliest_datestamp(), store.cursor("oai")),
    }
    for key in (*keys, None):
        for role in ("annotation", "verdict"):
            answers[f"{key} {role}"] = (store.count(key, role), store.container_etag(key, role),
                                        store.page(key, 0, 100, role), store.page_texts(key, 2, 3, role))
        if key is not None:
            terms = [term for term, _ in store.terms_starting(key, "", 1000)]
            assert terms, f"container {key} has nothing in its search index"
            answers[f"{key} search"] = (store.terms_starting(key, "", 1000), store.term_counts(key, terms),
                                        store.search(key, terms, None, 0, 1000))
    return answers


def published(store: Store, config, keys: list[str]) -> dict:
    """What aggregators and viewers read: OAI-PMH's ListIdentifiers and ListRecords (without the
    response's date), Content Search 2.0 and its autocomplete for what each container holds."""
    repository = Repository(harvest.Catalogue(config), name="enricher", admin_email="", max_records=3)
    answers: dict = {}
    for verb in ("ListIdentifiers", "ListRecords"):
        pages, token = [], None
        while len(pages) < 20:
            arguments = [("verb", verb), *([("resumptionToken", token)] if token else [("metadataPrefix", "oai_dc")])]
            page = repository.respond(store, arguments).decode()
            pages.append(re.sub(r"<responseDate>[^<]*</responseDate>", "", page))
            token = next(iter(re.findall(r"<resumptionToken[^>]*>([^<]+)</resumptionToken>", page)), None)
            if token is None:
                break
        assert "<header" in pages[0], pages[0]
        answers[verb] = pages
    words = lexicon(config.vocab)
    for key in keys:
        for q in ("dog", "do", "person", "a"):
            query = contentsearch.read_query({"q": q})
            found = contentsearch.search(store, words, key, query)
            answers[f"{key} search {q}"] = contentsearch.search2(f"{BASE}{key}/search/2", query, found)
            answers[f"{key} autocomplete {q}"] = contentsearch.complete(store, words, key, query)
    assert any(answers[f"{key} search dog"]["items"] for key in keys)
    return answers


def keep_writing(store: Store, key: str) -> tuple:
    """One more write and the follower after it: what the copy must continue exactly as the original."""
    created = store.create(key, {"id": f"{BASE}{key}/annotations/later", "type": "Annotation", "created": "2026-01-02T00:00:00Z",
                                 "motivation": "commenting", "body": {"type": "TextualBody", "value": "later"},
                                 "target": "https://example.org/canvas/9#xywh=1,1,5,5"}, "alice")
    job = store.create_job({"manifest": "later"})
    discovery.sync(store, BASE)
    return (created.seq, created.etag, store.last_change(), store.container_etag(key), store.container_etag(None),
            store.activity_count(), [(a.position, a.type, a.object_id) for a in store.activities(0, 10_000)[-2:]],
            store.jobs()[0] == job, store.count(key))


@pytest.mark.parametrize("target", sorted(BACKENDS))
@pytest.mark.parametrize("source", sorted(BACKENDS))
def test_every_row_copies_between_every_pair_of_backends(source, target, tmp_path, config):
    with ExitStack() as stack:
        original = stack.enter_context(open_store(fresh(stack, source, tmp_path / "from")))
        copy = stack.enter_context(open_store(fresh(stack, target, tmp_path / "to")))
        keys = populate(original, config)
        copied = copy_store(original, copy)
        assert set(copied) == set(COPIED_TABLES) and copied["annotations"] > 20 and copied["changes"] > 30
        assert everything(copy, keys) == everything(original, keys)
        assert keep_writing(copy, keys[1]) == keep_writing(original, keys[1])


def test_a_target_that_holds_data_is_refused_and_left_as_it_was(store_url, tmp_path):
    with open_store(store_url) as target, open_store(tmp_path / "source.sqlite3") as source:
        source.create_job({"manifest": "a"})
        target.create_job({"manifest": "b"})
        with pytest.raises(EnricherError, match="table jobs of the target store is not empty"):
            copy_store(source, target)
        assert [job.params for job in target.jobs()] == [{"manifest": "b"}]
        with pytest.raises(EnricherError, match="not a table a store copies"):
            next(source.export_rows("sqlite_master"))


@pytest.fixture
def postgres_url(tmp_path):
    with fresh_postgres_schema(tmp_path) as url:
        yield url


def test_enricher_migrate_moves_an_embedded_instance_into_postgresql(tmp_path, config, postgres_url, monkeypatch):
    embedded = tmp_path / "instance" / "enricher.sqlite3"
    with open_store(embedded) as store:
        keys = populate(store, config)
        before, answered = everything(store, keys), published(store, config, keys)
    monkeypatch.setenv("ENRICHER_DATABASE", str(embedded))  # the source comes from setting database

    result = CliRunner().invoke(main, ["migrate", "--to", postgres_url])
    assert result.exit_code == 0, result.output
    assert "annotations" in result.output and result.output.strip().endswith("s)")
    assert sorted(path.name for path in embedded.parent.iterdir()) == ["enricher.sqlite3"]  # untouched, no files added

    with open_store(postgres_url) as scaled:
        assert everything(scaled, keys) == before
        assert published(scaled, config, keys) == answered
        assert scaled.count(None) == before["None annotation"][0] > 0

    again = CliRunner().invoke(main, ["migrate", "--to", postgres_url])
    assert again.exit_code == 1
    assert again.output.startswith("enricher: error: table manifests of the target store is not empty")
    assert len(again.output.strip().splitlines()) == 1 and "password" not in again.output
