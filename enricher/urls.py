"""Every public URL the enricher publishes, built on the configured public base URL.

BASE is always what ``public_base`` returns (ending in one slash); KEY is a manifest key
(``annotate.manifest_key``). The layout::

    {base}                                  the service description
    {base}openapi.json  context.jsonld  ns  vocab  sparql  void  dump.{nq,nt}.gz
    {base}jobs  jobs/{id}  runs/{id}                the runs of jobs as PROV-O activities
    {base}annotations/  verdicts/           every annotation, every verdict
    {base}evaluations/{id}  calibrations/{id}
    {base}activity/all-changes  activity/page-{n}
    {base}{key}/manifest.json  pages/{n}.json  lists/{n}.json
    {base}{key}/annotations/  verdicts/  evaluations/{id}
    {base}{key}/search/{1,2}  autocomplete/{1,2}  IIIF Content Search 1.0 and 2.0
    {base}{key}/verified/manifest.json  layers/{layer}  layers/{layer}/pages/{n}.json  lists/{n}.json

A static export (``enricher enrich --out``) is laid out the same way: ``path_under`` turns a URL into
its file's place in the folder.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def public_base(base_url: str) -> str:
    """The configured public base URL, ending in one slash."""
    return base_url.rstrip("/") + "/"


def path_under(base: str, url: str) -> str:
    """URL's path relative to BASE (the file it is written to in a static export)."""
    if not url.startswith(base):
        raise ValueError(f"{url} is not under {base}")
    return url[len(base):]


def manifest_url(base: str, key: str) -> str:
    """The enriched manifest KEY."""
    return f"{base}{key}/manifest.json"


def page_url(base: str, key: str, index: int) -> str:
    """The Presentation 3 AnnotationPage of canvas INDEX of manifest KEY."""
    return f"{base}{key}/pages/{index}.json"


def list_url(base: str, key: str, index: int) -> str:
    """The Presentation 2.1 AnnotationList of canvas INDEX of manifest KEY."""
    return f"{base}{key}/lists/{index}.json"


def container_url(base: str, key: str | None) -> str:
    """The annotation container of manifest KEY, or of every annotation (KEY None)."""
    return f"{base}{key}/annotations/" if key else f"{base}annotations/"


def verdicts_url(base: str, key: str | None) -> str:
    """The verdict container of manifest KEY, or of every verdict (KEY None)."""
    return f"{base}{key}/verdicts/" if key else f"{base}verdicts/"


def evaluation_url(base: str, evaluation_id: str, key: str | None) -> str:
    """An evaluation of manifest KEY, or of several manifests or a COCO file (KEY None)."""
    return f"{base}{key}/evaluations/{evaluation_id}" if key else f"{base}evaluations/{evaluation_id}"


def calibration_url(base: str, calibration_id: str) -> str:
    """A calibration's parameters."""
    return f"{base}calibrations/{calibration_id}"


def jobs_url(base: str) -> str:
    """The job list, where jobs are posted."""
    return f"{base}jobs"


def job_url(base: str, job_id: str) -> str:
    """One job's state and progress."""
    return f"{jobs_url(base)}/{job_id}"


def activity_collection_url(base: str) -> str:
    """The Change Discovery OrderedCollection of every change."""
    return f"{base}activity/all-changes"


def activity_page_url(base: str, n: int) -> str:
    """Page N (0-based) of the Change Discovery collection."""
    return f"{base}activity/page-{n}"


def sparql_url(base: str) -> str:
    """The SPARQL endpoint."""
    return f"{base}sparql"


def void_url(base: str) -> str:
    """The dataset's VoID description."""
    return f"{base}void"


def dataset_url(base: str) -> str:
    """The IRI of the dataset the VoID description describes."""
    return f"{void_url(base)}#dataset"


def dump_url(base: str, extension: str) -> str:
    """The gzip dump whose format has file EXTENSION (nq, nt)."""
    return f"{base}dump.{extension}.gz"


def openapi_url(base: str) -> str:
    """The OpenAPI description of the service."""
    return f"{base}openapi.json"


def context_url(base: str) -> str:
    """Our JSON-LD context as this service serves it."""
    return f"{base}context.jsonld"


def terms_url(base: str) -> str:
    """Our terms as RDFS/OWL."""
    return f"{base}ns"


def vocabulary_url(base: str) -> str:
    """The class-to-concept mapping (SKOS)."""
    return f"{base}vocab"


def edm_url(base: str, key: str) -> str:
    """The URL of manifest KEY's EDM record under the public BASE."""
    return f"{base}{key}/edm.xml"


def europeana_url(base: str, key: str) -> str:
    """The URL of manifest KEY's annotations in the Europeana Annotations API profile."""
    return f"{base}{key}/europeana.jsonld"


def oai_url(base: str) -> str:
    """The OAI-PMH base URL under the public BASE."""
    return f"{base}oai"


def oai_identifier(base: str, key: str) -> str:
    """The OAI-PMH identifier of manifest KEY's record in the repository under the public BASE."""
    return f"oai:{urlsplit(base).hostname or 'localhost'}:{key}"
def search_url(base: str, key: str, version: int) -> str:
    """The IIIF Content Search service (VERSION 1 or 2) of manifest KEY."""
    return f"{base}{key}/search/{version}"


def autocomplete_url(base: str, key: str, version: int) -> str:
    """The IIIF Content Search autocomplete service (VERSION 1 or 2) of manifest KEY."""
    return f"{base}{key}/autocomplete/{version}"


def verified_manifest_url(base: str, key: str) -> str:
    """The enriched manifest KEY with only what curators verified and people made."""
    return f"{base}{key}/verified/manifest.json"


def layer_url(base: str, key: str, layer: str) -> str:
    """The AnnotationCollection of one LAYER (machine, verified, people) of manifest KEY."""
    return f"{base}{key}/layers/{layer}"


def layer_page_url(base: str, key: str, layer: str, index: int) -> str:
    """The Presentation 3 AnnotationPage of LAYER on canvas INDEX of manifest KEY."""
    return f"{layer_url(base, key, layer)}/pages/{index}.json"


def layer_list_url(base: str, key: str, layer: str, index: int) -> str:
    """The Presentation 2.1 AnnotationList of LAYER on canvas INDEX of manifest KEY."""
    return f"{layer_url(base, key, layer)}/lists/{index}.json"


def run_url(base: str, job_id: str) -> str:
    """The run of job JOB_ID as a PROV-O activity (what machine annotations were generated by)."""
    return f"{base}runs/{job_id}"
