"""Training data from what curators confirmed: COCO JSON and a YOLO dataset of exhaustively reviewed canvases.

Layout of the output folder (image file names: ``{manifest key}-{canvas index:04d}.jpg``)::

    images/{train,val,test}/*.jpg           the canvases' images, near full resolution (shared by both formats)
    labels/{train,val,test}/*.txt           YOLO: "class cx cy w h" per box, normalised to the image
    data.yaml                               YOLO: path, train, val, test, names (the model's class names)
    annotations/instances_{split}.json      COCO: boxes in image pixels, categories = the model's class names
    splits.json                             the split of each manifest; a manifest once in test stays there
    export.json                             what was exported, what was skipped and why, what to credit

Only canvases reviewed exhaustively for every training class are exported: a canvas reviewed for dogs
only would teach the model that its unlabelled horses are background. Every canvas of one manifest goes
to one split (pages of one book look alike; splitting them would leak), chosen by hashing the manifest
id, except that a manifest keeps the split splits.json recorded for it: the test split is frozen once
created. Manifests whose rights forbid AI use (enricher.rights) are skipped and reported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from PIL import Image

from . import groundtruth
from .clock import now
from .config import Config
from .errors import ConfigError, EnricherError, InputError, ManifestError
from .geometry import Box
from .groundtruth import TruthCanvas
from .imageapi import canvas_to_image, load_request, plan_whole, read_info
from .manifest import _text as label_text  # the package's one flattening of IIIF labels
from .rights import ai_use, canvas_document, rights_statement

SPLITS = ("train", "val", "test")
FORMATS = ("coco", "yolo")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
SPLITS_FILE = "splits.json"
REPORT_FILE = "export.json"
JPEG_QUALITY = 95
FETCH_WORKERS = 4  # canvases fetched and written at once
MIN_BOX = 1.0  # image pixels; a box thinner than this after clipping is dropped


@dataclass(frozen=True)
class Skipped:
    """A manifest (CANVAS_ID None) or canvas left out of the export, and why."""

    manifest_key: str
    manifest_id: str
    canvas_id: str | None
    reason: str


@dataclass
class ExportResult:
    """What an export wrote: counts per split, the categories, the skipped and the credits."""

    out: Path
    categories: list[str]
    splits: dict[str, str]  # manifest id -> split, for the manifests in this export
    images: Counter = field(default_factory=Counter)  # split -> images
    boxes: Counter = field(default_factory=Counter)  # split -> boxes
    skipped: list[Skipped] = field(default_factory=list)
    credits: dict[str, str] = field(default_factory=dict)  # manifest id -> what to credit
    dropped_boxes: int = 0  # boxes outside the image or thinner than a pixel
    files: list[Path] = field(default_factory=list)  # data.yaml and the COCO files
    val_from_train: bool = False  # no manifest fell in val: data.yaml validates on train


def parse_ratios(text: str) -> tuple[float, float, float]:
    """Parse "train,val,test" fractions, e.g. "0.8,0.1,0.1"; ConfigError when they do not sum to 1."""
    try:
        ratios = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"split ratios {text!r} are not numbers: give train,val,test, e.g. 0.8,0.1,0.1") from None
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ConfigError(f"split ratios {text!r} must be three non-negative fractions train,val,test summing to 1")
    return ratios  # type: ignore[return-value]


def hashed_split(manifest_id: str, ratios: Sequence[float]) -> str:
    """The split a manifest falls in by the hash of its id: the same on every machine and run."""
    position = int(hashlib.sha256(manifest_id.encode()).hexdigest()[:16], 16) / 2**64
    edge = 0.0
    for split, ratio in zip(SPLITS, ratios):
        edge += ratio
        if position < edge:
            return split
    return next(s for s, r in zip(reversed(SPLITS), reversed(ratios)) if r > 0)


def read_splits(path: Path) -> dict[str, dict]:
    """Return the recorded splits {manifest id: {"split", "key", "assigned"}} of PATH (empty if none)."""
    if not path.exists():
        return {}
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["manifests"]
        if not all(entry["split"] in SPLITS for entry in recorded.values()):
            raise ValueError("unknown split name")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # A damaged record must stop the export: guessing could move a test manifest into training.
        raise ConfigError(f"cannot read the recorded splits: {exc}", where=str(path)) from None
    return recorded


def assign_splits(manifests: Mapping[str, str], recorded: dict[str, dict], ratios: Sequence[float]) -> dict[str, dict]:
    """Return RECORDED plus a hashed split for each new manifest of MANIFESTS (id -> key); never moves one."""
    stamp = now()
    merged = dict(recorded)
    for manifest_id, key in sorted(manifests.items()):
        if manifest_id not in merged:
            merged[manifest_id] = {"split": hashed_split(manifest_id, ratios), "key": key, "assigned": stamp}
    return merged


def _covered(canvas: TruthCanvas, required: Collection[str]) -> list[str]:
    return sorted(set(required) - canvas.labels)


def _image(canvas: TruthCanvas, fetcher, long_side: int | None) -> tuple[Image.Image, tuple[int, int], float]:
    """Fetch the canvas's image; return it, the full image size and the delivered/full scale."""
    if canvas.image_service:
        info = read_info(canvas.image_service, fetcher)
        request = plan_whole(info, long_side or max(info.width, info.height))
        image = load_request(request, fetcher)
        return image, (info.width, info.height), image.width / info.width
    if canvas.image_url:
        image = fetcher.get_image(canvas.image_url)
        full = image.size
        if long_side and max(full) > long_side:
            scale = long_side / max(full)
            image = image.resize((max(1, round(full[0] * scale)), max(1, round(full[1] * scale))))
        return image, full, image.width / full[0]
    raise ManifestError("the canvas has neither an image service nor an image", where=canvas.canvas_id)


def image_box(box: Box, canvas: TruthCanvas, full: tuple[int, int], scale: float, size: tuple[int, int]) -> Box | None:
    """Map a canvas box to pixels of the delivered image (full image pixels times SCALE), clipped to SIZE;
    None when nothing of at least MIN_BOX pixels is left."""
    x, y, w, h = (v * scale for v in canvas_to_image(box, full, (canvas.width, canvas.height)))
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(size[0]), x + w), min(float(size[1]), y + h)
    if x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
        return None
    return x0, y0, x1 - x0, y1 - y0


def _clear(out: Path) -> None:
    """Remove what an earlier export wrote (never splits.json): a canvas no longer reviewed must go."""
    for name in ("images", "labels", "annotations"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in ("data.yaml", REPORT_FILE):
        (out / name).unlink(missing_ok=True)


def export(
    truth: Sequence[TruthCanvas],
    out: Path,
    fetcher,
    config: Config,
    *,
    classes: Sequence[str],
    documents: Mapping[str, dict],
    formats: Collection[str] = FORMATS,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    required: Collection[str] | None = None,
    consented: Collection[str] = (),
    long_side: int | None = None,
    splits_file: Path | None = None,
    progress: Callable[[TruthCanvas], None] | None = None,
) -> ExportResult:
    """Write the COCO and/or YOLO export of TRUTH into OUT.

    CLASSES are the model's class names (YOLO class i = COCO category i + 1); labels curators used beyond them
    are appended. DOCUMENTS maps manifest keys to manifest documents, whose rights are checked: a manifest
    without one is skipped, since its rights are unknown. REQUIRED are the classes a canvas must have been
    reviewed for (default: the ``classes`` setting, else CLASSES). CONSENTED lists manifest keys or ids
    whose holders consented where consent is required. LONG_SIDE caps the image size (default: full).
    SPLITS_FILE defaults to OUT/splits.json. PROGRESS is called with each canvas as its fetch starts, from
    fetch threads. Raises ConfigError for bad formats or ratios or a damaged splits file; a canvas whose
    image cannot be fetched is skipped and reported."""
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ConfigError(f"unknown export format {', '.join(sorted(unknown)) or '(none)'}: choose from {', '.join(FORMATS)}")
    out = Path(out)
    splits_file = Path(splits_file) if splits_file else out / SPLITS_FILE
    required = list(required if required is not None else (config.classes or classes))
    categories = list(classes) + sorted({b.label for c in truth for b in c.boxes} - set(classes))
    result = ExportResult(out, categories, {})

    allowed = _allowed(truth, documents, set(consented), result)
    recorded = read_splits(splits_file)
    assigned = assign_splits({c.manifest_id: c.manifest_key for c in allowed}, recorded, ratios)
    result.splits = {c.manifest_id: assigned[c.manifest_id]["split"] for c in allowed}

    out.mkdir(parents=True, exist_ok=True)
    _clear(out)
    coco = {split: _coco_document(categories) for split in SPLITS}
    class_id = {name: i for i, name in enumerate(categories)}
    wanted = []
    for canvas in allowed:
        missing = _covered(canvas, required)
        if missing:
            result.skipped.append(Skipped(canvas.manifest_key, canvas.manifest_id, canvas.canvas_id,
                                          f"not reviewed exhaustively for {', '.join(missing)}"))
        else:
            wanted.append(canvas)

    def write(canvas: TruthCanvas):
        """Fetch and save one canvas's image; return its name, size and boxes (the images stay out of memory)."""
        if progress:
            progress(canvas)
        image, full, scale = _image(canvas, fetcher, long_side)
        name = f"images/{result.splits[canvas.manifest_id]}/{canvas.manifest_key}-{canvas.canvas_index:04d}.jpg"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        image.save(out / name, quality=JPEG_QUALITY)
        return name, image.size, [(b, image_box(b.box, canvas, full, scale, image.size)) for b in canvas.boxes]

    with ThreadPoolExecutor(FETCH_WORKERS) as pool:
        futures = [(canvas, pool.submit(write, canvas)) for canvas in wanted]
        for canvas, future in futures:
            try:
                name, size, mapped = future.result()
            except EnricherError as exc:
                result.skipped.append(Skipped(canvas.manifest_key, canvas.manifest_id, canvas.canvas_id, f"image: {exc}"))
                continue
            split = result.splits[canvas.manifest_id]
            boxes = [(truth_box, box) for truth_box, box in mapped if box is not None]
            result.dropped_boxes += len(mapped) - len(boxes)
            if "yolo" in formats:
                label_file = (out / name.replace("images/", "labels/", 1)).with_suffix(".txt")
                _write_labels(label_file, boxes, class_id, size)
            _add_coco(coco[split], canvas, name, size, boxes, class_id, documents[canvas.manifest_key])
            result.images[split] += 1
            result.boxes[split] += len(boxes)

    if "coco" in formats:
        for split in SPLITS:
            if coco[split]["images"]:
                path = out / "annotations" / f"instances_{split}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(coco[split], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
                result.files.append(path)
    if "yolo" in formats:
        result.files.append(_write_data_yaml(out, categories, result))
    _write_json(splits_file, {"ratios": list(ratios), "manifests": assigned})
    _write_json(out / REPORT_FILE, _report(result))
    return result


def export_store(store, out: Path, fetcher, config: Config, keys: Sequence[str] | None = None, **options) -> ExportResult:
    """Export the exhaustively reviewed canvases of the manifests KEYS (None: all) of STORE into OUT, the
    categories being the class names of the configured weights; OPTIONS as for :func:`export`.
    InputError naming the database for a key it does not hold."""
    unknown = [key for key in keys or () if store.manifest(key) is None]
    if unknown:
        raise InputError(f"no manifest {', '.join(unknown)} in the database", where=str(config.database))
    truth = groundtruth.reviewed_canvases(store, list(keys) if keys else None)
    documents = {key: store.manifest(key).document for key in {c.manifest_key for c in truth}}
    if "classes" not in options:  # the weights load only when the caller did not name the classes
        from .detect import Detector

        options["classes"] = [name for _, name in sorted(Detector(config).classes.items())]
    return export(truth, out, fetcher, config, documents=documents, **options)


def _allowed(truth: Sequence[TruthCanvas], documents: Mapping[str, dict], consented: set[str], result: ExportResult) -> list[TruthCanvas]:
    """The canvases whose manifest and canvas allow AI use; record the others in RESULT.skipped."""
    allowed, refused = [], set()
    for canvas in sorted(truth, key=lambda c: (c.manifest_id, c.canvas_index)):
        if canvas.manifest_id in refused:
            continue
        document = documents.get(canvas.manifest_key)
        if document is None:
            refused.add(canvas.manifest_id)
            result.skipped.append(Skipped(canvas.manifest_key, canvas.manifest_id, None,
                                          "manifest document unknown: its rights cannot be checked"))
            continue
        agreed = bool({canvas.manifest_key, canvas.manifest_id} & consented)
        credit = f"{_title(document)} <{canvas.manifest_id}>"
        verdict = ai_use(document, consented=agreed, credit=credit)
        if not verdict.allowed:
            refused.add(canvas.manifest_id)
            result.skipped.append(Skipped(canvas.manifest_key, canvas.manifest_id, None, verdict.reason))
            continue
        own = ai_use(canvas_document(document, canvas.canvas_id), {"rights": canvas.rights} if canvas.rights else None,
                     consented=agreed, credit=credit)
        if not own.allowed:
            result.skipped.append(Skipped(canvas.manifest_key, canvas.manifest_id, canvas.canvas_id, own.reason))
            continue
        if verdict.attribution or own.attribution:
            result.credits[canvas.manifest_id] = verdict.attribution or own.attribution
        allowed.append(canvas)
    return allowed


def _title(document: dict) -> str:
    return label_text(document.get("label")) or "untitled"


def _coco_document(categories: Sequence[str]) -> dict:
    return {
        "info": {"description": "enricher training export: exhaustively reviewed canvases",
                 "date_created": now()},
        "licenses": [],
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(categories)],
    }


def _licence(document: dict, manifest: dict) -> int | None:
    """The id of the COCO licence entry for MANIFEST's rights statement (added once), or None without one."""
    rights = rights_statement(manifest)
    if rights is None:
        return None
    for entry in document["licenses"]:
        if entry["url"] == rights:
            return entry["id"]
    document["licenses"].append({"id": len(document["licenses"]) + 1, "name": rights, "url": rights})
    return len(document["licenses"])


def _add_coco(document: dict, canvas: TruthCanvas, file_name: str, size: tuple[int, int], boxes, class_id,
              manifest: dict) -> None:
    image_id = len(document["images"]) + 1
    licence = _licence(document, manifest)
    # LVIS-style: the classes this canvas was not reviewed for, so no reader takes their absence as truth.
    unreviewed = [class_id[name] + 1 for name in sorted(set(class_id) - canvas.labels, key=class_id.get)]
    document["images"].append({
        "id": image_id, "file_name": file_name, "width": size[0], "height": size[1],
        **({"license": licence} if licence else {}), "canvas": canvas.canvas_id, "manifest": canvas.manifest_id,
        "canvas_width": canvas.width, "canvas_height": canvas.height, "not_exhaustive_category_ids": unreviewed,
    })
    for truth_box, (x, y, w, h) in boxes:
        document["annotations"].append({
            "id": len(document["annotations"]) + 1, "image_id": image_id, "category_id": class_id[truth_box.label] + 1,
            "bbox": [round(v, 2) for v in (x, y, w, h)], "area": round(w * h, 2), "iscrowd": 0,
            "source": truth_box.annotation_id,
        })


def _write_labels(path: Path, boxes, class_id: Mapping[str, int], size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    lines = [f"{class_id[t.label]} {(x + w / 2) / width:.6f} {(y + h / 2) / height:.6f} {w / width:.6f} {h / height:.6f}"
             for t, (x, y, w, h) in boxes]
    path.write_text("".join(line + "\n" for line in lines))  # an empty file: a reviewed canvas with no objects


def _write_data_yaml(out: Path, categories: Sequence[str], result: ExportResult) -> Path:
    present = {split for split in SPLITS if result.images[split]}
    result.val_from_train = "val" not in present
    data = {
        "path": str(out.resolve()),
        "train": "images/train",
        # ultralytics needs a validation set; with no manifest in val the training images stand in.
        "val": "images/train" if result.val_from_train else "images/val",
        **({"test": "images/test"} if "test" in present else {}),
        "names": dict(enumerate(categories)),
    }
    path = out / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _report(result: ExportResult) -> dict:
    return {
        "created": now(),
        "categories": result.categories,
        "images": dict(result.images),
        "boxes": dict(result.boxes),
        "dropped_boxes": result.dropped_boxes,
        "splits": result.splits,
        "val_from_train": result.val_from_train,
        "credits": result.credits,
        "skipped": [vars(s) for s in result.skipped],
        "files": [str(p.relative_to(result.out)) if p.is_relative_to(result.out) else str(p) for p in result.files],
    }


def _write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)
