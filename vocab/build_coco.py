"""Write vocab/coco.ttl: the 80 COCO classes as SKOS concepts mapped to Wikidata and Iconclass.

The mapping itself is curated by hand in CLASSES below; Iconclass labels (en, de, fr, nl) and
the skos:broader chain of every Iconclass notation are read from the official texts, so the
generated file never paraphrases them. Run from the project root:

    python3 vocab/build_coco.py [ICONCLASS_DIR]    # default: ../shared/data/iconclass

The generated Turtle is committed; nothing reads the Iconclass folder at runtime.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
DEFAULT_ICONCLASS = HERE.parent.parent / "shared" / "data" / "iconclass"
OUTPUT = HERE / "coco.ttl"
LANGUAGES = ("en", "de", "fr", "nl")
SCHEME = "https://w3id.org/enricher/coco"
CLASS_BASE = SCHEME + "/"
WIKIDATA = "http://www.wikidata.org/entity/"
ICONCLASS = "https://iconclass.org/"


@dataclass(frozen=True)
class Row:
    """One COCO class: its labels and at most one Wikidata and one Iconclass match."""

    name: str
    de: str
    fr: str
    nl: str
    qid: str | None = None
    wd_match: str | None = None
    notation: str | None = None
    ic_match: str | None = None
    alt_en: str | None = None


# name, de, fr, nl, Wikidata QID + relation, Iconclass notation + relation.
# How each QID was checked, and why a class has no Iconclass notation: vocab/README.md.
CLASSES: tuple[Row, ...] = (
    Row("person", "Person", "personne", "persoon", "Q5", "exact", "31A", "close"),
    Row("bicycle", "Fahrrad", "vélo", "fiets", "Q11442", "exact", "46C125", "exact"),
    Row("car", "Auto", "voiture", "auto", "Q1420", "exact", "46C161", "exact"),
    Row("motorcycle", "Motorrad", "moto", "motorfiets", "Q34493", "exact", "46C165", "close"),
    Row("airplane", "Flugzeug", "avion", "vliegtuig", "Q197", "exact", "46C36", "exact"),
    Row("bus", "Bus", "autobus", "bus", "Q5638", "exact", "46C162", "exact"),
    Row("train", "Zug", "train", "trein", "Q870", "exact", "46C1511", "close"),
    Row("truck", "Lastwagen", "camion", "vrachtwagen", "Q43193", "exact", "46C163", "close"),
    Row("boat", "Boot", "bateau", "boot", "Q35872", "close", "46C21", "close"),
    Row("traffic light", "Ampel", "feu de circulation", "verkeerslicht", "Q8004", "exact", "46C1153", "exact"),
    # Broad matches to the Iconclass concept of what the object serves (vocab/README.md, "Broader concepts
    # of objects Iconclass has no notation for"): fire-extinguishing equipment, kitchen heat, the sport.
    Row("fire hydrant", "Hydrant", "bouche d'incendie", "brandkraan", "Q634299", "exact", "41B52", "broad"),
    Row("stop sign", "Stoppschild", "panneau stop", "stopbord", "Q250429", "exact", "46C1151", "broad"),
    Row("parking meter", "Parkuhr", "parcmètre", "parkeermeter", "Q953960", "exact", "46C16823", "exact"),
    Row("bench", "Bank", "banc", "bank", "Q204776", "exact", "41A723", "exact"),
    Row("bird", "Vogel", "oiseau", "vogel", "Q5113", "exact", "25F3", "exact"),
    Row("cat", "Katze", "chat", "kat", "Q146", "exact", "34B12", "exact"),
    Row("dog", "Hund", "chien", "hond", "Q144", "exact", "34B11", "exact"),
    Row("horse", "Pferd", "cheval", "paard", "Q726", "exact", "46C13141", "exact"),
    Row("sheep", "Schaf", "mouton", "schaap", "Q7368", "exact", "47I213", "exact"),
    # COCO's "cow" covers cattle of either sex: Q830 is cattle, 47I211 bovine cattle.
    Row("cow", "Kuh", "vache", "koe", "Q830", "close", "47I211", "close"),
    Row("elephant", "Elefant", "éléphant", "olifant", "Q7378", "exact", "25F25(ELEPHANT)", "exact"),
    Row("bear", "Bär", "ours", "beer", "Q30090244", "exact", "25F23(BEAR)", "exact"),
    Row("zebra", "Zebra", "zèbre", "zebra", "Q32789", "exact", "25F24(ZEBRA)", "exact"),
    Row("giraffe", "Giraffe", "girafe", "giraf", "Q15083", "exact", "25F24(GIRAFFE)", "exact"),
    Row("backpack", "Rucksack", "sac à dos", "rugzak", "Q5843", "exact", "46C552", "exact"),
    Row("umbrella", "Regenschirm", "parapluie", "paraplu", "Q41607", "exact", "41D2631", "exact"),
    Row("handbag", "Handtasche", "sac à main", "handtas", "Q467505", "exact", "41D268", "broad"),
    Row("tie", "Krawatte", "cravate", "stropdas", "Q44416", "exact", "41D222", "broad", alt_en="necktie"),
    Row("suitcase", "Koffer", "valise", "koffer", "Q200814", "exact", "46C551", "close"),
    Row("frisbee", "Frisbee", "frisbee", "frisbee", "Q131689", "exact"),
    Row("skis", "Ski", "skis", "ski's", "Q172226", "exact", "43C245", "exact"),
    Row("snowboard", "Snowboard", "snowboard", "snowboard", "Q2000617", "exact", "43C24", "broad"),
    Row("sports ball", "Ball", "balle", "bal", "Q18545", "broad", "43C41", "broad"),
    # The toy: 43C724 is "(flying a) kite"; 25F33(KITE) is the bird and stays out.
    Row("kite", "Drachen", "cerf-volant", "vlieger", "Q42861", "exact", "43C724", "close"),
    Row("baseball bat", "Baseballschläger", "batte de baseball", "honkbalknuppel", "Q809910", "exact", "43C4135", "broad"),
    Row("baseball glove", "Baseballhandschuh", "gant de baseball", "honkbalhandschoen", "Q809894", "exact", "43C4135",
        "broad"),
    Row("skateboard", "Skateboard", "planche à roulettes", "skateboard", "Q15783", "exact"),
    Row("surfboard", "Surfbrett", "planche de surf", "surfplank", "Q457689", "exact", "43C222", "broad"),
    Row("tennis racket", "Tennisschläger", "raquette de tennis", "tennisracket", "Q153362", "exact", "43C4151", "broad"),
    Row("bottle", "Flasche", "bouteille", "fles", "Q80228", "exact", "41A774", "close"),
    Row("wine glass", "Weinglas", "verre à vin", "wijnglas", "Q1531435", "exact", "41C323", "broad"),
    Row("cup", "Tasse", "tasse", "kop", "Q81727", "exact", "41C321", "exact"),
    Row("fork", "Gabel", "fourchette", "vork", "Q81881", "exact", "41C312", "exact"),
    Row("knife", "Messer", "couteau", "mes", "Q32489", "exact", "41C311", "close"),
    Row("spoon", "Löffel", "cuillère", "lepel", "Q81895", "exact", "41C313", "exact"),
    Row("bowl", "Schüssel", "bol", "kom", "Q153988", "exact", "41C345", "exact"),
    Row("banana", "Banane", "banane", "banaan", "Q503", "exact", "25G21", "broad"),
    Row("apple", "Apfel", "pomme", "appel", "Q89", "exact", "25G21(APPLE)", "exact"),
    Row("sandwich", "Sandwich", "sandwich", "broodje", "Q28803", "exact", "41C6212", "broad"),
    Row("orange", "Orange", "orange", "sinaasappel", "Q13191", "exact", "25G21(ORANGE)", "exact"),
    Row("broccoli", "Brokkoli", "brocoli", "broccoli", "Q47722", "exact", "41C652", "broad"),
    Row("carrot", "Karotte", "carotte", "wortel", "Q81", "exact", "41C652", "broad"),
    Row("hot dog", "Hotdog", "hot-dog", "hotdog", "Q181055", "exact", "41C6212", "broad"),
    Row("pizza", "Pizza", "pizza", "pizza", "Q177", "exact", "41C62111", "broad"),
    Row("donut", "Donut", "beignet", "donut", "Q192783", "exact", "41C622", "broad", alt_en="doughnut"),
    Row("cake", "Kuchen", "gâteau", "taart", "Q13276", "exact", "41C622", "close"),
    Row("chair", "Stuhl", "chaise", "stoel", "Q15026", "exact", "41A721", "exact"),
    Row("couch", "Sofa", "canapé", "sofa", "Q131514", "exact", "41A722", "exact", alt_en="sofa"),
    Row("potted plant", "Topfpflanze", "plante en pot", "potplant", "Q27993793", "exact", "41A673", "exact"),
    Row("bed", "Bett", "lit", "bed", "Q42177", "exact", "41A761", "exact"),
    Row("dining table", "Esstisch", "table à manger", "eettafel", "Q115665141", "exact", "41A711", "broad"),
    Row("toilet", "Toilette", "toilettes", "toilet", "Q7857", "exact", "41A3914", "close"),
    Row("tv", "Fernseher", "téléviseur", "televisie", "Q8075", "close", "46E64", "close", alt_en="television set"),
    Row("laptop", "Laptop", "ordinateur portable", "laptop", "Q3962", "exact", "49D541", "exact"),
    # The computer mouse: 25F26(MOUSE) is the rodent and stays out.
    Row("mouse", "Computermaus", "souris d'ordinateur", "computermuis", "Q7987", "exact",
        alt_en="computer mouse"),
    Row("remote", "Fernbedienung", "télécommande", "afstandsbediening", "Q185091", "exact",
        alt_en="remote control"),
    # The computer keyboard: 48C733 (keyboard instruments) stays out.
    Row("keyboard", "Tastatur", "clavier d'ordinateur", "toetsenbord", "Q250", "exact",
        alt_en="computer keyboard"),
    Row("cell phone", "Mobiltelefon", "téléphone portable", "mobiele telefoon", "Q17517", "exact", "46E6222", "exact",
        alt_en="mobile phone"),
    Row("microwave", "Mikrowelle", "four à micro-ondes", "magnetron", "Q127956", "exact", "41C254", "broad",
        alt_en="microwave oven"),
    Row("oven", "Backofen", "four", "oven", "Q36539", "exact", "41C2543", "exact"),
    Row("toaster", "Toaster", "grille-pain", "broodrooster", "Q14890", "exact"),
    Row("sink", "Waschbecken", "lavabo", "wasbak", "Q140565", "exact", "41A3916", "close"),
    Row("refrigerator", "Kühlschrank", "réfrigérateur", "koelkast", "Q37828", "exact", "41C2421", "close"),
    Row("book", "Buch", "livre", "boek", "Q571", "exact", "49M32", "exact"),
    Row("clock", "Uhr", "horloge", "klok", "Q376", "exact", "23U24", "exact"),
    Row("vase", "Vase", "vase", "vaas", "Q191851", "exact", "41A77", "broad"),
    Row("scissors", "Schere", "ciseaux", "schaar", "Q40847", "exact", "47D8(SCISSORS)", "close"),
    Row("teddy bear", "Teddybär", "ours en peluche", "teddybeer", "Q213477", "exact", "43C7872", "broad"),
    # No Wikidata item could be verified offline and Iconclass has no hair dryer: left unmapped.
    Row("hair drier", "Haartrockner", "sèche-cheveux", "haardroger", alt_en="hair dryer"),
    Row("toothbrush", "Zahnbürste", "brosse à dents", "tandenborstel", "Q134205", "exact", "31A54211", "exact"),
)

RELATIONS = {"exact": "exactMatch", "close": "closeMatch", "broad": "broadMatch"}


def class_uri(name: str) -> str:
    """Return the concept URI of a COCO class."""
    return CLASS_BASE + name.replace(" ", "_")


def iconclass_uri(notation: str) -> str:
    """Return the Iconclass URI of a notation, percent-encoded."""
    return ICONCLASS + quote(notation, safe="")


def read_texts(root: Path) -> dict[str, dict[str, str]]:
    """Read the official labels: language -> notation -> text."""
    texts: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        table = texts.setdefault(lang, {})
        for path in sorted((root / "txt" / lang).glob(f"txt_{lang}_*.txt")):
            if path.stem.endswith("_keys"):
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                notation, sep, text = line.partition("|")
                if sep and not notation.startswith("#"):  # "#" marks an untranslated placeholder
                    table[notation] = text.strip()
    return texts


def read_parents(root: Path) -> dict[str, str]:
    """Read the notation tree: child notation -> parent notation."""
    parents: dict[str, str] = {}
    notation, field = None, None
    for line in (root / "notations.txt").read_text(encoding="utf-8").splitlines():
        tag, _, value = line.partition(" ")
        if tag == "$":
            notation, field = None, None
        elif tag == "N":
            notation = value
        elif tag in {"C", ";"}:
            field = tag if tag == "C" else field
            if field == "C" and notation is not None:
                parents[value] = notation
        else:
            field = tag
    # "25F23(...)" is the template for named children such as "25F23(BEAR)", not a concept
    # with texts of its own: hang the named children on "25F23" instead.
    return {child: parents.get(parent, parent) if parent.endswith("(...)") else parent
            for child, parent in parents.items() if not child.endswith("(...)")}


def chain(notation: str, parents: dict[str, str]) -> list[str]:
    """Return the notation and its ancestors up to the root."""
    out = [notation]
    while out[-1] in parents:
        out.append(parents[out[-1]])
    if len(out[-1]) != 1:
        raise SystemExit(f"{notation}: no path to a root notation (stops at {out[-1]})")
    return out


def literal(text: str, lang: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"@{lang}'


def labels(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(literal(text, lang) for lang, text in pairs)


def render(texts: dict[str, dict[str, str]], parents: dict[str, str]) -> str:
    """Return the Turtle document."""
    out = [
        "# Generated by vocab/build_coco.py from its curated table and the official Iconclass texts.",
        "# Do not edit by hand: change the table and run the script again.",
        "@prefix skos: <http://www.w3.org/2004/02/skos/core#> .",
        "@prefix dct: <http://purl.org/dc/terms/> .",
        f"@prefix coco: <{CLASS_BASE}> .",
        f"@prefix wd: <{WIKIDATA}> .",
        "",
        f"<{SCHEME}> a skos:ConceptScheme ;",
        '    skos:prefLabel "COCO object classes"@en, "COCO-Objektklassen"@de,'
        ' "classes d\'objets COCO"@fr, "COCO-objectklassen"@nl ;',
        '    dct:source <https://cocodataset.org/> ;',
        '    dct:description "The 80 object classes of COCO, as named by Ultralytics YOLO models,'
        ' mapped to Wikidata and Iconclass."@en .',
        "",
    ]
    iconclass: dict[str, None] = {}
    seen_qids: set[str] = set()
    for r in CLASSES:
        lines = [
            f"coco:{r.name.replace(' ', '_')} a skos:Concept ;",
            f"    skos:inScheme <{SCHEME}> ;",
            f"    skos:topConceptOf <{SCHEME}> ;",
            f'    skos:notation "{r.name}" ;',
            f"    skos:prefLabel {labels([('en', r.name), ('de', r.de), ('fr', r.fr), ('nl', r.nl)])} ;",
        ]
        if r.alt_en:
            lines.append(f"    skos:altLabel {literal(r.alt_en, 'en')} ;")
        if r.qid:
            if r.qid in seen_qids:
                raise SystemExit(f"{r.name}: {r.qid} is used twice")
            seen_qids.add(r.qid)
            lines.append(f"    skos:{RELATIONS[r.wd_match]} wd:{r.qid} ;")
        if r.notation:
            lines.append(f"    skos:{RELATIONS[r.ic_match]} <{iconclass_uri(r.notation)}> ;")
            iconclass.update(dict.fromkeys(chain(r.notation, parents)))
        lines[-1] = lines[-1][:-2] + " ."
        out += lines + [""]
        if r.qid:
            pairs = [("en", r.name), ("de", r.de), ("fr", r.fr), ("nl", r.nl)]
            out += [f"wd:{r.qid} a skos:Concept ;", f"    skos:prefLabel {labels(pairs)} .", ""]
    for notation in sorted(iconclass):
        if notation not in texts["en"]:
            raise SystemExit(f"{notation}: no official English text")
        # Only official texts: the Dutch set has none for bracketed names such as 25F23(BEAR).
        official = [(lang, texts[lang][notation]) for lang in LANGUAGES if notation in texts[lang]]
        lines = [
            f"<{iconclass_uri(notation)}> a skos:Concept ;",
            f'    skos:notation "{notation}" ;',
            f"    skos:prefLabel {labels(official)}",
        ]
        if notation in parents:
            lines[-1] += " ;"
            lines.append(f"    skos:broader <{iconclass_uri(parents[notation])}>")
        lines[-1] += " ."
        out += lines + [""]
    return "\n".join(out)


def main(argv: list[str]) -> None:
    root = Path(argv[1]) if len(argv) > 1 else DEFAULT_ICONCLASS
    if not (root / "notations.txt").is_file():
        raise SystemExit(f"no Iconclass data in {root}")
    OUTPUT.write_text(render(read_texts(root), read_parents(root)), encoding="utf-8")
    print(f"wrote {OUTPUT} ({len(CLASSES)} classes)")


if __name__ == "__main__":
    main(sys.argv)
