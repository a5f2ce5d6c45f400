"""Model records and the ``@register_model`` decorator the model modules use.

Apart from ``hwcsp.registry`` so that the model modules and the registry do not import each
other: the models write their records here, the registry imports the models and reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwcsp.arch import Arch, CfgArch


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: Callable[[], Arch | CfgArch]
    paper_size: int  # input size of the paper's table row
    doc: str
    tolerance: float = 0.02  # of params and BFLOPs against the paper's row (tests/test_analysis.py)
    # imported models (hwcsp.user_models): their default checkpoint, and what build directory
    # names carry (the cfg's hash)
    checkpoint: Path | None = None
    tag: str = ""
    calib: Path | None = None  # images its export calibrates on (default: digits val images)

    @property
    def arch(self) -> Arch | CfgArch:
        return self.fn()

    @property
    def task(self) -> str:
        return self.arch.task


REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, paper_size: int, tolerance: float = 0.02):
    def deco(fn: Callable[[], Arch | CfgArch]):
        if name in REGISTRY:
            raise ValueError(f"model '{name}' registered twice")
        doc = (fn.__doc__ or "").strip()
        REGISTRY[name] = ModelEntry(name, fn, paper_size, doc, tolerance)
        return fn

    return deco
