"""The public URL layout: every builder of enricher.urls against the URL it must give, and the
folder layout of a static export following it."""

from __future__ import annotations

import pytest

from enricher import urls

BASE = "https://annotations.example.org/base/"
KEY = "0123456789abcdef"


@pytest.mark.parametrize("given", ["https://annotations.example.org/base", "https://annotations.example.org/base//"])
def test_public_base_ends_in_one_slash(given):
    assert urls.public_base(given) == BASE


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (urls.manifest_url(BASE, KEY), f"{BASE}{KEY}/manifest.json"),
        (urls.page_url(BASE, KEY, 3), f"{BASE}{KEY}/pages/3.json"),
        (urls.list_url(BASE, KEY, 3), f"{BASE}{KEY}/lists/3.json"),
        (urls.container_url(BASE, KEY), f"{BASE}{KEY}/annotations/"),
        (urls.container_url(BASE, None), f"{BASE}annotations/"),
        (urls.verdicts_url(BASE, KEY), f"{BASE}{KEY}/verdicts/"),
        (urls.verdicts_url(BASE, None), f"{BASE}verdicts/"),
        (urls.evaluation_url(BASE, "e1", KEY), f"{BASE}{KEY}/evaluations/e1"),
        (urls.evaluation_url(BASE, "e1", None), f"{BASE}evaluations/e1"),
        (urls.calibration_url(BASE, "e1"), f"{BASE}calibrations/e1"),
        (urls.jobs_url(BASE), f"{BASE}jobs"),
        (urls.job_url(BASE, "j1"), f"{BASE}jobs/j1"),
        (urls.activity_collection_url(BASE), f"{BASE}activity/all-changes"),
        (urls.activity_page_url(BASE, 2), f"{BASE}activity/page-2"),
        (urls.sparql_url(BASE), f"{BASE}sparql"),
        (urls.void_url(BASE), f"{BASE}void"),
        (urls.dataset_url(BASE), f"{BASE}void#dataset"),
        (urls.dump_url(BASE, "nq"), f"{BASE}dump.nq.gz"),
        (urls.openapi_url(BASE), f"{BASE}openapi.json"),
        (urls.context_url(BASE), f"{BASE}context.jsonld"),
        (urls.terms_url(BASE), f"{BASE}ns"),
        (urls.vocabulary_url(BASE), f"{BASE}vocab"),
    ],
)
def test_each_url_has_its_documented_place(built, expected):
    assert built == expected


def test_path_under_gives_the_export_file_of_a_url():
    assert urls.path_under(BASE, urls.page_url(BASE, KEY, 0)) == f"{KEY}/pages/0.json"


def test_path_under_refuses_a_url_outside_the_base():
    with pytest.raises(ValueError, match="not under"):
        urls.path_under(BASE, "https://elsewhere.example.org/x/pages/0.json")
