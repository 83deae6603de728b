"""Machine annotations as served: with the calibrated confidence of their model on their collection,
where enricher.calibrate has fitted one (the latest), naming it. Pages, containers, the RDF index and
the pusher all serve annotations through this."""

from __future__ import annotations

import dataclasses
import json

from .review import class_of
from .store import Store, StoredAnnotation, StoredCalibration
from .urls import calibration_url

CALIBRATED_DIGITS = 4


class Calibrations:
    """Serve machine annotations with the calibrated confidence of their model on their collection,
    where enricher.calibrate has fitted one (the latest), naming it. One per request: lookups are cached."""

    def __init__(self, store: Store, base: str):
        self.store, self.base = store, base
        self._found: dict[tuple[str, str], StoredCalibration | None] = {}

    def of(self, stored: StoredAnnotation) -> StoredCalibration | None:
        """The calibration that applies to STORED, if any."""
        if stored.role != "annotation" or not stored.model_sha256:
            return None
        key = (stored.model_sha256, stored.key)
        if key not in self._found:
            self._found[key] = self.store.calibration(*key)
        return self._found[key]

    def fields(self, stored: StoredAnnotation) -> dict:
        """``calibratedConfidence`` and ``calibration`` for STORED, or nothing."""
        calibration = self.of(stored)
        if calibration is None:
            return {}
        score = stored.document.get("confidence")
        label = stored.concept or class_of(stored.document)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or label is None:
            return {}
        from .calibrate import apply  # numpy: loaded only once a calibration exists

        value = round(apply(calibration.params, label, score), CALIBRATED_DIGITS)
        return {"calibratedConfidence": value, "calibration": calibration_url(self.base, calibration.id)}

    def document(self, stored: StoredAnnotation) -> dict:
        """STORED's document as served."""
        return {**stored.document, **self.fields(stored)}

    def served(self, stored: StoredAnnotation) -> StoredAnnotation:
        """STORED with its served text (unchanged, unparsed, when no calibration applies)."""
        if self.of(stored) is None:
            return stored
        return dataclasses.replace(stored, text=json.dumps(self.document(stored), ensure_ascii=False))

    def none_in(self, key: str | None) -> bool:
        """Whether no calibration applies to any annotation of container KEY (None: of any container)."""
        return not self.store.has_calibrations(key)
