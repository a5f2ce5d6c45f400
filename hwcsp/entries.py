"""Model records and the ``@register_model`` decorator the model modules use.

Apart from ``hwcsp.registry`` so that the model modules and the registry do not import each
other: the models write their records here, the registry imports the models and reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwcsp.arch import Arch, ClassifierHead


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


REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, paper_size: int):
    def deco(fn: Callable[[], Arch]):
        if name in REGISTRY:
            raise ValueError(f"model '{name}' registered twice")
        doc = (fn.__doc__ or "").strip()
        REGISTRY[name] = ModelEntry(name, fn, paper_size, doc)
        return fn

    return deco
