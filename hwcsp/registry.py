"""Model registry in the timm style: ``@register_model`` on a function returning an ``Arch``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from hwcsp.arch import Arch, ClassifierHead, build_graph
from hwcsp.errors import UserError
from hwcsp.graph import Graph


class UnknownModelError(UserError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: Callable[[], Arch]
    paper_size: int  # input size of the paper's table row
    doc: str

    @property
    def arch(self) -> Arch:
        return self.fn()

    @property
    def task(self) -> str:
        return "classify" if isinstance(self.arch.head, ClassifierHead) else "detect"


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, paper_size: int):
    def deco(fn: Callable[[], Arch]):
        if name in _REGISTRY:
            raise ValueError(f"model '{name}' registered twice")
        doc = (fn.__doc__ or "").strip()
        _REGISTRY[name] = ModelEntry(name, fn, paper_size, doc)
        return fn

    return deco


def _load() -> None:
    # Importing the model modules runs their @register_model decorators.
    from hwcsp.models import cspdensenet, darknet  # noqa: F401


def list_models(task: str | None = None) -> list[str]:
    _load()
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def get_entry(name: str) -> ModelEntry:
    _load()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model '{name}'.{hint} Known models: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_graph(name: str, *, width: float = 1.0, num_classes: int | None = None) -> Graph:
    return build_graph(get_entry(name).arch, width=width, num_classes=num_classes)


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
