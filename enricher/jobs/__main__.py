"""``python -m enricher.jobs``: run the job queue's worker as a process of its own (settings from
ENRICHER_* variables or ``--config``), for deployments that switch ``job_worker`` off in the web
processes."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ..config import load_config
from ..errors import EnricherError
from ..store import open_store
from . import open_queue


def main(argv: list[str] | None = None) -> int:
    """Run the job runner as a process of its own."""
    parser = argparse.ArgumentParser(prog="python -m enricher.jobs", description=main.__doc__)
    parser.add_argument("--config", help="settings file (TOML or JSON); ENRICHER_* variables also apply")
    parser.add_argument("--once", action="store_true", help="run the queued jobs, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(file=args.config)
        store = open_store(config.database)
        queue = open_queue(config, store)
        if args.once:
            if config.broker:
                print("enricher: error: --once runs the thread queue's jobs; with a broker, run `enricher worker`",
                      file=sys.stderr)
                return 1
            if not queue.acquire():
                print(f"enricher: error: another runner runs the jobs of {store.url}", file=sys.stderr)
                return 1
            queue.run_pending()
            queue.stop()
            return 0
    except EnricherError as exc:
        print(f"enricher: error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: queue.stop())
    queue.start()
    try:
        signal.pause()
    except KeyboardInterrupt:
        queue.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
