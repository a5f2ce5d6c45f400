"""torch ``Dataset`` wrappers; the only module of ``quant.data`` that imports torch.

Images become ``uint8 / 256`` (not /255): the model's input quantizer takes UINT8 codes at the fixed
scale 2^-8, so pixel p must enter as exactly p/256 for training, export and the golden model to agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

INPUT_SCALE = 1.0 / 256.0


class _DetectionSource(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...  # .image uint8 HWC, .boxes [N,4] xyxy, .labels [N]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC RGB -> float32 CHW holding exactly ``p / 256``."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected a uint8 HxWxC image, got {image.dtype} {image.shape}")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).to(torch.float32) * INPUT_SCALE


class DetectionDataset(Dataset):
    """Wraps ``DigitsDetection`` or ``CocoFolder``: item -> ``(image [3,H,W], {"boxes", "labels"})``."""

    def __init__(self, source: _DetectionSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        item = self.source[index]
        boxes = torch.as_tensor(np.asarray(item.boxes, dtype=np.float32).reshape(-1, 4))
        labels = torch.as_tensor(np.asarray(item.labels, dtype=np.int64).reshape(-1))
        return image_to_tensor(item.image), {"boxes": boxes, "labels": labels}


class ClassificationDataset(Dataset):
    """Wraps ``DigitsClassification``: item -> ``(image [3,H,W], label int64 scalar)``."""

    def __init__(self, source: _DetectionSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.source[index]
        return image_to_tensor(item.image), torch.tensor(item.label, dtype=torch.int64)


def collate(
    batch: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Stack images to ``[B, 3, H, W]``; targets stay a list because box counts differ per image."""
    shapes = {tuple(img.shape) for img, _ in batch}
    if len(shapes) > 1:
        raise ValueError(f"cannot batch images of different sizes {sorted(shapes)}; resize them first")
    return torch.stack([img for img, _ in batch]), [t for _, t in batch]
