"""Hosts that fail on purpose, for the network edge's tests: a server that accepts connections and never
answers, and a test-only name resolver standing in for DNS."""

from __future__ import annotations

import socket
import threading
from collections import Counter


class SilentServer:
    """A loopback TCP server that accepts every connection, counts it and never sends a byte."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.port = self._socket.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            self._held.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in [*self._held, self._socket]:
            connection.close()


class Names:
    """A test-only DNS standing in for the real one: ANSWERS maps a name to an address, or to a list of
    answers (each a list of addresses) given one per lookup, the last repeating. Every lookup is counted;
    any other name does not resolve."""

    def __init__(self, answers: dict[str, str | list[list[str]]]) -> None:
        self.answers = {name: [[given]] if isinstance(given, str) else given for name, given in answers.items()}
        self.lookups: Counter[str] = Counter()

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups[host] += 1
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        lists = self.answers[host]
        return lists[min(self.lookups[host], len(lists)) - 1]
