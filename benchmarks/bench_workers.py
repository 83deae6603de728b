"""Distributed workers against one worker and against the embedded thread queue, in one run.

Serves pre-rendered images of a manifest of N canvases from a plain file server (see
bench_pipeline.prerendered) and runs the same job three ways, each process limited to one inference
thread (setting inference_threads, which PyTorch, OpenVINO and ONNX Runtime honour): the embedded thread
queue (``python -m enricher.jobs``), one ``enricher worker`` and two ``enricher worker`` processes on a
broker, every one on a fresh SQLite store. Each way first runs a warm-up job, then the measured job,
timed from the moment it runs to its end (polling the store every 20 ms; the model is loaded before).
Prints canvases per second and the ratios: two workers / one (target >= 1.7 where each worker has a
core of its own) and one worker / embedded (target >= 0.9). Next to each rate: the CPU time the way's
processes spent a canvas (what the distributed path costs over the embedded one, whatever the load)
and how many cores they got on average while the job ran (what the machine's other work left them: two
workers gain over one only as far as they get more cores).

    python benchmarks/bench_workers.py --canvases 96 [--broker amqp://guest:guest@127.0.0.1:5672/]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # ultralytics' dependency
from bench_pipeline import IMAGES, prerendered, sample_manifest

from enricher.config import load_config
from enricher.datafiles import DEMO_WEIGHTS, PROJECT_ROOT
from enricher.store import open_store

POLL = 0.02
WAIT_SECONDS = 1200


def environment(database: Path, **settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    settings = {"database": database, "weights": DEMO_WEIGHTS, "allow_private": "true", "tiled": "off", **settings}
    env.update({f"ENRICHER_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def start(command: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=(folder / "log.txt").open("w"))


def wait_until(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while not (value := predicate()):
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {what}")
        time.sleep(POLL)
    return value


def cpu_seconds(processes: list[subprocess.Popen]) -> float:
    """The CPU time (user and system, every thread) the PROCESSES have spent so far."""
    times = [psutil.Process(process.pid).cpu_times() for process in processes]
    return sum(t.user + t.system for t in times)


def timed_job(store, submit, manifest: str, processes: list[subprocess.Popen],
              canvases: list[int] | None = None) -> tuple[float, float]:
    """Run a job through SUBMIT; return the seconds from its start to its end, and the CPU seconds
    PROCESSES spent meanwhile."""
    job_id = submit({"manifest": manifest, "canvases": canvases or []})
    wait_until(lambda: store.job(job_id).state != "queued", "the job to start")
    began, cpu = time.perf_counter(), cpu_seconds(processes)
    job = wait_until(lambda: (found := store.job(job_id)).state in ("done", "failed", "cancelled") and found, "the job")
    elapsed, cpu = time.perf_counter() - began, cpu_seconds(processes) - cpu
    if job.state != "done" or job.errors:
        sys.exit(f"the job ended {job.state}: {job.error or job.errors[:1]}")
    return elapsed, cpu


def run_way(folder: Path, manifest: str, canvases: int, repeat: int, workers: int, broker: str, threads: int,
            batch: int, inference_threads: int) -> tuple[float, float, float]:
    """Canvases per second of the best measured job run the way WORKERS says (0: embedded thread queue),
    with the CPU seconds its processes spent a canvas and the cores they got on average."""
    database = folder / "enricher.sqlite3"
    settings = {"batch": batch, "inference_threads": inference_threads}
    if workers:
        settings |= {"broker": broker, "worker_threads": threads, "message_canvases": batch}
    env = environment(database, **settings)
    with open_store(database) as store:
        if workers:
            from enricher.jobs.dramatiq import DramatiqQueue

            queue = DramatiqQueue(load_config({"database": str(database), **settings}, env={}), store)
            submit = lambda params: queue.submit(params).id
            command = [sys.executable, "-c", "from enricher.cli import main; main()", "worker"]
            processes = [start(command, folder / f"worker-{n}", env) for n in range(workers)]
            for n in range(workers):  # each prints its line once its model is loaded
                wait_until(lambda n=n: "enricher worker:" in (folder / f"worker-{n}" / "log.txt").read_text(), "a worker")
        else:
            queue = None
            submit = lambda params: store.create_job(params).id
            processes = [start([sys.executable, "-m", "enricher.jobs"], folder / "runner", env)]
        try:
            timed_job(store, submit, manifest, processes, list(range(2 * batch * max(1, workers))))  # warm-up
            elapsed, cpu = min(timed_job(store, submit, manifest, processes) for _ in range(repeat))
        finally:
            for process in processes:
                process.terminate()
                process.wait()
            if queue is not None:
                queue.stop()
    return canvases / elapsed, cpu / canvases, cpu / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=2, help="Measured jobs of each way; the best is kept")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--threads", type=int, default=2, help="Threads per worker process (setting worker_threads)")
    parser.add_argument("--batch", type=int, default=8, help="Images per inference batch, and canvases per message")
    parser.add_argument("--inference-threads", type=int, default=1,
                        help="Inference threads per process (setting inference_threads; 0: the runtime's default)")
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    config = load_config({"weights": str(DEMO_WEIGHTS), "allow_private": True, "tiled": "off"}, env={})
    scenes = [p.stem for p in sorted(IMAGES.glob("scene-*.jpg"))]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "files").mkdir()
        with prerendered(config, scenes, root / "files") as base:
            (root / "files" / "manifest.json").write_text(json.dumps(sample_manifest(base, args.canvases)))
            manifest = f"{base}/manifest.json"
            ways = {"embedded thread queue": 0, "one worker": 1, "two workers": 2}
            rates = {name: run_way(root / name.replace(" ", "-"), manifest, args.canvases, args.repeat, workers,
                                   args.broker, args.threads, args.batch, args.inference_threads)
                     for name, workers in ways.items()}
    print(f"canvases: {args.canvases}, {args.inference_threads or 'default'} inference threads per process, "
          f"{args.threads} worker threads, batch and message of {args.batch} canvases, "
          f"broker {args.broker.rpartition('@')[2]}")
    for name, (rate, cpu, cores) in rates.items():
        print(f"{name:22s} {rate:7.1f} canvases/s, {cpu * 1000:4.0f} ms CPU a canvas, {cores:.2f} cores")
    (two, _, two_cores), (one, one_cpu, one_cores), (embedded, embedded_cpu, _) = (
        rates[name] for name in ("two workers", "one worker", "embedded thread queue"))
    print(f"two workers / one worker: {two / one:.2f} (target >= 1.7), with {two_cores / one_cores:.2f} times the cores")
    print(f"one worker / embedded:    {one / embedded:.2f} (target >= 0.9), CPU a canvas {one_cpu / embedded_cpu:.2f}")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
