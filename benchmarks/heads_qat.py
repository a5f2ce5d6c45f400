"""Issue 14's accuracy studies on ``digits`` (128², width 0.5, 10 classes), float then W4A4 QAT.

- ``prn``: CSPDenseNet Ref.-EFM(SAM) vs Ref.-PRN, the paper's Table 4 pair.
- ``sam``: CSPPeleeNet-EFM with and without SAM. The float model has a float sigmoid gate; the W4A4
  model's 4-bit gate is the threshold sigmoid that the hardware runs.

Each (model, seed) is trained float, then given W4A4 QAT from the float model's last epoch. Scores
are the runs' own per-epoch mAP@0.5 on the first ``val_images`` val images. Run directories are
``OUT/SCHEDULE/MODEL-seedS/{float,w4a4}``; a complete run (same configuration in its train.json, all
epochs in metrics.jsonl) is read, not retrained, so an interrupted study picks up where it stopped.
Writes ``OUT/heads_qat-SCHEDULE.{json,md,png}``. Not part of ``make bench`` (it trains 8 networks):

    python -m benchmarks.heads_qat [--schedule short|full] [--study prn sam] [--seeds 0 1] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

STUDIES: dict[str, tuple[str, str]] = {
    "prn": ("cspdensenet-ref-efm-sam", "cspdensenet-ref-prn"),
    "sam": ("csppeleenet-efm-sam", "csppeleenet-efm"),
}


@dataclass(frozen=True)
class Schedule:
    train_images: int
    float_epochs: int
    qat_epochs: int


# full: the training issue's schedule (RESULTS.md, "QAT on the offline digits detection data")
SCHEDULES = {"short": Schedule(10_000, 3, 2), "full": Schedule(20_000, 8, 4)}
SIZE, WIDTH, CLASSES, VAL_IMAGES = 128, 0.5, 10, 500


class StudyError(Exception):
    pass


def configs(model: str, seed: int, sched: Schedule, root: Path):
    """(float, W4A4) training configurations of one run; the W4A4 one starts from the float one."""
    from quant.train import TrainConfig

    common = dict(
        model=model, size=SIZE, width=WIDTH, num_classes=CLASSES, train_images=sched.train_images,
        val_images=VAL_IMAGES, seed=seed, threads=1, progress=False,
    )  # fmt: skip
    run = root / f"{model}-seed{seed}"
    fl = TrainConfig(
        **common, mode="float", epochs=sched.float_epochs, lr=2e-3, warmup=300, out=str(run / "float")
    )
    init = str(run / "float" / f"epoch-{sched.float_epochs:03d}.pt")
    q = TrainConfig(
        **common, mode="qat", wbits=4, abits=4, init=init, epochs=sched.qat_epochs, lr=5e-4, warmup=100,
        out=str(run / "w4a4"),
    )  # fmt: skip
    return fl, q


def epochs_done(cfg) -> list[dict] | None:
    """The epoch records of a complete run of ``cfg`` (``init`` may name another path), else None.
    A directory holding another configuration is an error, not something to overwrite."""
    run = Path(cfg.out)
    if not (run / "train.json").exists():
        return None
    have = json.loads((run / "train.json").read_text())["config"]
    want = cfg.identity()
    diff = {k: (have.get(k), v) for k, v in want.items() if k != "init" and have.get(k) != v}
    if diff:
        raise StudyError(f"{run} holds another configuration: {diff}")
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    recs = [r for r in map(json.loads, lines) if r.get("kind") == "epoch"]
    return recs if len(recs) >= cfg.epochs else None


def one_run(model: str, seed: int, sched: Schedule, root: Path) -> dict:
    from quant.train import train

    t = time.perf_counter()
    out: dict[str, list[dict]] = {}
    for tag, cfg in zip(("float", "w4a4"), configs(model, seed, sched, root), strict=True):
        recs = epochs_done(cfg)
        if recs is None:
            cfg = replace(cfg, resume=(Path(cfg.out) / "last.pt").exists())
            say = lambda msg, tag=tag: print(f"  [{model} seed {seed} {tag}] {msg}", flush=True)  # noqa: E731
            recs = [r for r in train(cfg, say).metrics if r.get("kind") == "epoch"]
        out[tag] = [
            {"epoch": r["epoch"], "map50": r["val_map50"], "map50_95": r["val_map50_95"]}
            for r in recs[: cfg.epochs]
        ]
    return {"model": model, "seed": seed, **out, "seconds": round(time.perf_counter() - t, 1)}


def _results(todo: list[tuple[str, int]], sched: Schedule, root: Path, jobs: int):
    """one_run of every (model, seed), in order: in this process for one job, else side by side."""
    if jobs <= 1:
        yield from (one_run(m, s, sched, root) for m, s in todo)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one_run, m, s, sched, root) for m, s in todo]
        yield from (f.result() for f in futures)


def _cell(v: list[float]) -> str:
    seeds = " / ".join(f"{x:.3f}" for x in v)
    return f"{seeds} | {statistics.mean(v):.3f}"


def table(runs: list[dict], studies: list[str], seeds: list[int]) -> str:
    s = " / ".join(map(str, seeds))
    lines = []
    for st in studies:
        lines += [
            f"**{st}**: mAP@0.5, last epoch of each run",
            "",
            f"| model | float, seed {s} | mean | W4A4, seed {s} | mean |",
            "|---|---|---:|---|---:|",
        ]
        for m in STUDIES[st]:
            rs = sorted((r for r in runs if r["model"] == m), key=lambda r: r["seed"])
            fl = [r["float"][-1]["map50"] for r in rs]
            q = [r["w4a4"][-1]["map50"] for r in rs]
            lines.append(f"| `{m}` | {_cell(fl)} | {_cell(q)} |")
        lines.append("")
    return "\n".join(lines)


def plot(runs: list[dict], studies: list[str], sched: Schedule, path: Path) -> None:
    """mAP@0.5 per epoch, float then W4A4 on one axis: one panel per study, a colour per model, a
    line style per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(studies), figsize=(6.2 * len(studies), 4.2), squeeze=False, sharey=True)
    styles = ("-", "--", ":", "-.")
    for ax, st in zip(axes[0], studies, strict=True):
        for colour, m in zip(("#1f77b4", "#d62728"), STUDIES[st], strict=True):
            for r in sorted((r for r in runs if r["model"] == m), key=lambda r: r["seed"]):
                y = [e["map50"] for e in r["float"] + r["w4a4"]]
                ax.plot(range(1, len(y) + 1), y, styles[r["seed"] % 4], color=colour, marker="o", ms=3,
                        label=f"{m}, seed {r['seed']}")  # fmt: skip
        ax.axvline(sched.float_epochs + 0.5, color="grey", lw=0.8)
        ax.text(sched.float_epochs + 0.4, 0.02, "← float", fontsize=8, color="grey", ha="right")
        ax.text(sched.float_epochs + 0.6, 0.02, "W4A4 QAT →", fontsize=8, color="grey")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{st}: {' vs '.join(STUDIES[st])}", fontsize=9)
        ax.set_xlabel(f"epoch ({sched.train_images} images each)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    axes[0][0].set_ylabel("val mAP@0.5")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.heads_qat", description=__doc__.split("\n\n")[0])
    ap.add_argument("--schedule", choices=sorted(SCHEDULES), default="short")
    ap.add_argument("--study", nargs="+", choices=sorted(STUDIES), default=sorted(STUDIES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument(
        "--jobs", type=int, default=2, help="runs side by side, one thread each (1: in this process)"
    )
    ap.add_argument("--out", type=Path, default=Path("build/heads_qat"))
    a = ap.parse_args(argv)
    from hwcsp.errors import UserError

    sched = SCHEDULES[a.schedule]
    root = a.out / a.schedule
    todo = [(m, s) for st in a.study for m in STUDIES[st] for s in a.seeds]
    print(f"heads_qat: {len(todo)} runs on the {a.schedule} schedule {asdict(sched)}, {a.jobs} at a time")
    runs = []
    try:
        for r in _results(todo, sched, root, a.jobs):
            fl, q = r["float"][-1]["map50"], r["w4a4"][-1]["map50"]
            print(f"  {r['model']} seed {r['seed']}: float {fl:.3f}, W4A4 {q:.3f}")
            runs.append(r)
    except (StudyError, UserError) as e:  # a foreign run directory, a bad checkpoint, ...
        print(f"heads_qat: {e}", file=sys.stderr)
        return 2
    from golden.fsutil import atomic_write

    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"heads_qat-{a.schedule}"
    stable = [{k: v for k, v in r.items() if k != "seconds"} for r in runs]
    doc = {"schedule": asdict(sched), "size": SIZE, "width": WIDTH, "val_images": VAL_IMAGES, "runs": stable}
    atomic_write(Path(f"{stem}.json"), json.dumps(doc, indent=1) + "\n")
    atomic_write(
        Path(f"{stem}.timings.json"),
        json.dumps({f"{r['model']}-seed{r['seed']}": r["seconds"] for r in runs}) + "\n",
    )
    md = table(runs, a.study, a.seeds)
    atomic_write(Path(f"{stem}.md"), md)
    plot(runs, a.study, sched, Path(f"{stem}.png"))
    print(md)
    print(f"heads_qat: {stem}.md, .json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
