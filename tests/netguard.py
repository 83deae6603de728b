"""Watch a process's network use: an audit hook, installed before the process runs any other code, writes
every host name lookup and every outgoing IP connection (forked children too) to a log file."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

_HOOK = """
import os, socket, sys
_log = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
_LOOKUPS = {{"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"}}
_SENDS = {{"socket.connect", "socket.sendto", "socket.sendmsg"}}

def _watch(event, args):
    if event in _LOOKUPS:
        os.write(_log, f"lookup\\t{{args[0]!r}}\\n".encode())
    elif event in _SENDS and args[0].family in (socket.AF_INET, socket.AF_INET6) and args[1] is not None:
        os.write(_log, f"connect\\t{{args[1][0]!r}}\\t{{args[1][1]}}\\n".encode())

sys.addaudithook(_watch)
"""


def watched(code: str, log: Path) -> list[str]:
    """A command that runs the Python CODE with its network use written to LOG."""
    return [sys.executable, "-c", _HOOK.format(log=str(log)) + code]


def network_use(log: Path) -> tuple[set[str], set[tuple[str, int]]]:
    """The host names looked up and the (host, port) pairs connected to, as LOG recorded them."""
    lookups, connections = set(), set()
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, *fields = line.split("\t")
        if kind == "lookup":
            lookups.add(ast.literal_eval(fields[0]))  # a repr we wrote: a str, bytes or None
        else:
            connections.add((ast.literal_eval(fields[0]), int(fields[1])))
    return lookups, connections
