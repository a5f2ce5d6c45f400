"""Tree crowns (deepforest's YELL crops): mAP of trained checkpoints and a panel of their detections.

    python -m quant.data.treecrowns build/data/treecrowns8          # the data, once
    hwcsp train cspdensenetb-ref-prn --data build/data/treecrowns8 --size 256 --width 0.5 --num-classes 1 ...
    python -m benchmarks.treecrowns --val build/data/treecrowns8-val float=RUN/last.pt w4a4=RUN/last.pt

Each checkpoint is scored on every validation tile with ``hwcsp eval`` (pycocotools, mAP@0.5 and
@0.5:0.95); the panel draws the ground truth (green) and the detections scoring >= 0.3 (magenta,
score beside) on the first validation tiles, one row per checkpoint, into
``build/bench/treecrowns_detections.png``; the scores go to ``build/bench/treecrowns.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OUT = Path("build/bench")
TILES = 4
SCALE = 2  # the 256 px tiles drawn at 512 px
GT, DET = (40, 220, 60), (230, 40, 200)


def score(ckpt: Path, val: Path) -> dict:
    """``hwcsp eval`` of one checkpoint on the validation folder: its printed mAPs."""
    cmd = [sys.executable, "-m", "hwcsp.cli", "eval", "cspdensenetb-ref-prn", "--ckpt", str(ckpt)]
    r = subprocess.run(
        [*cmd, "--data", str(val), "--threads", "2"],
        capture_output=True,
        text=True,
    )
    m = re.search(r"mAP@0.5 ([\d.]+)\s+mAP@0.5:0.95 ([\d.]+)\s+\((\d+) images.*?(\d+) detections", r.stdout)
    if r.returncode != 0 or not m:
        raise SystemExit(f"hwcsp eval {ckpt} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return {"map50": float(m[1]), "map50_95": float(m[2]), "images": int(m[3]), "detections": int(m[4])}


def detections(ckpt: Path, images: list[np.ndarray]):
    """Detections >= 0.3 (NMS 0.45) of one checkpoint, in its own execution mode."""
    from quant.commands import Loaded
    from quant.decode import PostProcess
    from quant.evaluate import detect_images

    args = argparse.Namespace(
        cmd="bench", model="cspdensenetb-ref-prn", ckpt=ckpt, mode=None, threads=2, build_root="build",
        size=None, width=None, wbits=None, abits=None, num_classes=None, seeded=False, seed=0,
        macs=None, target_fps=None, no_split=False, fifo_depths=None, liveness_fifos=False,
    )  # fmt: skip
    ld = Loaded(args)
    return detect_images(ld.runner, images, ld.levels, ld.cfg.size, PostProcess(conf=0.3, iou=0.45))


def panel(rows: dict[str, list], images: list[np.ndarray], truth: list[np.ndarray], path: Path) -> None:
    side = images[0].shape[0] * SCALE
    head = 22
    im = Image.new("RGB", (side * len(images), (side + head) * len(rows)), "white")
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=14)
    for r, (name, dets) in enumerate(rows.items()):
        y0 = r * (side + head)
        d.text((4, y0 + 3), f"{name}: ground truth green, detections >= 0.3 magenta", fill="black", font=font)
        for c, (img, gt, det) in enumerate(zip(images, truth, dets, strict=True)):
            x0 = c * side
            im.paste(Image.fromarray(img).resize((side, side), Image.NEAREST), (x0, y0 + head))
            for b in gt:
                d.rectangle([x0 + b[0] * SCALE, y0 + head + b[1] * SCALE, x0 + b[2] * SCALE,
                             y0 + head + b[3] * SCALE], outline=GT, width=2)  # fmt: skip
            for b, s in zip(det.boxes, det.scores, strict=True):
                bx, by = x0 + float(b[0]) * SCALE, y0 + head + float(b[1]) * SCALE
                d.rectangle(
                    [bx, by, x0 + float(b[2]) * SCALE, y0 + head + float(b[3]) * SCALE], outline=DET, width=2
                )
                d.text((bx + 3, by + 2), f"{s:.2f}", fill=DET, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.treecrowns", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="NAME=CHECKPOINT, e.g. float=RUN/last.pt")
    p.add_argument("--val", type=Path, default=Path("build/data/treecrowns8-val"))
    a = p.parse_args(argv)
    from quant.data.coco import load_coco

    runs = dict(r.split("=", 1) for r in a.runs)
    val = load_coco(a.val)
    images = [val[i].image for i in range(TILES)]
    truth = [val[i].boxes for i in range(TILES)]
    scores = {name: score(Path(ck), a.val) for name, ck in runs.items()}
    for name, s in scores.items():
        print(f"{name}: mAP@0.5 {s['map50']:.4f}  mAP@0.5:0.95 {s['map50_95']:.4f}  ({s['images']} tiles)")
    rows = {name: detections(Path(ck), images) for name, ck in runs.items()}
    panel(rows, images, truth, OUT / "treecrowns_detections.png")
    (OUT / "treecrowns.json").write_text(
        json.dumps({"val": str(a.val), "runs": runs, "scores": scores}, indent=1)
    )
    print(f"detections: {OUT / 'treecrowns_detections.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
