"""The pipeline's worker pool runs urgent work first, hands errors to the waiting caller and finishes
what it was given before it is left."""

import threading

import pytest

from enricher.workpool import LATER, URGENT, WorkPool


def test_urgent_work_goes_before_work_queued_earlier():
    started, release, order = threading.Event(), threading.Event(), []

    def hold():
        started.set()
        release.wait(5)

    with WorkPool(1, "test-pool") as pool:
        pool.submit(LATER, hold)
        started.wait(5)  # the one worker is busy: what follows queues
        later = [pool.submit(LATER, order.append, f"plan {n}") for n in range(2)]
        urgent = [pool.submit(URGENT, order.append, f"fetch {n}") for n in range(2)]
        release.set()
        for future in later + urgent:
            future.result(5)
    assert order == ["fetch 0", "fetch 1", "plan 0", "plan 1"]


def test_an_error_reaches_the_caller_and_leaving_finishes_the_queued_work():
    names, done = [], []
    with WorkPool(2, "test-pool", initializer=lambda: names.append(threading.current_thread().name)) as pool:
        failed = pool.submit(URGENT, int, "not a number")
        queued = [pool.submit(LATER, done.append, n) for n in range(20)]
    with pytest.raises(ValueError):
        failed.result()
    assert sorted(done) == list(range(20)) and all(f.done() for f in queued)
    assert sorted(names) == ["test-pool-0", "test-pool-1"]
