"""enricher: find objects in IIIF images with YOLO and publish them as W3C Web Annotations."""

__version__ = "0.1.0"
