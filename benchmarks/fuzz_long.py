"""The long fuzzing campaign: the suite's fuzz tests with many more, random inputs.

    PYTHONPATH=$PWD python3 benchmarks/fuzz_long.py [--inputs 100000] [--cases 10] [--jobs 1] [--hours 0]
                                                     [--only parsers,bodies,openapi]

Hypothesis runs each property of tests/test_fuzz_parsers.py and tests/test_fuzz_bodies.py with its share
of --inputs (FUZZ_EXAMPLES, random seeds, no example database), in chunks of --chunk inputs,
each a pytest process of its own, --jobs at a time; with --hours, no chunk starts after that time.
Schemathesis runs against the live service with --cases per operation and phase, without and with a
token. Prints each chunk's count (Hypothesis statistics: the inputs tried in every phase) as it
finishes, then the totals; exits 1 when a test failed (its output is printed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# test node -> share of the Hypothesis inputs (the cheap parsers get more, the HTTP bodies fewer)
SHARES = {
    "tests/test_fuzz_parsers.py::test_region_and_fragment_parsers_return_a_box_or_one_line_error": 0.25,
    "tests/test_fuzz_parsers.py::test_the_manifest_reader_returns_a_manifest_or_one_line_error": 0.2,
    "tests/test_fuzz_parsers.py::test_the_info_reader_and_planner_return_a_plan_or_one_line_error": 0.15,
    "tests/test_fuzz_parsers.py::test_the_collection_reader_yields_manifests_or_one_line_error": 0.08,
    "tests/test_fuzz_bodies.py::test_a_posted_annotation_is_created_or_refused_with_a_problem": 0.08,
    "tests/test_fuzz_bodies.py::test_a_put_annotation_is_replaced_or_refused_with_a_problem": 0.06,
    "tests/test_fuzz_bodies.py::test_a_posted_verdict_is_recorded_or_refused_with_a_problem": 0.08,
    "tests/test_fuzz_bodies.py::test_a_sparql_request_is_answered_or_refused_with_a_problem": 0.1,
}
OPENAPI = "tests/test_fuzz_openapi.py"
TRIED = re.compile(r"(\d+) passing examples?, (\d+) failing examples?")
GENERATED = re.compile(r"schemathesis (with(?:out)?) a token: \{'generated': (\d+)")


def run(node: str, examples: int) -> tuple[bool, str, float]:
    """Run one pytest NODE with EXAMPLES per property; return (passed, output, seconds)."""
    env = {**os.environ, "FUZZ_EXAMPLES": str(examples), "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", node, "-q", "-s", "-p", "no:cacheprovider",
                           "--hypothesis-show-statistics", "-o", "timeout=0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    return done.returncode == 0, done.stdout + done.stderr, time.monotonic() - start


def chunks(total: int, size: int) -> list[int]:
    """TOTAL split into chunks of at most SIZE."""
    return [min(size, total - start) for start in range(0, total, size)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="Hypothesis inputs in all (shared out by SHARES)")
    parser.add_argument("--chunk", type=int, default=1000, help="Hypothesis inputs per pytest process")
    parser.add_argument("--jobs", type=int, default=1, help="pytest processes at a time")
    parser.add_argument("--hours", type=float, default=0, help="start no chunk after this many hours (0: no limit)")
    parser.add_argument("--cases", type=int, default=10, help="schemathesis cases per operation and phase")
    parser.add_argument("--only", default="parsers,bodies,openapi", help="which groups to run")
    args = parser.parse_args()
    groups = set(args.only.split(","))
    stop = time.monotonic() + args.hours * 3600 if args.hours else float("inf")
    inputs, requests, failed = 0, 0, []
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    queues = [[(node, size) for size in chunks(max(1, round(args.inputs * share)), args.chunk)]
              for node, share in SHARES.items() if node.split("test_fuzz_")[1].split(".py")[0] in groups]
    # round robin over the tests, so a campaign cut short by --hours has run each of them
    work = [item for turn in zip_longest(*queues) for item in turn if item is not None]

    def chunk(item: tuple[str, int]) -> tuple[str, bool, str, float, int] | None:
        if time.monotonic() > stop:
            return None
        node, size = item
        passed, output, seconds = run(node, size)
        return node, passed, output, seconds, sum(int(p) + int(f) for p, f in TRIED.findall(output))

    with ThreadPoolExecutor(args.jobs) as pool:
        for done in pool.map(chunk, work):
            if done is None:
                continue
            node, passed, output, seconds, tried = done
            inputs += tried
            print(f"{node.split('::')[1]}: {tried} inputs in {seconds:.0f} s, {'passed' if passed else 'FAILED'}; "
                  f"{inputs} so far", flush=True)
            if not passed:
                failed.append(node)
                print(output[-20000:], flush=True)
    if "openapi" in groups:
        passed, output, seconds = run(OPENAPI, args.cases)
        for who, generated in GENERATED.findall(output):
            requests += int(generated)
            print(f"schemathesis {who} a token: {generated} requests", flush=True)
        print(f"schemathesis: {seconds:.0f} s, {'passed' if passed else 'FAILED'}", flush=True)
        if not passed:
            failed.append(OPENAPI)
            print(output[-20000:], flush=True)
    print(f"total: {inputs} Hypothesis inputs, {requests} schemathesis requests, {len(failed)} failing tests; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
