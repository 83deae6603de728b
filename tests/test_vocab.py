"""The COCO-to-Wikidata/Iconclass mapping (vocab/coco.ttl) and its loader (enricher.vocab)."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import yaml
from rdflib import Graph, URIRef
from rdflib.namespace import RDF, SKOS

from enricher.datafiles import COCO_VOCABULARY, PROJECT_ROOT
from enricher.errors import ConfigError
from enricher.vocab import Vocabulary

ICONCLASS_DATA = PROJECT_ROOT.parent / "shared" / "data" / "iconclass"
LANGUAGES = ("en", "de", "fr", "nl")
COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
WIKIDATA_URI = re.compile(r"^http://www\.wikidata\.org/entity/Q[1-9][0-9]*$")
ICONCLASS_BASE = "https://iconclass.org/"
# Homonyms the mapping must never pick: the rodent, the bird of prey, musical keyboards.
HOMONYMS = {"mouse": "25F26(MOUSE)", "kite": "25F33(KITE)", "keyboard": "48C733"}


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load()


@pytest.fixture(scope="module")
def graph() -> Graph:
    g = Graph()
    g.parse(COCO_VOCABULARY, format="turtle")
    return g


@pytest.fixture(scope="module")
def iconclass() -> Path:
    if not (ICONCLASS_DATA / "notations.txt").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"official Iconclass data missing at {ICONCLASS_DATA}")
        pytest.skip(f"official Iconclass data not available at {ICONCLASS_DATA}")
    return ICONCLASS_DATA


@pytest.fixture(scope="module")
def official_texts(iconclass: Path) -> dict[str, dict[str, str]]:
    """Language -> notation -> official text, read straight from the Iconclass files."""
    texts: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        for path in (iconclass / "txt" / lang).glob(f"txt_{lang}_[0-9]*.txt"):
            for line in path.read_text(encoding="utf-8").splitlines():
                notation, sep, text = line.partition("|")
                if sep and not notation.startswith("#"):
                    texts.setdefault(lang, {})[notation] = text.strip()
    return texts


def iconclass_concepts(vocabulary: Vocabulary):
    for name in COCO_NAMES:
        for concept in vocabulary.lookup(name).concepts:
            if concept.scheme == "iconclass":
                yield name, concept


def test_every_coco_class_is_in_the_scheme_with_four_languages(vocabulary, graph):
    assert {m.name for m in vocabulary.classes.values()} == set(COCO_NAMES)
    scheme = URIRef("https://w3id.org/enricher/coco")
    assert (scheme, RDF.type, SKOS.ConceptScheme) in graph
    for name in COCO_NAMES:
        uri = URIRef("https://w3id.org/enricher/coco/" + name.replace(" ", "_"))
        assert (uri, SKOS.inScheme, scheme) in graph, name
        assert str(graph.value(uri, SKOS.notation)) == name
        mapping = vocabulary.lookup(name)
        assert mapping.labels["en"] == name
        for lang in LANGUAGES:
            text, got = mapping.label(lang)
            assert got == lang and text.strip(), (name, lang)


def test_names_match_the_ultralytics_coco_dataset(vocabulary):
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        pytest.skip("ultralytics is not installed")
    dataset = Path(spec.origin).parent / "cfg" / "datasets" / "coco.yaml"
    names = yaml.safe_load(dataset.read_text(encoding="utf-8"))["names"]
    assert tuple(names.values()) == COCO_NAMES


def test_every_class_but_hair_drier_maps_to_wikidata(vocabulary):
    for name in COCO_NAMES:
        mapping = vocabulary.lookup(name)
        wikidata = [c for c in mapping.concepts if c.scheme == "wikidata"]
        assert len(wikidata) == (0 if name == "hair drier" else 1), name
        assert mapping.mapped == bool(mapping.concepts)


def test_uris_are_well_formed(vocabulary):
    for name in COCO_NAMES:
        for concept in vocabulary.lookup(name).concepts:
            assert concept.match in {"exact", "close", "broad"}, (name, concept)
            if concept.scheme == "wikidata":
                assert WIKIDATA_URI.match(concept.uri), concept.uri
                assert concept.notation == concept.uri.rsplit("/", 1)[1]
            else:
                assert concept.scheme == "iconclass", concept.uri
                assert concept.uri == ICONCLASS_BASE + quote(concept.notation, safe=""), concept.uri
                assert unquote(concept.uri[len(ICONCLASS_BASE):]) == concept.notation
                assert not re.search(r"[()\s]", concept.uri), concept.uri


def test_homonyms_map_to_the_intended_thing(vocabulary, graph):
    expected = {"mouse": "Q7987", "keyboard": "Q250", "kite": "Q42861", "tv": "Q8075", "remote": "Q185091",
                "cell phone": "Q17517", "orange": "Q13191", "tie": "Q44416", "bear": "Q30090244"}
    for name, qid in expected.items():
        uris = {c.uri for c in vocabulary.lookup(name).concepts}
        assert "http://www.wikidata.org/entity/" + qid in uris, name
    notations = {str(n) for n in graph.objects(None, SKOS.notation)}
    for name, homonym in HOMONYMS.items():
        assert homonym not in notations
        for concept in vocabulary.lookup(name).concepts:
            assert not (concept.notation or "").startswith(homonym), (name, concept.notation)
    assert not [n for n in notations if n.startswith(("25F26", "48C733"))]


def test_iconclass_chains_reach_a_root_and_answer_subtree_queries(graph):
    query = """
        PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
        SELECT ?name WHERE {
            ?class skos:notation ?name ; skos:exactMatch|skos:closeMatch|skos:broadMatch ?ic .
            ?ic skos:broader* <https://iconclass.org/25F> .
        }"""
    under_animals = {str(row.name) for row in graph.query(query)}
    assert under_animals == {"bird", "elephant", "bear", "zebra", "giraffe"}
    for concept in set(graph.subjects(SKOS.notation, None)):
        if not str(concept).startswith(ICONCLASS_BASE):
            continue
        seen = [concept]
        while (parent := graph.value(seen[-1], SKOS.broader)) is not None:
            seen.append(parent)
            assert len(seen) < 20, seen
        root = str(graph.value(seen[-1], SKOS.notation))
        assert len(root) == 1 and root.isdigit(), (concept, root)
        assert graph.value(seen[-1], SKOS.prefLabel) is not None


def test_iconclass_notations_and_labels_are_official(vocabulary, graph, iconclass, official_texts):
    tree = set(re.findall(r"^N (.+)$", (iconclass / "notations.txt").read_text(encoding="utf-8"), re.M))
    checked = 0
    for concept in set(graph.subjects(SKOS.notation, None)):
        if not str(concept).startswith(ICONCLASS_BASE):
            continue
        notation = str(graph.value(concept, SKOS.notation))
        assert notation in tree, notation
        labels = {label.language: str(label) for label in graph.objects(concept, SKOS.prefLabel)}
        assert "en" in labels, notation
        for lang, text in labels.items():
            assert official_texts[lang].get(notation) == text, (notation, lang)
        for lang in LANGUAGES:  # every official text is carried, none left out
            assert (notation in official_texts[lang]) == (lang in labels), (notation, lang)
        checked += 1
    assert checked > 60
    for name, concept in iconclass_concepts(vocabulary):
        assert concept.labels["en"] == official_texts["en"][concept.notation], name


def test_coco_ttl_is_what_the_build_script_writes(iconclass, monkeypatch):
    spec = importlib.util.spec_from_file_location("build_coco", PROJECT_ROOT / "vocab" / "build_coco.py")
    build = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, build)  # dataclasses look their module up there
    spec.loader.exec_module(build)
    generated = build.render(build.read_texts(iconclass), build.read_parents(iconclass))
    assert generated == COCO_VOCABULARY.read_text(encoding="utf-8"), "run python3 vocab/build_coco.py"


def test_concepts_come_strongest_first_wikidata_before_iconclass(vocabulary):
    concepts = vocabulary.lookup("dog").concepts
    assert [(c.scheme, c.match, c.notation) for c in concepts] == [
        ("wikidata", "exact", "Q144"), ("iconclass", "exact", "34B11")]
    assert concepts[1].labels["en"] == "dog"
    assert [(c.scheme, c.match) for c in vocabulary.lookup("sports ball").concepts] == [
        ("wikidata", "broad"), ("iconclass", "broad")]


def test_label_falls_back_to_base_language_then_english(vocabulary):
    mapping = vocabulary.lookup("dog")
    assert mapping.label("de-CH") == ("Hund", "de")
    assert mapping.label("es") == ("dog", "en")


def test_lookup_accepts_underscores_and_case(vocabulary):
    assert vocabulary.lookup("traffic_light").name == "traffic light"
    assert vocabulary.lookup("Teddy Bear").mapped


def test_unknown_class_gets_text_label_and_one_warning(caplog):
    vocabulary = Vocabulary.load()
    with caplog.at_level(logging.WARNING, logger="enricher.vocab"):
        first = vocabulary.lookup("unicorn")
        second = vocabulary.lookup("unicorn")
    assert first == second
    assert first.mapped is False and first.concepts == ()
    assert first.label("de") == ("unicorn", "en")
    warnings = [r for r in caplog.records if "unicorn" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_known_class_without_mapping_keeps_its_labels_and_warns(caplog):
    vocabulary = Vocabulary.load()
    with caplog.at_level(logging.WARNING, logger="enricher.vocab"):
        mapping = vocabulary.lookup("hair drier")
        vocabulary.lookup("hair drier")
        vocabulary.lookup("dog")
    assert mapping.mapped is False and mapping.label("fr") == ("sèche-cheveux", "fr")
    assert [r.getMessage().count("hair drier") for r in caplog.records] == [1]


CUSTOM = """
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix wd: <http://www.wikidata.org/entity/> .
<https://example.org/classes/rowing_boat> a skos:Concept ;
    skos:notation "rowing boat" ;
    skos:prefLabel "rowing boat"@en, "Ruderboot"@de ;
    skos:broadMatch wd:Q35872 ;
    skos:exactMatch <http://iconclass.org/46C232> .
<https://example.org/classes/person> a skos:Concept ;
    skos:notation "person" ;
    skos:prefLabel "figure"@en ;
    skos:exactMatch <https://iconclass.org/31A> .
<http://iconclass.org/46C232> skos:prefLabel "rowing-boat, canoe, etc."@en .
"""


def test_custom_mapping_file_adds_and_overrides_classes(tmp_path):
    path = tmp_path / "boats.ttl"
    path.write_text(CUSTOM, encoding="utf-8")
    vocabulary = Vocabulary.load([str(path)])
    boat = vocabulary.lookup("rowing boat")
    assert boat.mapped and boat.label("de") == ("Ruderboot", "de")
    assert [(c.scheme, c.match, c.notation) for c in boat.concepts] == [
        ("iconclass", "exact", "46C232"), ("wikidata", "broad", "Q35872")]
    assert boat.concepts[0].labels == {"en": "rowing-boat, canoe, etc."}
    person = vocabulary.lookup("person")
    assert person.label("en") == ("figure", "en")
    assert [c.uri for c in person.concepts] == ["https://iconclass.org/31A"]
    assert vocabulary.lookup("dog").mapped  # the COCO classes stay
    assert vocabulary.sources == (COCO_VOCABULARY, path)


@pytest.mark.parametrize("text, message", [
    ("@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n<x> skos:notation 'a' ; ;;", "Turtle"),
    ('@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n<https://e.org/a> a skos:Concept ;'
     ' skos:notation "a" ; skos:exactMatch "Q5" .', "concept URI"),
])
def test_broken_mapping_file_raises_config_error_naming_it(tmp_path, text, message):
    path = tmp_path / "broken.ttl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        Vocabulary.load([path])
    assert info.value.where == str(path)


def test_missing_mapping_file_raises_config_error(tmp_path):
    path = tmp_path / "absent.ttl"
    with pytest.raises(ConfigError) as info:
        Vocabulary.load([path])
    assert info.value.where == str(path)


# objects Iconclass has no notation for, hung on the broader concept they serve (vocab/README.md)
BROAD_OBJECTS = {"fire hydrant": "41B52", "microwave": "41C254", "snowboard": "43C24", "sports ball": "43C41",
                 "baseball bat": "43C4135", "baseball glove": "43C4135", "surfboard": "43C222", "tennis racket": "43C4151"}


@pytest.mark.parametrize("name", sorted(BROAD_OBJECTS))
def test_objects_without_a_notation_match_their_broader_concept(vocabulary, name):
    (concept,) = [c for c in vocabulary.lookup(name).concepts if c.scheme == "iconclass"]
    assert concept.notation == BROAD_OBJECTS[name] and concept.match == "broad"
    assert concept.labels["en"]
