"""The store contract: what every backend registered in enricher.store.BACKENDS must do, run against
each of them (the ``store_url`` fixture): re-run semantics, ETags, compare-and-swap under real threads,
paging, the change log, follower cursors and the job queue. Backend-specific checks (SQLite's pragmas,
migrations and query plans) live in tests/test_store_<backend>.py."""

from __future__ import annotations

import re
import threading

import pytest
from visits import work

from enricher.errors import (
    EnricherError,
    Gone,
    InputError,
    NotFound,
    PreconditionFailed,
)
from enricher.store import Store, etag_matches, open_store
from enricher.store.writes import PAGE_BLOCK

KEY, OTHER = "0123456789abcdef", "fedcba9876543210"
CANVAS = "https://example.org/iiif/book/canvas/1"
MODEL, NEW_MODEL = "a" * 64, "b" * 64
ETAG = re.compile(r'^"[0-9a-f]{32}"$')


def machine(n: int, canvas: str = CANVAS, key: str = KEY, **changes) -> dict:
    """A machine annotation like annotate.build_annotation makes (created stamped per run)."""
    return {
        "@context": ["http://www.w3.org/ns/anno.jsonld"],
        "id": f"https://enricher.example/{key}/annotations/{n:032x}",
        "type": "Annotation",
        "motivation": "tagging",
        "created": changes.pop("created", "2026-01-01T00:00:00Z"),
        "confidence": changes.pop("confidence", 0.9),
        "body": [{"type": "TextualBody", "value": changes.pop("label", "dog"), "purpose": "tagging"}],
        "target": {
            "type": "SpecificResource",
            "source": {"id": canvas, "type": "Canvas"},
            # apart, so re-runs match them by id only (overlapping boxes of one class reconcile: test_review)
            "selector": {"type": "FragmentSelector", "value": f"xywh={n * 20},0,10,10"},
        },
        **changes,
    }


def human(text: str, canvas: str = CANVAS, n: int = 1) -> dict:
    return {
        "id": f"https://enricher.example/{KEY}/annotations/human{n}",
        "type": "Annotation",
        "motivation": "commenting",
        "body": {"type": "TextualBody", "value": text},
        "target": f"{canvas}#xywh=1,2,3,4",
    }


@pytest.fixture
def store(store_url):
    with open_store(store_url) as store:
        yield store


def kinds(store: Store, after: int = 0) -> list[tuple[str, str]]:
    return [(c.kind, c.anno_id) for c in store.changes(after, 1000)]


def last_seq(store: Store) -> int:
    found = store.changes(0, 100_000)
    assert store.last_change() == (found[-1].seq if found else 0)
    return store.last_change()


# schema


# manifests


def test_manifests_are_saved_listed_and_refreshed(store):
    store.save_manifest(KEY, "https://example.org/m1", "https://example.org/m1.json", "One", {"id": "m1"})
    store.save_manifest(OTHER, "https://example.org/m2", "https://example.org/m2.json", "Two", {"id": "m2"})
    store.save_manifest(KEY, "https://example.org/m1", "https://example.org/m1.json", "One again", {"id": "m1", "v": 2})
    assert [m.key for m in store.manifests()] == store.manifest_keys() == [KEY, OTHER]
    saved = store.manifest(KEY)
    assert (saved.label, saved.document) == ("One again", {"id": "m1", "v": 2})
    assert store.manifest("nothing") is None


# re-runs


def test_first_run_creates_and_logs_every_annotation(store):
    counts = store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(n) for n in range(3)])
    assert counts == {"created": 3, "updated": 0, "deleted": 0, "kept": 0}
    assert kinds(store) == [("Create", machine(n)["id"]) for n in range(3)]
    stored = store.get(machine(0)["id"])
    assert stored.origin == "machine" and not stored.deleted and stored.canvas_id == CANVAS
    assert "@context" not in stored.document and stored.document["confidence"] == 0.9
    assert ETAG.match(stored.etag)


def test_an_identical_rerun_touches_nothing(store):
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(n) for n in range(3)])
    before = {n: store.get(machine(n)["id"]) for n in range(3)}
    seq, container = last_seq(store), store.container_etag(KEY)
    again = [machine(n, created="2026-06-01T12:00:00Z") for n in range(3)]  # only the run's time differs
    counts = store.replace_machine_annotations(KEY, CANVAS, MODEL, again)
    assert counts == {"created": 0, "updated": 0, "deleted": 0, "kept": 3}
    assert last_seq(store) == seq and store.container_etag(KEY) == container
    for n in range(3):
        after = store.get(machine(n)["id"])
        assert (after.etag, after.version, after.document) == (before[n].etag, before[n].version, before[n].document)


def test_a_rerun_updates_changed_retires_missing_and_adds_new(store):
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(n) for n in range(3)])
    old_etag, seq = store.get(machine(0)["id"]).etag, last_seq(store)
    rerun = [machine(0, confidence=0.95, created="2026-06-01T00:00:00Z"), machine(1), machine(7)]
    counts = store.replace_machine_annotations(KEY, CANVAS, MODEL, rerun)
    assert counts == {"created": 1, "updated": 1, "deleted": 1, "kept": 1}
    assert sorted(kinds(store, seq)) == sorted(
        [("Update", machine(0)["id"]), ("Delete", machine(2)["id"]), ("Create", machine(7)["id"])]
    )
    updated = store.get(machine(0)["id"])
    assert updated.etag != old_etag and updated.document["confidence"] == 0.95
    assert updated.document["created"] == "2026-01-01T00:00:00Z"  # first seen then
    retired = store.get(machine(2)["id"])
    assert retired.deleted and retired.origin == "machine"
    assert [a.id for a in store.canvas_annotations(KEY, CANVAS)] == [machine(n)["id"] for n in (0, 1, 7)]
    assert store.count(KEY) == 3
    # found again by a later run: back, as a Create
    counts = store.replace_machine_annotations(KEY, CANVAS, MODEL, [*rerun, machine(2)])
    assert counts["created"] == 1 and not store.get(machine(2)["id"]).deleted


def test_reruns_never_touch_what_a_person_created_or_edited(store):
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(n) for n in range(4)])
    mine = store.create(KEY, human("a note"), "alice")
    edited = store.get(machine(0)["id"])
    store.update(edited.id, {**edited.document, "confidence": 1.0}, edited.etag, "bob")
    store.delete(machine(1)["id"], None)
    snapshot = {a: store.get(a) for a in (mine.id, machine(0)["id"], machine(1)["id"])}

    # the model now finds 0 and 1 again (changed) but no longer 2 and 3
    counts = store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(0, confidence=0.5), machine(1)])
    assert counts == {"created": 0, "updated": 0, "deleted": 2, "kept": 2}
    for anno_id, before in snapshot.items():
        assert store.get(anno_id) == before
    assert store.get(machine(0)["id"]).origin == "edited"
    assert store.get(machine(1)["id"]).deleted  # a person's deletion stays
    assert store.get(machine(2)["id"]).deleted and store.get(machine(3)["id"]).deleted


def test_reruns_of_another_model_or_canvas_leave_the_rest(store):
    other_canvas = CANVAS.replace("/1", "/2")
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
    store.replace_machine_annotations(KEY, other_canvas, MODEL, [machine(2, canvas=other_canvas)])
    store.replace_machine_annotations(KEY, CANVAS, NEW_MODEL, [machine(3)])
    store.replace_machine_annotations(KEY, CANVAS, NEW_MODEL, [])  # the new model's rerun finds nothing
    assert not store.get(machine(1)["id"]).deleted and not store.get(machine(2)["id"]).deleted
    assert store.get(machine(3)["id"]).deleted


def test_machine_annotations_are_checked(store):
    with pytest.raises(InputError) as caught:
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [{**machine(1), "id": None}])
    assert caught.value.pointer == "/id"
    with pytest.raises(EnricherError, match="another canvas"):
        store.replace_machine_annotations(KEY, "https://example.org/other", MODEL, [machine(1)])
    assert store.count(KEY) == 0 and store.changes(0, 10) == []


def test_the_same_detection_twice_is_stored_once(store):
    counts = store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1), machine(1, confidence=0.3)])
    assert counts["created"] == 1 and store.count(KEY) == 1


# writes by people


def test_create_update_delete_lifecycle(store):
    created = store.create(KEY, {"@context": "http://www.w3.org/ns/anno.jsonld", **human("first")}, "alice")
    assert (created.origin, created.creator, created.version) == ("human", "alice", 1)
    assert "@context" not in created.document and created.document["created"]
    with pytest.raises(InputError, match="already exists"):
        store.create(KEY, human("again"), "alice")

    with pytest.raises(PreconditionFailed) as caught:
        store.update(created.id, human("second"), '"stale"', "bob")
    assert caught.value.where == created.id
    updated = store.update(created.id, human("second"), created.etag, "bob")
    assert updated.document["body"]["value"] == "second"
    assert updated.etag != created.etag and updated.version == 2 and updated.origin == "human"
    assert updated.document["created"] == created.document["created"] and updated.document["modified"]
    assert updated.creator == "bob"
    with pytest.raises(InputError):
        store.update(created.id, {**human("x"), "id": "https://elsewhere/1"}, updated.etag, "bob")

    with pytest.raises(PreconditionFailed):
        store.delete(created.id, created.etag)
    store.delete(created.id, updated.etag)
    assert store.get(created.id).deleted and store.count(KEY) == 0
    with pytest.raises(Gone):
        store.update(created.id, human("third"), "*", "bob")
    with pytest.raises(Gone):
        store.delete(created.id, None)
    with pytest.raises(NotFound):
        store.update("https://enricher.example/nothing", human("x"), "*", "bob")
    assert [k for k, _ in kinds(store)] == ["Create", "Update", "Delete"]


def test_an_annotation_needs_a_target(store):
    with pytest.raises(InputError) as caught:
        store.create(KEY, {"id": "https://enricher.example/x", "type": "Annotation"}, "alice")
    assert caught.value.pointer == "/target"


def test_editing_a_machine_annotation_marks_it_edited(store):
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
    stored = store.get(machine(1)["id"])
    edited = store.update(stored.id, {**stored.document, "confidence": 0.1}, stored.etag, "carol")
    assert edited.origin == "edited" and edited.creator == "carol"


def test_etags_are_strong_and_survive_a_restart(store_url):
    path = store_url
    with open_store(path) as store:
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
        etag, container, everything = store.get(machine(1)["id"]).etag, store.container_etag(KEY), store.container_etag(None)
    with open_store(path) as store:
        assert store.get(machine(1)["id"]).etag == etag
        assert store.container_etag(KEY) == container and store.container_etag(None) == everything
        assert ETAG.match(container) and container != everything


def test_a_container_etag_follows_only_its_own_changes(store):
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
    mine, other = store.container_etag(KEY), store.container_etag(OTHER)
    store.replace_machine_annotations(OTHER, CANVAS, MODEL, [machine(2, key=OTHER)])
    assert store.container_etag(KEY) == mine and store.container_etag(OTHER) != other
    store.delete(machine(1)["id"], None)
    assert store.container_etag(KEY) != mine


def test_a_calibration_changes_the_etag_of_the_containers_it_serves_in(store):
    # it changes what members say (calibratedConfidence): container page ETags rely on this alone
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
    store.replace_machine_annotations(OTHER, CANVAS, MODEL, [machine(2, key=OTHER)])
    mine, everything, other = (store.container_etag(key) for key in (KEY, None, OTHER))
    store.save_calibration("c1", MODEL, KEY, "platt", {"classes": {"clock": {"a": 1.0, "b": -4.0}}})
    assert store.container_etag(KEY) != mine and store.container_etag(None) != everything
    assert store.container_etag(OTHER) == other


def test_if_match_is_compared_strongly():
    assert etag_matches('"abc"', '"abc"') and etag_matches('"x", "abc"', '"abc"') and etag_matches("*", '"abc"')
    assert not etag_matches('W/"abc"', '"abc"') and not etag_matches('"abd"', '"abc"')


@pytest.mark.parametrize("shared", [False, True], ids=["store-per-thread", "shared-store"])
def test_twenty_concurrent_puts_with_one_etag_give_one_winner(store_url, shared):
    path = store_url
    with open_store(path) as store:
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
        original = store.get(machine(1)["id"])
    barrier = threading.Barrier(20)
    outcomes: dict[int, str] = {}
    common = open_store(path) if shared else None

    def put(n: int) -> None:
        own = common or open_store(path)
        try:
            barrier.wait()
            own.update(original.id, {**original.document, "confidence": n / 100}, original.etag, f"user{n}")
            outcomes[n] = "ok"
        except PreconditionFailed:
            outcomes[n] = "412"
        finally:
            if common is None:
                own.close()

    threads = [threading.Thread(target=put, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if common:
        common.close()
    winners = [n for n, outcome in outcomes.items() if outcome == "ok"]
    assert len(outcomes) == 20 and len(winners) == 1
    assert sorted(outcomes.values()).count("412") == 19
    with open_store(path) as store:
        final = store.get(original.id)
        assert final.version == 2 and final.document["confidence"] == winners[0] / 100
        assert final.creator == f"user{winners[0]}"
        assert [k for k, _ in kinds(store)] == ["Create", "Update"]


# paging


def fill(store: Store, per_key: int) -> dict[str, list[str]]:
    """Interleave two containers, canvas by canvas; return each container's ids in stored order."""
    ids: dict[str, list[str]] = {KEY: [], OTHER: []}
    for c in range(0, per_key, 25):
        for key in (KEY, OTHER):
            canvas = f"https://example.org/{key}/canvas/{c}"
            batch = [machine(n, canvas=canvas, key=key) for n in range(c, min(c + 25, per_key))]
            store.replace_machine_annotations(key, canvas, MODEL, batch)
            ids[key] += [a["id"] for a in batch]
    return ids


def walk(store: Store, key: str | None, size: int) -> list[str]:
    seen, offset = [], 0
    while page := store.page(key, offset, size):
        assert len(page) <= size
        seen += [a.id for a in page]
        offset += size
    return seen


def test_pages_cover_a_container_once_in_stable_order(store):
    ids = fill(store, 260)
    assert walk(store, KEY, 100) == ids[KEY] and store.count(KEY) == 260
    everything = walk(store, None, 100)
    assert sorted(everything) == sorted(ids[KEY] + ids[OTHER]) and store.count(None) == 520
    assert walk(store, None, 100) == everything  # stable
    assert store.page(KEY, 1000, 100) == []
    with pytest.raises(InputError):
        store.page(KEY, -1, 10)


def test_pages_follow_deletions_and_additions(store_url):
    path = store_url
    with open_store(path) as store:
        ids = fill(store, 120)
        walk(store, KEY, 50)  # the store now knows where pages start
        gone = ids[KEY][10:20]
        for anno_id in gone:
            store.delete(anno_id, None)
        extra = machine(999, canvas="https://example.org/late")
        store.create(KEY, extra, "alice")
        expected = [a for a in ids[KEY] if a not in gone] + [extra["id"]]
        assert walk(store, KEY, 50) == expected and store.count(KEY) == 111
        deep = store.page(KEY, 100, 50)
        with open_store(path) as fresh:  # no page starts known: same answer from scratch
            assert fresh.page(KEY, 100, 50) == deep and [a.id for a in deep] == expected[100:]


def test_the_change_log_pages_and_filters_by_container(store):
    fill(store, 30)
    everything = store.changes(0, 1000)
    assert [c.seq for c in everything] == sorted(c.seq for c in everything) and len(everything) == 60
    assert store.changes(everything[9].seq, 5) == everything[10:15]
    mine = store.changes(0, 1000, key=KEY)
    assert store.last_change(KEY) == mine[-1].seq and store.last_change("nothing") == 0
    assert len(mine) == 30 and {c.key for c in mine} == {KEY} and {c.kind for c in mine} == {"Create"}


def test_one_transaction_spans_several_writes(store):
    job = store.create_job({"manifest": "m"})
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
            store.mark_canvas_done(job.id, KEY, CANVAS, None)
            raise RuntimeError("killed between the two")
    assert store.get(machine(1)["id"]) is None and store.done_canvases(job.id) == set()
    with store.transaction():
        store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])
        store.mark_canvas_done(job.id, KEY, CANVAS, None)
    assert store.count(KEY) == 1 and store.done_canvases(job.id) == {(KEY, CANVAS)}


# jobs


def test_job_lifecycle_progress_and_errors(store):
    job = store.create_job({"manifest": "https://example.org/m.json", "conf": 0.5})
    assert (job.state, job.params["conf"], job.done, job.total, job.started) == ("queued", 0.5, 0, 0, None)
    claimed = store.claim_job()
    assert claimed.id == job.id and claimed.state == "running" and claimed.started
    assert store.claim_job() is None
    store.set_job(job.id, total=3, manifests=[KEY])
    store.mark_canvas_done(job.id, KEY, "c1", None)
    store.mark_canvas_done(job.id, KEY, "c2", "image server said 500")
    store.mark_canvas_done(job.id, KEY, "c1", None)  # a resumed job finishing a canvas again
    store.mark_canvas_done(job.id, KEY, "c3", None, "nothing to look at: it paints Sound")
    current = store.job(job.id)
    assert (current.done, current.total, current.manifests) == (3, 3, [KEY])
    assert current.errors == [{"manifest": KEY, "canvas": "c2", "error": "image server said 500"}]
    assert current.skipped == [{"manifest": KEY, "canvas": "c3", "reason": "nothing to look at: it paints Sound"}]
    assert store.done_canvases(job.id) == {(KEY, "c1"), (KEY, "c2"), (KEY, "c3")}
    assert store.set_job(job.id, expect="running", state="done")
    finished = store.job(job.id)
    assert finished.state == "done" and finished.finished
    assert store.job("nothing") is None


def test_cancelled_jobs_are_not_claimed_and_not_overwritten(store):
    queued = store.create_job({"manifest": "a"})
    running = store.create_job({"manifest": "b"})
    assert store.cancel_job(queued.id).state == "cancelled"
    assert store.claim_job().id == running.id
    assert store.cancel_job(running.id).state == "cancelled"
    assert not store.set_job(running.id, expect="running", state="done")  # the runner finishing late
    assert store.job(running.id).state == "cancelled" and store.claim_job() is None
    assert store.cancel_job("nothing") is None
    with pytest.raises(TypeError):
        store.set_job(running.id, colour="red")
    with pytest.raises(InputError):
        store.set_job(running.id, state="exploded")


def test_interrupted_jobs_are_requeued_in_order(store):
    first, second = store.create_job({"manifest": "a"}), store.create_job({"manifest": "b"})
    store.claim_job()
    assert store.requeue_interrupted() == 1
    assert store.claim_job().id == first.id and store.claim_job().id == second.id
    assert [j.id for j in store.jobs()] == [second.id, first.id]


def test_concurrent_claims_take_each_job_once(store_url):
    path = store_url
    with open_store(path) as store:
        created = {store.create_job({"manifest": str(n)}).id for n in range(5)}
    barrier = threading.Barrier(10)
    claimed: list[str] = []

    def claim() -> None:
        with open_store(path) as own:
            barrier.wait()
            while job := own.claim_job():
                claimed.append(job.id)

    threads = [threading.Thread(target=claim) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(created)


# rate limits: token buckets, with the clock given, so no test waits

WRITES = ("write client 192.0.2.1", 1.0, 3.0)  # one a second, three at once


def waits(store: Store, buckets: list, now: float, times: int = 1) -> list[tuple[str, float] | None]:
    """What TIMES takes from BUCKETS at NOW answer, waits rounded to the microsecond."""
    answers = [store.take(buckets, now) for _ in range(times)]
    return [answer and (answer[0], round(answer[1], 6)) for answer in answers]


def test_a_bucket_gives_its_capacity_at_once_then_refills_at_its_rate(store):
    name = WRITES[0]
    assert waits(store, [WRITES], 100.0, 4) == [None, None, None, (name, 1.0)]
    assert waits(store, [WRITES], 100.5) == [(name, 0.5)]  # refused: half a unit back
    assert waits(store, [WRITES], 101.0, 2) == [None, (name, 1.0)]
    assert waits(store, [WRITES], 1000.0, 4)[-1] == (name, 1.0)  # full again, not fuller


def test_several_buckets_are_taken_from_together_or_not_at_all(store):
    token = ("write token curator", 1.0, 1.0)
    other = ("write client 192.0.2.2", 0.1, 5.0)
    assert waits(store, [WRITES, token], 10.0) == [None]
    assert waits(store, [other, token], 10.0) == [(token[0], 1.0)]  # the token's bucket is empty
    assert waits(store, [WRITES, token], 10.25) == [(token[0], 0.75)]
    # the refusal took nothing: OTHER still holds all five
    assert waits(store, [other], 10.25, 6)[-2:] == [None, (other[0], 10.0)]
    assert waits(store, [WRITES], 10.25, 3) == [None, None, (WRITES[0], 0.75)]  # two of three were left
    assert waits(store, [other, token, WRITES], 10.25) == [(other[0], 10.0)]  # the longest wait is named


def test_buckets_are_shared_by_every_connection_and_concurrent_takes_never_overdraw(store_url):
    bucket = ("job token bot", 1 / 3600, 10.0)
    allowed: list[None] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        with open_store(store_url) as own:
            barrier.wait()
            allowed.extend(answer for answer in (own.take([bucket], 50.0) for _ in range(3)) if answer is None)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 10
    with open_store(store_url) as store:
        assert waits(store, [bucket], 50.0) == [(bucket[0], 3600.0)]


def test_a_clock_that_goes_back_refills_nothing(store):
    waits(store, [WRITES], 100.0, 3)
    assert waits(store, [WRITES], 90.0) == [(WRITES[0], 1.0)]
    assert waits(store, [WRITES], 100.5) == [(WRITES[0], 0.5)]


def test_a_job_ends_when_its_last_canvas_is_finished(store):
    job = store.create_job({"manifest": "m"})
    store.claim_job()
    store.set_job(job.id, total=2, manifests=[KEY])
    store.mark_canvas_done(job.id, KEY, "c1", None)
    assert store.finish_job(job.id) is None and store.job(job.id).state == "running"  # one canvas to go
    store.mark_canvas_done(job.id, KEY, "c2", "image server said 500")
    ended = store.finish_job(job.id)
    assert (ended.state, ended.error, ended.done) == ("done", None, 2) and ended.finished
    assert store.finish_job(job.id) is None  # a redelivered last canvas ends it only once

    failing = store.create_job({"manifest": "m"})
    store.claim_job()
    store.set_job(failing.id, total=2)
    store.mark_canvas_done(failing.id, KEY, "c1", "first failure")
    store.mark_canvas_done(failing.id, KEY, "c2", "second failure")
    ended = store.finish_job(failing.id)
    assert ended.state == "failed" and "every canvas failed" in ended.error and "first failure" in ended.error

    cancelled = store.create_job({"manifest": "m"})
    store.claim_job()
    store.set_job(cancelled.id, total=1)
    store.cancel_job(cancelled.id)
    store.mark_canvas_done(cancelled.id, KEY, "c1", None)
    assert store.finish_job(cancelled.id) is None and store.job(cancelled.id).state == "cancelled"
    assert store.finish_job("nothing") is None


def test_concurrent_last_canvases_end_the_job_once(store_url):
    with open_store(store_url) as store:
        job = store.create_job({"manifest": "m"})
        store.claim_job()
        store.set_job(job.id, total=10)
    barrier = threading.Barrier(10)
    ended: list[str] = []

    def finish(n: int) -> None:
        with open_store(store_url) as own:
            barrier.wait()
            with own.transaction():  # as a worker commits its canvas with its done marker
                own.mark_canvas_done(job.id, KEY, f"c{n}", None)
                if own.finish_job(job.id) is not None:
                    ended.append(own.job(job.id).state)

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ended == ["done"]


# ---- what OAI-PMH harvests ----------------------------------------------------------------------------


def test_harvest_records_move_to_the_end_with_every_change(store):
    assert store.harvest_position() == 0 and store.earliest_datestamp() is None and store.harvest_record(KEY) is None
    first = store.save_harvest_record(KEY, "2026-01-01T00:00:00Z", False, {"collection:c1": "Collection one"})
    second = store.save_harvest_record(OTHER, "2026-01-02T00:00:00Z", False, {})
    assert (first.position, second.position) == (1, 2) and first.sets == ("collection:c1",)
    moved = store.save_harvest_record(KEY, "2026-01-03T00:00:00Z", True, {"group:a:b": "B", "group:a": "A"})
    assert moved.position == 3 and moved.deleted and moved.sets == ("group:a", "group:a:b")
    assert [r.key for r in store.harvest_records(0, 3, 10)] == [OTHER, KEY]
    assert store.harvest_position() == 3 and store.earliest_datestamp() == "2026-01-02T00:00:00Z"
    # a record keeps its sets' names; a set no record holds any more is still known (a harvester may ask)
    assert [(s.spec, s.name) for s in store.harvest_sets()] == [
        ("collection:c1", "Collection one"), ("group:a", "A"), ("group:a:b", "B")]


def test_a_datestamp_never_goes_back_along_the_harvest_order(store):
    store.save_harvest_record(KEY, "2026-01-02T00:00:05Z", False, {})
    late = store.save_harvest_record(OTHER, "2026-01-02T00:00:04Z", False, {})  # another writer's clock
    assert late.datestamp == "2026-01-02T00:00:05Z"


def test_harvest_records_page_by_position_and_filter_by_date_and_set(store):
    for n in range(6):
        key = f"{n:016x}"
        sets = {"group:even": "Even"} if n % 2 == 0 else {"group:odd:x": "Odd x"}
        store.save_harvest_record(key, f"2026-01-0{n + 1}T12:00:00Z", n == 5, sets)
    everything = store.harvest_records(0, 6, 100)
    assert [r.position for r in everything] == [1, 2, 3, 4, 5, 6] and everything[-1].deleted
    assert [r.position for r in store.harvest_records(2, 6, 2)] == [3, 4]
    assert [r.position for r in store.harvest_records(0, 4, 100)] == [1, 2, 3, 4]  # UPTO freezes a list
    dated = store.harvest_records(0, 6, 100, since="2026-01-02T12:00:00Z", until="2026-01-04T12:00:00Z")
    assert [r.position for r in dated] == [2, 3, 4]
    assert [r.position for r in store.harvest_records(0, 6, 100, set_spec="group:even")] == [1, 3, 5]
    assert [r.position for r in store.harvest_records(0, 6, 100, set_spec="group:odd")] == [2, 4, 6]  # below it
    assert store.harvest_records(0, 6, 100, set_spec="group:od") == []  # a prefix is not a parent set
    assert store.harvest_count(6, set_spec="group:odd", since="2026-01-03T00:00:00Z") == 2
    assert store.harvest_count(3) == 3


# search (enricher.search says what the index terms are; here: what the store does with them)

def _found(store, *terms, motivations=None, key=KEY) -> list[str]:
    return [a.id for a in store.search(key, list(terms), motivations)]


def test_search_finds_public_annotations_by_term_and_counts_them(store):
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1), machine(2), machine(3, label="cat")])
    store.replace_machine_annotations(OTHER, CANVAS, MODEL, [machine(4, key=OTHER)])
    dogs = [machine(n)["id"] for n in (1, 2)]
    assert _found(store, "class:dog") == dogs
    assert store.term_counts(KEY, ["class:dog", "class:cat", "class:bird"]) == {"class:dog": 2, "class:cat": 1}
    assert _found(store, "class:dog", "class:cat") == [machine(3)["id"], *dogs]  # by term, then store order
    assert store.term_counts(OTHER, ["class:dog"]) == {"class:dog": 1}
    assert [a.id for a in store.search(KEY, ["class:dog", "class:cat"], offset=1, limit=1)] == [dogs[0]]
    assert _found(store, "class:dog", motivations=["commenting"]) == []
    assert store.term_counts(KEY, ["class:dog"], ["tagging"]) == {"class:dog": 2}


def test_search_follows_rejections_edits_and_deletions(store):
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1), machine(2)])
    first, second = (store.get(machine(n)["id"]) for n in (1, 2))
    verdict = {"id": "https://enricher.example/verdicts/v1", "type": "Annotation", "motivation": "assessing",
               "body": [], "target": {"source": first.id}}
    store.add_verdict(KEY, verdict, "curator", target=first.id, canvas_id=None, judgement="rejected",
                      version=first.document["created"])
    assert _found(store, "class:dog") == [second.id]
    store.update(second.id, machine(2, label="cat"), second.etag, "curator")
    assert _found(store, "class:dog") == [] and _found(store, "class:cat") == [second.id]
    store.delete(second.id, None)
    assert _found(store, "class:cat") == [] and store.term_counts(KEY, ["class:cat", "class:dog"]) == {}
    store.retract_verdict(verdict["id"], None)
    assert _found(store, "class:dog") == [first.id]


def test_a_persons_text_is_found_by_its_words_and_a_class_by_its_concept(store):
    store.create(KEY, human("A small dóg"), "alice")
    store.create(KEY, {**human("Hund", n=2), "motivation": "tagging"}, "alice")  # a label of the class dog
    assert _found(store, "text:a dog small") == [human("", n=1)["id"]]
    assert _found(store, "word:small") == [human("", n=1)["id"]]
    assert _found(store, "class:dog") == [human("", n=2)["id"]]
    assert store.terms_starting(KEY, "word:s") == [("word:small", 1)]
    assert _found(store, "class:dog", motivations=["commenting"]) == []


def test_written_concepts_are_those_public_annotations_of_people_name(store):
    tagged = lambda n, *iris: {**human("", n=n), "body": [{"type": "SpecificResource", "subject": iri}  # noqa: E731
                                                          for iri in iris]}
    wd = "http://www.wikidata.org/entity/"
    store.create(KEY, tagged(1, wd + "Q2", wd + "Q1"), "alice")
    store.create(OTHER, tagged(2, wd + "Q1"), "bob")
    store.create(KEY, tagged(3, wd + "Q3"), "alice")
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])  # a class: no iri term
    assert store.written_concepts() == [wd + "Q1", wd + "Q2", wd + "Q3"]
    store.delete(tagged(3)["id"], None)
    first = store.get(tagged(1)["id"])
    store.update(first.id, tagged(1, wd + "Q1"), first.etag, "alice")
    assert store.written_concepts() == [wd + "Q1"]


def test_seeding_stores_indexes_and_logs_in_bulk(store):
    store.replace_machine_annotations(OTHER, CANVAS, MODEL, [machine(100, key=OTHER)])  # numbers taken before
    assert store.seed_machine_annotations(KEY, MODEL, [machine(n, label="dog" if n % 2 else "cat") for n in range(10)]) == 10
    assert store.count(KEY) == 10 and len(store.changes(0, 100)) == 11
    assert store.term_counts(KEY, ["class:dog", "class:cat"]) == {"class:dog": 5, "class:cat": 5}
    assert _found(store, "class:dog") == [machine(n)["id"] for n in range(1, 10, 2)]
    seeded = store.get(machine(1)["id"])
    assert seeded.review_state == "pending" and seeded.origin == "machine" and seeded.concept == "dog"
    # a re-run sees them like any other machine annotation
    assert store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1)])["deleted"] == 9
    assert store.term_counts(KEY, ["class:dog", "class:cat"]) == {"class:dog": 1}
    with pytest.raises(InputError):
        store.seed_machine_annotations(KEY, MODEL, [machine(1)])


def test_class_counts_follow_every_write_of_every_kind(store):
    counted = lambda: {(c.concept, c.model_sha256): c.live for c in store.class_counts()}  # noqa: E731
    store.seed_machine_annotations(KEY, MODEL, [machine(n, label="dog" if n % 2 else "cat") for n in range(6)])
    store.replace_machine_annotations(OTHER, CANVAS, NEW_MODEL, [machine(10, key=OTHER)])
    assert counted() == {("cat", MODEL): 3, ("dog", MODEL): 3, ("dog", NEW_MODEL): 1}
    first = store.get(machine(1)["id"])
    store.update(first.id, machine(1, label="horse"), first.etag, "curator")  # relabelled: moves class
    store.delete(machine(2)["id"], None)
    made = store.create(KEY, {**human("Hund", n=2), "motivation": "tagging"}, "alice")  # a person's dog
    verdict = {"id": "https://enricher.example/verdicts/v1", "type": "Annotation", "motivation": "assessing",
               "body": [], "target": {"source": machine(3)["id"]}}
    store.add_verdict(KEY, verdict, "curator", target=machine(3)["id"], canvas_id=None, judgement="accepted",
                      version=machine(3)["created"])  # a verdict counts under no class
    assert counted() == {("cat", MODEL): 2, ("dog", MODEL): 2, ("horse", MODEL): 1, ("dog", NEW_MODEL): 1,
                         ("dog", None): 1}
    store.delete(made.id, None)
    store.replace_machine_annotations(OTHER, CANVAS, NEW_MODEL, [])  # a re-run that found nothing
    assert counted() == {("cat", MODEL): 2, ("dog", MODEL): 2, ("horse", MODEL): 1}


def test_a_rerun_keeps_the_run_that_generated_an_unchanged_annotation(store):
    first, second = "https://enricher.example/runs/1", "https://enricher.example/runs/2"
    store.replace_machine_annotations(KEY, CANVAS, MODEL, [machine(1, wasGeneratedBy=first), machine(2, wasGeneratedBy=first)])
    counts = store.replace_machine_annotations(
        KEY, CANVAS, MODEL, [machine(1, wasGeneratedBy=second), machine(2, confidence=0.5, wasGeneratedBy=second)])
    assert counts["kept"] == 1 and counts["updated"] == 1
    assert store.get(machine(1)["id"]).document["wasGeneratedBy"] == first
    assert store.get(machine(2)["id"]).document["wasGeneratedBy"] == second


def test_a_job_keeps_what_its_run_used(store):
    job = store.create_job({"manifest": "https://example.org/m.json"})
    assert store.job(job.id).provenance is None
    used = {"model": "demo.pt", "modelSha256": MODEL, "runtime": "ultralytics 8", "thresholds": {"conf": 0.3}}
    assert store.set_job(job.id, provenance=used)
    assert store.job(job.id).provenance == used


def seeded(store: Store, total: int, batch: int = 700) -> dict[str, list[str]]:
    """TOTAL machine annotations in bulk, alternating between KEY and OTHER every BATCH, so the two
    containers interleave across blocks of seqs; each container's ids in store order."""
    ids: dict[str, list[str]] = {KEY: [], OTHER: []}
    for start in range(0, total, batch):
        key = (KEY, OTHER)[start // batch % 2]
        made = [machine(n, key=key) for n in range(start, min(start + batch, total))]
        store.seed_machine_annotations(key, MODEL, made)
        ids[key] += [a["id"] for a in made]
    return ids


def test_pages_past_many_blocks_hold_the_rows_at_their_offsets(store):
    """Pages found through the blocks of seqs (writes.page_start) hold exactly the live rows at their
    offsets, in containers that interleave and lose rows across blocks."""
    ids = seeded(store, 3 * PAGE_BLOCK + 500)
    gone = ids[KEY][5:8] + ids[KEY][PAGE_BLOCK - 20 : PAGE_BLOCK + 40] + ids[OTHER][-3:]
    for anno_id in gone:
        store.delete(anno_id, None)
    live = {key: [a for a in members if a not in gone] for key, members in ids.items()}
    live[None] = [a for a in [*ids[KEY], *ids[OTHER]] if a not in gone]
    live[None].sort(key=lambda anno_id: store.get(anno_id).seq)
    for key, expected in live.items():
        assert store.count(key) == len(expected)
        for offset in (0, 1, 99, 650, 701, len(expected) - 100, len(expected) - 1, len(expected)):
            assert [a.id for a in store.page(key, offset, 100)] == expected[offset : offset + 100], (key, offset)
            assert len(store.page_texts(key, offset, 100)) == len(expected[offset : offset + 100])
    assert store.page(KEY, 10, 0) == []


def test_the_last_page_of_a_large_container_costs_what_an_early_one_does(store):
    """The last page's first row is found without stepping through the rows before it: counted in the
    backend's own unit of work (tests/visits.py), never timed. OFFSET costs ten times more here."""
    total = 10 * PAGE_BLOCK
    store.seed_machine_annotations(KEY, MODEL, [machine(n) for n in range(total)])
    # both pages start 50 rows into a block of seqs (a fresh store numbers from 1: block 0 holds 1023)
    early, late = 50, 9 * PAGE_BLOCK - 1 + 50
    for key in (KEY, None):
        costs = [work(store, lambda k=key, o=offset: store.page(k, o, 100)) for offset in (early, late)]
        assert costs[1] < 2 * costs[0], (key, costs)
