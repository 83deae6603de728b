"""What a query to the read-only SPARQL endpoint may not be: an update (by any keyword after the
prologue) or a federated query (SERVICE). Keywords are looked for in the query's skeleton, with
strings, IRIs and comments blanked out, so a word inside a literal or an IRI is not one."""

from __future__ import annotations

import re

from .errors import QueryError, UpdateRefused

_STRIP = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n\r]|\\.)*'|\"(?:[^\"\\\n\r]|\\.)*\""  # strings
    r"|<[^<>\"{}|^`\\\x00-\x20]*>"  # IRIs
    r"|#[^\n\r]*",  # comments
    re.DOTALL,
)
_PROLOGUE = r"(?:\s*(?:PREFIX\s+[^\s:]*:\s*<>|BASE\s*<>))*\s*"
_UPDATE = re.compile(_PROLOGUE + r"(INSERT|DELETE|LOAD|CLEAR|CREATE|DROP|COPY|MOVE|ADD|WITH)\b", re.IGNORECASE)
_SERVICE = re.compile(r"(?<![\w:?$])SERVICE(?![\w:-])", re.IGNORECASE)


def check_read_only(sparql: str, where: str | None = None) -> None:
    """Refuse SPARQL that is not a local read-only query; WHERE is the URL named in errors.

    Raises UpdateRefused (an update), QueryError (SERVICE).
    """
    skeleton = _STRIP.sub(lambda m: "<>" if m.group().startswith("<") else " ", sparql)
    if _UPDATE.match(skeleton):
        raise UpdateRefused(
            "this SPARQL endpoint is read-only: send annotations through the annotation containers", where=where
        )
    if _SERVICE.search(skeleton):
        raise QueryError("SERVICE (federated query) is not allowed: this endpoint calls no other server", where=where)
