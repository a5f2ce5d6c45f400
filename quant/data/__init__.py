"""Offline datasets built from what installed packages ship (scikit-learn digits, scikit-image photos).

Names are imported lazily (PEP 562), so ``import quant.data`` stays cheap, ``python -m
quant.data.digits`` runs without a double import, and torch loads only with ``torch_dataset``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "coco": ("CocoFolder", "CocoSample", "DatasetError", "load_coco", "write_coco"),
    "digits": (
        "CLASS_NAMES",
        "NUM_CLASSES",
        "ClassSample",
        "DigitsClassification",
        "DigitsConfig",
        "DigitsDetection",
        "Layout",
        "Placement",
        "Sample",
        "calibration_images",
        "digit_split_indices",
        "render",
        "write_digits_coco",
    ),
    "textures": ("TEXTURE_NAMES", "Crop", "Region", "texture_region"),
    "torch_dataset": ("ClassificationDataset", "DetectionDataset", "collate"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
