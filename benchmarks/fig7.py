"""The paper's Fig. 7: per-layer BFLOPs of PeleeNet-YOLO, PeleeNet-PRN and CSPPeleeNet-EFM at 416.

The paper reads two claims off the figure: the CSP backbone cuts PeleeNet's computational
bottleneck (its heaviest layer) by 44%, and CSPPeleeNet-EFM cuts PeleeNet-YOLO's by 80%. Both are
computed here from the zoo's records (``hwcsp.models.detectors``) with the paper's counting
convention. Counts only, no timing: deterministic. Writes build/bench/fig7.{md,json,png}.

    python -m benchmarks.fig7 [--build-root build/bench]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SIZE = 416
DETECTORS = ("peleenet-yolo", "peleenet-prn", "csppeleenet-efm")
BACKBONES = ("peleenet", "csppeleenet")
PAPER_CUTS = {"backbone": 0.44, "detector": 0.80}


def heaviest(model: str, backbone_only: bool = False) -> dict:
    from hwcsp.analysis import model_stats

    rows = model_stats(model, SIZE).rows
    if backbone_only:  # the classifier's logits layer is not part of a detector's backbone
        rows = [r for r in rows if r.name != "fc"]
    r = max(rows, key=lambda r: r.flops)
    return {"model": model, "layer": r.name, "bflops": r.flops / 1e9}


def per_layer(model: str) -> list[tuple[str, float]]:
    from hwcsp.analysis import model_stats

    return [(r.name, r.flops / 1e9) for r in model_stats(model, SIZE).rows if r.flops]


def plot(layers: dict[str, list[tuple[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(f for rows in layers.values() for _, f in rows)
    fig, axes = plt.subplots(len(layers), 1, figsize=(11, 2.4 * len(layers)))
    for ax, (model, rows) in zip(axes, layers.items(), strict=True):
        flops = [f for _, f in rows]
        colors = ["#ff7f0e" if n.startswith("head") else "#1f77b4" for n, _ in rows]
        ax.bar(range(len(flops)), flops, width=1.0, color=colors)
        k = max(range(len(flops)), key=flops.__getitem__)
        ax.annotate(f"{rows[k][0]}: {flops[k]:.3f}", (k, flops[k]), fontsize=8, ha="center", va="bottom")
        ax.set_ylim(0, top * 1.15)  # one scale for all three: the bottlenecks compare by eye
        ax.set_xlim(-0.5, len(flops) - 0.5)
        ax.set_ylabel("BFLOPs")
        ax.set_title(f"{model} @{SIZE}: {sum(flops):.2f} BFLOPs in {len(flops)} layers", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xlabel("layer, in graph order (blue: backbone, orange: head)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def claims() -> dict:
    bb = [heaviest(m, backbone_only=True) for m in BACKBONES]
    det = [heaviest(DETECTORS[0]), heaviest(DETECTORS[-1])]
    return {
        "backbone": {"from": bb[0], "to": bb[1], "cut": 1 - bb[1]["bflops"] / bb[0]["bflops"]},
        "detector": {"from": det[0], "to": det[1], "cut": 1 - det[1]["bflops"] / det[0]["bflops"]},
    }


def table(c: dict) -> str:
    lines = [
        f"| claim (heaviest layer, BFLOPs @{SIZE}) | from | to | cut | paper |",
        "|---|---|---|---:|---:|",
    ]
    for k, label in (
        ("backbone", "CSP backbone vs PeleeNet"),
        ("detector", "CSPPeleeNet-EFM vs PeleeNet-YOLO"),
    ):
        a, b = c[k]["from"], c[k]["to"]
        lines.append(
            f"| {label} | {a['model']} `{a['layer']}` {a['bflops']:.3f} | {b['model']} `{b['layer']}` "
            f"{b['bflops']:.3f} | {100 * c[k]['cut']:.0f}% | {100 * PAPER_CUTS[k]:.0f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from golden.fsutil import atomic_write

    p = argparse.ArgumentParser(prog="benchmarks.fig7")
    p.add_argument("--build-root", default="build/bench")
    a = p.parse_args(argv)
    root = Path(a.build_root)
    root.mkdir(parents=True, exist_ok=True)
    layers = {m: per_layer(m) for m in DETECTORS}
    c = claims()
    plot(layers, root / "fig7.png")
    md = table(c)
    atomic_write(root / "fig7.md", md + "\n")
    atomic_write(root / "fig7.json", json.dumps({"claims": c, "layers": layers}, indent=1) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
