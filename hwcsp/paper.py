"""The paper's numbers for a registered model (``data/paper_tables.json``), and how close we are.

ImageNet rows count conv and FC weights, COCO detector rows every float of a darknet weights
file (DESIGN.md); Table 1 (the CSPPeleeNet gamma x fusion grid) gives BFLOPs only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class PaperRow:
    table: str
    size: int
    bflops: float
    params_M: float | None  # None: the table gives no parameter count
    convention: str  # "weights" or "all floats"

    def deviations(self, params_M: float, params_all_M: float, bflops: float) -> dict[str, float]:
        """Relative deviation of our counts from the row's (the parameter count in its convention)."""
        out = {"bflops": (bflops - self.bflops) / self.bflops}
        if self.params_M is not None:
            ours = params_all_M if self.convention == "all floats" else params_M
            out["params"] = (ours - self.params_M) / self.params_M
        return out


@cache
def tables() -> dict:
    return json.loads((Path(__file__).parent / "data" / "paper_tables.json").read_text())


def paper_row(name: str, size: int | None = None) -> PaperRow | None:
    """The model's row (at ``size`` where the paper gives several sizes): a detector or
    classifier table first, then the ablations (BFLOPs only)."""
    d = tables()
    for table, convention in (("coco_detectors", "all floats"), ("imagenet", "weights")):
        rows = [r for r in d[table] if r["model"] == name]
        for r in sorted(rows, key=lambda r: r["size"] != size):
            return PaperRow(table, r["size"], r["bflops"], r["params_M"], convention)
    for table, key in (("table1", "ablation_table1_csppeleenet"), ("table2", "ablation_table2_heads")):
        for r in d[key]:
            if r["model"] == name:
                return PaperRow(table, r.get("size", 224), r["bflops"], None, "weights")
    return None


def table1_rows() -> list[dict]:
    """Table 1: the gamma x fusion grid on PeleeNet at 224 (BFLOPs; the PeleeNet row has no gamma)."""
    return list(tables()["ablation_table1_csppeleenet"])


def table2_rows() -> list[dict]:
    """Table 2: heads on CSPPeleeNet at 416 (BFLOPs; the EFM row is the reference)."""
    return list(tables()["ablation_table2_heads"])
