"""Command-line arguments every stage's command shares, and how they resolve.

The configuration arguments name one build directory (``hwcsp.buildcfg.BuildConfig``), the variant
arguments one folding variant below it (``hwcsp.buildcfg.Variant``); a checkpoint's metadata fills
what the arguments leave unset. Here, in the stage that owns checkpoints and the export, rather
than in the command line, so that ``python -m quant.train`` (what torchrun launches) and the
``hwcsp`` command share them without importing the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwcsp.buildcfg import BITS_RANGE, BuildConfig, Variant

SHIPPED_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def _parse(text: str, cast: type, what: str):
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None


def bit_width(text: str) -> int:
    """argparse type of --wbits/--abits: the widths the RTL supports, refused at argument time."""
    bits = _parse(text, int, "a whole number of bits")
    lo, hi = BITS_RANGE
    if not lo <= bits <= hi:
        raise argparse.ArgumentTypeError(
            f"{bits} bits is not supported: {lo} to {hi} bits (1 bit is refused: the RTL has no bipolar mode)"
        )
    return bits


def positive_int(text: str) -> int:
    n = _parse(text, int, "a whole number")
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: must be positive")
    return n


def positive_float(text: str) -> float:
    x = _parse(text, float, "a number")
    if not x > 0:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return x


def add_config_args(
    p: argparse.ArgumentParser, seed_help: str = "seed of the weight initialisation", qonnx: bool = False
) -> None:
    """The configuration arguments; with ``qonnx`` a command also takes ``--qonnx FILE`` (a
    user's own QONNX export, ``hls.qonnx_in``) in place of the model name."""
    if qonnx:
        p.add_argument("model", nargs="?", help="registered model name (hwcsp models), or --qonnx FILE")
        p.add_argument(
            "--qonnx",
            type=Path,
            metavar="FILE",
            help="a QONNX export of your own network (Brevitas export_qonnx) instead of a zoo model",
        )
    else:
        p.add_argument("model", help="registered model name (hwcsp models)")
    p.add_argument("--size", type=int, help="input size (default: the checkpoint's, else the paper's)")
    p.add_argument("--width", type=positive_float, help="channel width multiplier (default 1.0)")
    p.add_argument("--wbits", type=bit_width, help="weight bits (default 4; first layer and head use 8)")
    p.add_argument("--abits", type=bit_width, help="activation bits (default 4)")
    p.add_argument(
        "--num-classes", type=positive_int, help="detector classes (default 80, or the checkpoint's)"
    )
    p.add_argument(
        "--ckpt",
        type=Path,
        help="trained checkpoint (default: the shipped one of this configuration, if any)",
    )
    p.add_argument(
        "--seeded", action="store_true", help="seeded, calibrated weights even if a checkpoint ships"
    )
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--build-root", default="build", help="root of the build directories")


def shipped_checkpoint(model: str, size: int, width: float, wbits: int, abits: int) -> Path | None:
    """A trained checkpoint shipped in the repository for exactly this configuration, if any."""
    p = SHIPPED_CHECKPOINTS / f"{model}-s{size}-w{width:g}-w{wbits}a{abits}.pt"
    return p if p.is_file() else None


def resolve_config(args):
    """BuildConfig from the arguments, the checkpoint's metadata filling the unset ones.

    Without ``--ckpt`` a shipped trained checkpoint of the same configuration is the default
    (``--seeded`` forces seeded, calibrated weights).
    """
    from golden.fsutil import sha256_file
    from hwcsp.registry import get_entry

    entry = get_entry(args.model)
    if args.ckpt is None and not getattr(args, "seeded", False):
        shipped = shipped_checkpoint(
            args.model, args.size or entry.paper_size, args.width or 1.0, args.wbits or 4, args.abits or 4
        )
        if shipped is None and entry.checkpoint is not None:  # an imported model's weights
            if (args.size or entry.paper_size) == entry.paper_size and (args.width or 1.0) == 1.0:
                shipped = entry.checkpoint
            else:
                print(
                    f"{args.model}: the imported weights are for size {entry.paper_size}, width 1; "
                    "using seeded weights at this configuration",
                    file=sys.stderr,
                )
        if shipped is not None:
            what = "imported weights" if shipped == entry.checkpoint else "shipped trained checkpoint"
            print(f"using the {what} {shipped} (--seeded for seeded weights)", file=sys.stderr)
            args.ckpt = shipped
    meta: dict = {}
    sha = ""
    if args.ckpt is not None:
        from quant.checkpoint import check_matches, load_checkpoint

        _, meta = load_checkpoint(args.ckpt)
        check_matches(meta, args.ckpt, model=args.model)
        sha = sha256_file(args.ckpt)

    def pick(key, arg, default):
        if arg is not None:
            return arg
        return meta.get(key, default) if meta.get(key) is not None else default

    return BuildConfig(
        model=args.model,
        size=int(pick("size", args.size, entry.paper_size)),
        width=float(pick("width", args.width, 1.0)),
        wbits=int(pick("wbits", args.wbits, 4)),
        abits=int(pick("abits", args.abits, 4)),
        num_classes=int(pick("num_classes", args.num_classes, 80)),
        seed=0 if sha else int(args.seed),
        ckpt_sha256=sha,
    )


def ensure_export(cfg, ckpt, build_root, log=print) -> Path:
    """The configuration's build directory with a matching QONNX export (made if missing)."""
    d = cfg.path(Path(build_root))
    cfg.check_dir(d)
    if (d / "model.qonnx.onnx").exists() and (d / "config.json").exists() and (d / "export.json").exists():
        log(f"export: reusing {d / 'model.qonnx.onnx'} (config.json matches)")
        return d
    from quant.export import export

    r = export(cfg, d, ckpt, log=log)
    log(f"export: wrote {r.onnx_path}")
    return d


def add_variant_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--macs", type=positive_int, help="MAC-unit budget: sum of PE*SIMD over MVAUs (default 2048)"
    )
    g.add_argument("--target-fps", type=positive_float, help="target frames per second")
    p.add_argument(
        "--no-split",
        action="store_true",
        help="fold every MVAU with PE | MH only, never split one into two (variant hls-…-nosplit)",
    )
    p.add_argument(
        "--fifo-depths",
        type=Path,
        metavar="JSON",
        help="FIFO depths sized by `python -m sim.fifo_sizing` (variant hls-…-fifo<sha8 of the file>)",
    )
    p.add_argument(
        "--liveness-fifos",
        action="store_true",
        help="FIFOs deep enough for deadlock freedom only, not for full throughput: less memory, "
        "slower hardware (variant hls-…-liveness)",
    )


def variant_of(args: argparse.Namespace) -> Variant:
    """The folding variant the arguments of ``add_variant_args`` name."""
    return Variant(args.macs, args.target_fps, not args.no_split, args.fifo_depths, args.liveness_fifos)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("float", "qat"), default="qat", help="float training or QAT (default)")
    p.add_argument(
        "--data",
        default="digits",
        help="'digits'; detectors: a COCO folder (images/ + instances.json); classifiers: an .npz "
        "(images, labels[, val_images, val_labels, class_names]) or a folder of class folders",
    )
    p.add_argument("--init", type=Path, help="checkpoint to start from (QAT: the float checkpoint)")
    p.add_argument("--epochs", type=positive_int, help="epochs (default 10)")
    p.add_argument("--batch", type=positive_int, help="global batch size (default 32)")
    p.add_argument("--accum", type=positive_int, help="micro-batches per rank and step (default 1)")
    p.add_argument("--lr", type=positive_float, help="peak AdamW learning rate (default 2e-3)")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay of conv weights (default 0.05)")
    p.add_argument("--warmup", type=int, help="warm-up steps (default 300)")
    p.add_argument(
        "--scale-lr-mult", type=float, help="learning-rate factor of activation scales (default 1)"
    )
    p.add_argument(
        "--calib-percentile", type=float, help="QAT init: clip at this percentile (default: best loss)"
    )
    p.add_argument("--train-images", type=int, help="use the first N training images (default: all)")
    p.add_argument(
        "--val-images", type=int, help="val images scored after each epoch (default 1000, 0: none)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        help="where to train: auto (default: the GPU of this process's local rank when torch sees "
        "one, else the CPU), cpu or cuda; calibration and export always run on the CPU",
    )
    p.add_argument("--out", type=Path, help="run directory (default build/<config>/train-seed<SEED>)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    p.add_argument("--stop-after", type=int, help="end after epoch N (time-boxing); --resume continues")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--log-shards", action="store_true", help=argparse.SUPPRESS)
