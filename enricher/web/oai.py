"""What aggregators harvest: the OAI-PMH repository at ``/oai`` (GET and POST), each manifest's EDM
record at ``/{key}/edm.xml`` and its annotations in the Europeana Annotations API profile at
``/{key}/europeana.jsonld``; all read the records enricher.harvest keeps, once they follow the
change log."""

from __future__ import annotations

from flask import Blueprint, Response, request
from lxml import etree

from .. import edm, europeana
from ..errors import Gone, NotFound
from ..oai import MEDIA_TYPE, Repository
from .media import dumps, etag_of, send
from .state import service

bp = Blueprint("oai", __name__)
HEADERS = {"Allow": "GET, HEAD, OPTIONS"}


@bp.route("/oai", methods=["GET", "POST"])
def oai() -> Response:
    """One OAI-PMH request: the arguments in the query (GET) or the form body (POST)."""
    here = service()
    config = here.config
    repository = Repository(here.catalogue(), name=config.oai_repository_name, admin_email=config.oai_admin_email,
                            max_records=config.oai_max_records)
    arguments = request.form if request.method == "POST" else request.args
    body = repository.respond(here.harvested(), arguments.items(multi=True))
    return send(body, MEDIA_TYPE, headers={"Allow": "GET, HEAD, POST, OPTIONS"})


@bp.get("/<key:key>/edm.xml")
def edm_record(key: str) -> Response:
    """The EDM record of manifest KEY (410 once it gives aggregators nothing any more)."""
    here = service()
    store = here.harvested()
    record = store.harvest_record(key)
    described = here.catalogue().describe(store, key) if record is not None else None
    if described is None:
        raise NotFound(f"manifest {key} has no EDM record: nothing of it has gone to aggregators", where=request.url)
    if not described.subjects:
        raise Gone(f"the EDM record of manifest {key} was deleted: it gives no subject any more", where=request.url)
    body = etree.tostring(here.catalogue().metadata(described, "edm"), xml_declaration=True, encoding="UTF-8")
    return send(body, f"{edm.MEDIA_TYPE}; charset=utf-8", headers=HEADERS, etag=etag_of(body))


@bp.get("/<key:key>/europeana.jsonld")
def europeana_profile(key: str) -> Response:
    """Manifest KEY's annotations in the Europeana Annotations API scenarios, with what was left out."""
    here = service()
    found = europeana.profile(here.catalogue(), here.store(), key)
    if found is None:
        raise NotFound(f"no manifest {key}", where=request.url)
    body = dumps(found.page)
    return send(body, europeana.MEDIA_TYPE, headers=HEADERS, etag=etag_of(body))
