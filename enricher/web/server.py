"""``enricher serve``: the app under gunicorn (sync workers, ``workers`` of them, bound to host:port).

Each worker builds its own app after the fork (no preloading), so each may start a job runner thread
when ``job_worker`` is on; the store's ``jobs`` lock lets exactly one run jobs (see enricher.jobs). A
worker that exits stops its runner first, which puts an unfinished job back in the queue.
"""

from __future__ import annotations

import math
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.config import KNOWN_SETTINGS

from ..config import Config
from . import create_app

GRACEFUL_SECONDS = 30


def _stop_jobs(server, worker) -> None:
    """gunicorn hook: stop the exiting worker's job runner, if it has one."""
    runner = getattr(worker, "wsgi", None) and worker.wsgi.extensions.get("enricher.jobs")
    if runner:
        runner.stop(GRACEFUL_SECONDS)


class Server(BaseApplication):
    """gunicorn running create_app with CONFIG; OPTIONS are gunicorn settings that win over ours."""

    def __init__(self, config: Config, options: dict[str, Any] | None = None):
        self.settings = config
        self.options = {
            "bind": [f"{config.host}:{config.port}"],
            "workers": config.workers,
            "worker_class": "sync",
            "graceful_timeout": GRACEFUL_SECONDS,
            # gunicorn kills a sync worker busy with one request for longer than this: a SPARQL request
            # may wait sparql_timeout for the RDF index to load, then as long for its answer
            "timeout": math.ceil(2 * config.sparql_timeout) + GRACEFUL_SECONDS,
            "accesslog": "-",
            "worker_exit": _stop_jobs,
            **(options or {}),
        }
        if "control_socket_disable" in {s.name for s in KNOWN_SETTINGS}:
            # gunicorn 27's control socket sits at one path per user: two services would collide
            self.options.setdefault("control_socket_disable", True)
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        app = create_app(self.settings.as_dict())
        app.extensions["enricher"].warm_up()  # the RDF index loads while the worker already serves
        return app


def serve(config: Config, bind: str | None = None) -> None:
    """Run the service until gunicorn is told to stop; BIND (gunicorn syntax, e.g. ``unix:/run/e.sock``
    or ``fd://3``) replaces host:port."""
    Server(config, {"bind": [bind]} if bind else None).run()
