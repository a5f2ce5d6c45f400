"""The paper's Table 1 on Fashion-MNIST: fusion first / last / CSP x gamma 0.25 / 0.5 / 0.75, W4A4.

The paper trains the nine CSPPeleeNet variants on ImageNet and reports top-1 beside BFLOPs: fusion
last keeps the accuracy at lower compute, fusion first loses more. This experiment asks the same of
the zoo's ``csppeleenet-{first,last,csp}-g{25,50,75}`` records at a size, width and length that fit
a 2-core machine: each cell is trained float, then W4A4 QAT from that checkpoint, for several seeds,
on the Debian package's Fashion-MNIST (``--data fashion-mnist``), and scored top-1 on its 10 000 test
images. Writes ``build/table1/table1.json`` and ``table1.md`` (mean +- std per cell, the BFLOPs at
224 and the paper's numbers). Not part of ``make bench`` (it trains 27 networks):

    python -m benchmarks.table1_grid [--seeds 3] [--jobs 2] [--train-images 10000] ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

FUSIONS = ("first", "last", "csp")
GAMMAS = (25, 50, 75)


def _quiet(_message: str) -> None:
    pass


def one_run(model: str, seed: int, a: dict) -> dict:
    import torch

    from quant.train import TrainConfig, train

    torch.set_num_threads(1)
    root = Path(a["out"]) / f"{model}-seed{seed}"
    common = dict(
        model=model,
        size=a["size"],
        width=a["width"],
        data="fashion-mnist",
        train_images=a["train_images"],
        val_images=10000,
        batch=a["batch"],
        seed=seed,
        threads=1,
        progress=False,
        warmup=20,
        resume=False,
    )
    t = time.perf_counter()
    fl = train(
        TrainConfig(**common, mode="float", epochs=a["float_epochs"], lr=2e-3, out=str(root / "float")),
        _quiet,
    )
    q = train(
        TrainConfig(
            **common, mode="qat", epochs=a["qat_epochs"], lr=5e-4, init=str(fl.last), out=str(root / "qat")
        ),
        _quiet,
    )
    return {
        "model": model,
        "seed": seed,
        "float_top1": fl.metrics[-1]["val_top1"],
        "qat_top1": q.metrics[-1]["val_top1"],
        "qat_top5": q.metrics[-1]["val_top5"],
        "seconds": round(time.perf_counter() - t, 1),
    }


def _mean_sd(v: list[float]) -> str:
    return f"{statistics.mean(v):.4f} +- {statistics.stdev(v) if len(v) > 1 else 0.0:.4f}"


def table(rows: list[dict], a: dict) -> str:
    from hwcsp.analysis import model_stats
    from hwcsp.paper import paper_row, tables

    top1 = {r["model"]: r["top1"] for r in tables()["ablation_table1_csppeleenet"]}

    lines = [
        f"Fashion-MNIST, {a['size']}x{a['size']}, width {a['width']:g}, {a['train_images']} training images, "
        f"{a['float_epochs']} float + {a['qat_epochs']} W4A4 QAT epochs, top-1 on the 10 000 test images, "
        f"{len({r['seed'] for r in rows})} seeds (mean +- std)",
        "",
        "| fusion | gamma | BFLOPs @224 (paper) | float top-1 | W4A4 top-1 | paper top-1 (ImageNet) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in FUSIONS:
        for g in GAMMAS:
            name = f"csppeleenet-{f}-g{g}"
            cell = [r for r in rows if r["model"] == name]
            if not cell:
                continue
            fl = [r["float_top1"] for r in cell]
            q = [r["qat_top1"] for r in cell]
            row = paper_row(name)
            lines.append(
                f"| {f} | {g / 100:.2f} | {model_stats(name, 224).bflops:.3f} ({row.bflops:.3f}) | "
                f"{_mean_sd(fl)} | {_mean_sd(q)} | {top1[name]:.1f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from golden.fsutil import atomic_write

    p = argparse.ArgumentParser(prog="python -m benchmarks.table1_grid", description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2, help="training processes at once (one thread each)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--train-images", type=int, default=10000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--float-epochs", type=int, default=2)
    p.add_argument("--qat-epochs", type=int, default=1)
    p.add_argument("--out", default="build/table1")
    a = vars(p.parse_args(argv))
    runs = [(f"csppeleenet-{f}-g{g}", s) for s in range(a["seeds"]) for f in FUSIONS for g in GAMMAS]
    out = Path(a["out"])
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with ProcessPoolExecutor(a["jobs"]) as ex:
        futures = [ex.submit(one_run, m, s, a) for m, s in runs]
        for i, fut in enumerate(futures, 1):
            rows.append(fut.result())
            r = rows[-1]
            print(f"[{i}/{len(runs)}] {r['model']} seed {r['seed']}: float {r['float_top1']:.4f}, "
                  f"W4A4 {r['qat_top1']:.4f} ({r['seconds']:.0f} s)", flush=True)  # fmt: skip
    atomic_write(out / "table1.json", json.dumps({"settings": a, "runs": rows}, indent=1) + "\n")
    md = table(rows, a)
    atomic_write(out / "table1.md", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
