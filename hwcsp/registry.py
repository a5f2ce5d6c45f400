"""Model registry in the timm style: look up, list and build the models registered with
``hwcsp.entries.register_model`` (the model modules are imported here, so they register first)."""

from __future__ import annotations

import difflib
from pathlib import Path

from hwcsp.arch import build_graph
from hwcsp.entries import REGISTRY, ModelEntry
from hwcsp.errors import UserError
from hwcsp.graph import Graph


class UnknownModelError(UserError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class InputSizeError(UserError, ValueError):
    pass


_ZOO: set[str] = set()
_USER: dict[str, str] = {}  # imported model -> the models directory it was read from
_USER_STATE: list = [None]  # what the store looked like when it was read


def _load() -> None:
    # Importing the model modules runs their @register_model decorators.
    from hwcsp.models import cspdensenet, darknet, detectors, pelee, resnet  # noqa: F401

    if not _ZOO:
        _ZOO.update(n for n in REGISTRY if n not in _USER)
    _load_user_models()


def _load_user_models() -> None:
    """The imported models of ``$HWCSP_MODELS``, re-read when the variable or the store changes
    (an import in this process, another process's import)."""
    import sys
    from functools import partial

    from hwcsp.arch import CfgArch
    from hwcsp.user_models import CFG, CHECKPOINT, RECORD, load_records, models_dir

    root = models_dir()
    records = sorted(root.glob(f"*/{RECORD}")) if root.is_dir() else []
    state = (str(root), [(str(f), f.stat().st_mtime_ns) for f in records])
    if state == _USER_STATE[0]:
        return
    _USER_STATE[0] = state
    for name in list(_USER):
        REGISTRY.pop(name, None)
        del _USER[name]
    for rec, d in load_records():
        if rec.name in _ZOO:
            print(f"hwcsp: skipping imported model {d}: '{rec.name}' is a zoo model", file=sys.stderr)
            continue
        ckpt = d / CHECKPOINT
        REGISTRY[rec.name] = ModelEntry(
            rec.name,
            partial(CfgArch, (d / CFG).read_text()),
            rec.size,
            f"imported Darknet cfg {rec.cfg_file} (sha256 {rec.cfg_sha256[:8]})",
            checkpoint=ckpt if ckpt.is_file() else None,
            tag=rec.tag,
            calib=Path(rec.calib) if rec.calib else None,
        )
        _USER[rec.name] = str(root)


def zoo_models() -> tuple[str, ...]:
    _load()
    return tuple(sorted(_ZOO))


def build_tag(name: str) -> str:
    """The suffix an imported model's build directories carry ("" for the zoo and unknown names)."""
    _load()
    e = REGISTRY.get(name)
    return e.tag if e is not None else ""


def list_models(task: str | None = None) -> list[str]:
    _load()
    return sorted(n for n, e in REGISTRY.items() if task is None or e.task == task)


def get_entry(name: str) -> ModelEntry:
    _load()
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model '{name}'.{hint} Known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def model_graph(name: str, *, width: float = 1.0, num_classes: int | None = None) -> Graph:
    return build_graph(get_entry(name).arch, width=width, num_classes=num_classes)


def check_size(name: str, size: int) -> None:
    """Refuse an input size that is not a positive multiple of the model's total stride,
    naming the valid sizes nearby."""
    stride = model_graph(name).total_stride()
    if size >= stride and size % stride == 0:
        return
    below = max(stride, size // stride * stride)
    near = sorted({below, below + stride} if size >= stride else {stride, 2 * stride})
    raise InputSizeError(
        f"size {size}: {name} needs a positive multiple of its total stride {stride} "
        f"(nearby: {', '.join(map(str, near))})"
    )


def create_model(
    name: str,
    *,
    size: int | None = None,
    width: float = 1.0,
    wbits: int = 4,
    abits: int = 4,
    num_classes: int | None = None,
    quant: bool = True,
    wbits_overrides: dict[str, int] | None = None,
    abits_overrides: dict[str, int] | None = None,
):
    """Build a registered model. ``quant=False`` gives the float twin (same state-dict keys)."""
    from hwcsp.net import CSPNet
    from hwcsp.quant import QuantConfig

    entry = get_entry(name)
    if size is not None:
        check_size(name, size)
    graph = model_graph(name, width=width, num_classes=num_classes)
    qcfg = None
    if quant:
        qcfg = QuantConfig(
            wbits=wbits,
            abits=abits,
            wbits_overrides=dict(wbits_overrides or {}),
            abits_overrides=dict(abits_overrides or {}),
        )
    meta = {
        "model": name,
        "task": entry.task,
        "size": int(size or entry.paper_size),
        "width": float(width),
        "wbits": wbits if quant else None,
        "abits": abits if quant else None,
    }
    return CSPNet(graph, qcfg, meta)
