"""Object detection with ultralytics YOLO: load the weights once (on the runtime ``runtimes`` picks),
predict in batches."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from .config import Config
from .errors import ConfigError, ModelError
from .geometry import Box
from .runtimes import load_model
from .yolo import local_weights, weights_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: Box


def choose_device(setting: str) -> str:
    """Resolve ``auto`` to CUDA when present, else CPU."""
    if setting != "auto":
        return setting
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class Detector:
    """A YOLO model loaded once, with the thresholds of one configuration. Its name and SHA-256 are the
    weights' as given, whichever runtime runs them."""

    def __init__(self, config: Config):
        self.config = config
        self.device = choose_device(config.device)
        self.path = local_weights(config.weights)
        self.name = self.path.name
        self.sha256 = weights_sha256(self.path)
        try:
            self.runtime, self.model = load_model(self.path, self.sha256, config, self.device)
        except (ModelError, ConfigError):
            raise
        except Exception as exc:  # ultralytics raises many kinds; the cause goes in the message
            raise ModelError(
                f"cannot load weights: {exc}. Give a local file with --weights or ENRICHER_WEIGHTS",
                where=str(config.weights),
            ) from None
        self.classes: dict[int, str] = dict(self.model.names)
        self.class_ids = self._class_filter(config.classes)

    def with_config(self, config: Config) -> Detector:
        """Return this detector with CONFIG's thresholds and class filter, sharing the loaded model."""
        tuned = copy.copy(self)
        tuned.config = config  # predict() reads conf, iou, batch and the like from here
        tuned.class_ids = self._class_filter(config.classes)
        return tuned

    def _class_filter(self, names: Sequence[str]) -> list[int] | None:
        if not names:
            return None
        ids = {name: i for i, name in self.classes.items()}
        unknown = [n for n in names if n not in ids]
        if unknown:
            raise ConfigError(
                f"classes {', '.join(unknown)} are not known to the model; it knows: {', '.join(ids)}",
                where=self.name,
            )
        return [ids[n] for n in names]

    def warm_up(self) -> None:
        """Run the model once on a blank image, so that the runtime's one-time setup (the predictor, the
        model compiled again with the inference threads) happens now rather than in a job's first batch."""
        self.predict([Image.new("RGB", (self.config.imgsz, self.config.imgsz))])

    def predict(self, images: Sequence[Image.Image]) -> list[list[Detection]]:
        """Detect objects in each image; boxes in that image's pixels."""
        found: list[list[Detection]] = []
        for start in range(0, len(images), self.config.batch):
            batch = list(images[start : start + self.config.batch])
            results = self.model.predict(
                batch,
                conf=self.config.conf,
                iou=self.config.iou,
                max_det=self.config.max_det,
                classes=self.class_ids,
                imgsz=self.config.imgsz,
                device=self.device,
                batch=len(batch),
                verbose=False,
            )
            found.extend(self._detections(r) for r in results)
        return found

    def _detections(self, result) -> list[Detection]:
        boxes = result.boxes
        xyxy = boxes.xyxy.cpu().numpy().astype(float)
        scores = boxes.conf.cpu().numpy().astype(float)
        labels = boxes.cls.cpu().numpy().astype(int)
        return [
            Detection(self.classes[c], float(s), (x0, y0, x1 - x0, y1 - y0))
            for (x0, y0, x1, y1), s, c in zip(xyxy.tolist(), scores.tolist(), labels.tolist())
        ]
