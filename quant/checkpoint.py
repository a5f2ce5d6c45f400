"""Checkpoints: plain tensors plus JSON-able metadata, loadable with ``weights_only=True``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from golden.fsutil import atomic_write
from hwcsp.errors import UserError

FORMAT = "hwcsp-checkpoint"
VERSION = 1
META_KEYS = ("model", "size", "width", "wbits", "abits", "num_classes", "quant")


class CheckpointError(UserError, ValueError):
    pass


def save_checkpoint(path: Path, state_dict: dict, meta: dict) -> None:
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {missing}")
    json.dumps(meta)  # metadata must stay JSON-able (weights_only loading)
    buf = io.BytesIO()
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    torch.save({"format": FORMAT, "version": VERSION, "meta": meta, "state_dict": state}, buf)
    atomic_write(Path(path), buf.getvalue())


def load_checkpoint(path: Path) -> tuple[dict, dict]:
    """Return (state_dict, meta); one clear ``CheckpointError`` for any unusable file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/corrupt/unsafe files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint '{path}' cannot be read (truncated, corrupt or not a torch file): {first}"
        ) from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint '{path}' is not an hwcsp checkpoint (no format='{FORMAT}' record); "
            "it was written by another program"
        )
    if obj.get("version") != VERSION:
        raise CheckpointError(f"checkpoint '{path}' has version {obj.get('version')}, expected {VERSION}")
    meta, state = obj.get("meta"), obj.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict):
        raise CheckpointError(f"checkpoint '{path}' lacks its metadata or state_dict")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"checkpoint '{path}' metadata lacks {missing}")
    return state, meta


def check_matches(meta: dict, path: Path, **asked) -> None:
    """Refuse a checkpoint of another model or configuration."""
    diff = [f"{k}: checkpoint has {meta.get(k)!r}, asked {v!r}" for k, v in asked.items() if meta.get(k) != v]
    if diff:
        raise CheckpointError(f"checkpoint '{path}' is for another configuration ({'; '.join(diff)})")
