"""`enricher serve` as a user runs it: a subprocess on a loopback socket the test binds, awaited until it answers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

START_SECONDS = 90


@contextmanager
def serving(command: list[str], folder: Path, env: dict[str, str], *options: str) -> Iterator[str]:
    """Run COMMAND (an ``enricher`` entry point) with ``serve --bind fd://N OPTIONS`` in FOLDER, on a socket
    bound here; yield its base URL once it answers, and stop it (SIGTERM) afterwards."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    log_path = folder / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([*command, "serve", "--bind", f"fd://{listener.fileno()}", "--base-url", url, *options],
                                   pass_fds=[listener.fileno()], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
        listener.close()  # the server holds its own copy
        try:
            deadline = time.monotonic() + START_SECONDS
            while not _answers(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"enricher serve did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False
