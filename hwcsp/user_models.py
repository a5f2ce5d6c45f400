"""The store of imported networks: a user's Darknet cfg (and weights) as a model every command accepts.

``hwcsp import darknet`` (``quant.importer``) writes, in ``$HWCSP_MODELS/<name>/`` (default
``~/.hwcsp/models``; never the repository):

- ``model.cfg``: the cfg text as given;
- ``model.json``: the record below (hashes, input size, task, converted activations);
- ``weights.pt``: with ``--weights``, a float hwcsp checkpoint of the imported parameters (Darknet's
  BatchNorm converted), the model's default checkpoint: export calibrates its activation scales, on
  the images of ``--calib DIR`` if given (read where they are; their hash goes into the build
  directory names), else on the digits val images.

The registry lists these beside the zoo (``hwcsp.registry``); their build directories carry the
cfg's hash (``BuildConfig.dirname``) and, through the checkpoint's hash, the weights'.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from hwcsp.errors import UserError

MODELS_ENV = "HWCSP_MODELS"
RECORD = "model.json"
CFG = "model.cfg"
CHECKPOINT = "weights.pt"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class ModelImportError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class ImportRecord:
    name: str
    source: str  # "darknet"
    cfg_file: str  # the file imported (for the user's reference)
    cfg_sha256: str
    weights_sha256: str  # "" without --weights
    size: int  # the cfg's [net] input size: the model's default size
    task: str
    classes: int
    converted: dict[str, list[int]] = field(default_factory=dict)  # activation -> darknet layers
    calib: str = ""  # folder of calibration images (--calib), "" for the digits val images
    calib_sha256: str = ""  # of its images' names and bytes

    @property
    def tag(self) -> str:
        """What build directory names carry: the cfg's hash, and the calibration images' (the
        weights' hash is the checkpoint's, which the name carries too)."""
        return f"cfg{self.cfg_sha256[:8]}" + (f"-cal{self.calib_sha256[:8]}" if self.calib_sha256 else "")


def models_dir() -> Path:
    return Path(os.environ.get(MODELS_ENV) or Path.home() / ".hwcsp" / "models")


def load_records() -> list[tuple[ImportRecord, Path]]:
    """Every imported model (record, directory); unreadable entries are skipped with a reason
    on stderr rather than breaking every command."""
    import sys

    root = models_dir()
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        f = d / RECORD
        if not f.is_file() or not (d / CFG).is_file():
            continue
        try:
            out.append((ImportRecord(**json.loads(f.read_text())), d))
        except (ValueError, TypeError) as e:
            print(f"hwcsp: skipping imported model {d}: unreadable {RECORD} ({e})", file=sys.stderr)
    return out


def converted_activations(cfg_text: str) -> dict[str, list[int]]:
    """Layers (darknet indices) whose activation the hardware rule turns into ReLU."""
    from hwcsp.darknet_cfg import CONVERTED, parse_cfg

    out: dict[str, list[int]] = {}
    body = parse_cfg(cfg_text)[1:]
    for i, s in enumerate(body):
        default = "linear" if s.kind == "shortcut" else "logistic"
        act = s.get("activation", default)
        gate = act == "logistic" and i + 1 < len(body) and body[i + 1].kind == "sam"  # stays a sigmoid
        if s.kind in ("convolutional", "connected", "shortcut") and act in CONVERTED and not gate:
            out.setdefault(act, []).append(i)
    return out
